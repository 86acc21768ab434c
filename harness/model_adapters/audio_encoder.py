"""Audio-only encoders from transformers: Whisper's encoder and wav2vec2-style models (wav2vec2,
HuBERT, WavLM, data2vec-audio), mean-pooled over time as mteb 2.26's wrappers pool them.

Each clip is resampled to the feature extractor's rate and cut to ``max_seconds`` in the
DataLoader workers (``preprocess``), then run through the feature extractor there; ``encode``
pads the batch and runs the model. The pooled frames follow mteb per model type:

- Whisper: the log-mel input is padded to ``max_seconds`` (the checkpoint's 30 s window) and
  the encoder's last hidden state is averaged over ``floor(mel frames / ratio)`` positions,
  ``ratio`` being the padded mel length over the encoder's length ("proportional" lengths).
- wav2vec2: clips shorter than 400 samples are padded with silence, and the last hidden state is
  averaged over the feature encoder's exact output length ("feature_encoder" lengths).
- HuBERT, WavLM, data2vec-audio: as wav2vec2, with "proportional" lengths.

Models whose feature encoder normalises over the whole (padded) input (group norm, and every
data2vec-audio model) encode one clip per forward pass, as mteb does, so batch-mates never
change an embedding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from harness.core.adapter import AdapterMeta, Item, Role, check_options
from harness.core.audio import Waveform, resample, truncate
from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.torch_utils import (
    from_source,
    n_parameters,
    resolve_device,
    resolve_dtype,
)

OPTIONS = frozenset({"max_seconds"})
# The conv feature encoder of wav2vec2-style models needs 25 ms at 16 kHz.
MIN_SAMPLES = 400


@dataclass(frozen=True)
class Recipe:
    """How mteb encodes one model type: its default clip cap (seconds; None: uncapped), the
    lengths its mean pooling uses, whether clips are padded to ``MIN_SAMPLES``, and whether
    every clip is encoded alone whatever its feature encoder's norm."""

    max_seconds: float | None
    lengths: str
    min_samples: int | None = MIN_SAMPLES
    always_alone: bool = False


# By config model_type (harness/model_adapters/families.py lists the same types for detection);
# Whisper's cap is its feature extractor's window (chunk_length).
RECIPES = {
    "whisper": Recipe(max_seconds=None, lengths="proportional", min_samples=None),
    "wav2vec2": Recipe(max_seconds=None, lengths="feature_encoder"),
    "hubert": Recipe(max_seconds=None, lengths="proportional"),
    "wavlm": Recipe(max_seconds=240.0, lengths="proportional"),
    "data2vec-audio": Recipe(max_seconds=None, lengths="proportional", always_alone=True),
}


class AudioEncoderAdapter:
    """Encode audio clips with a transformers speech encoder, mean-pooled over time.

    ``options``: ``max_seconds`` (clips are cut to this length; default as mteb runs the model
    type: Whisper's window, 240 s for WavLM, uncapped otherwise).
    """

    def __init__(self, request: LoadRequest) -> None:
        check_options("audio-encoder", request.options, OPTIONS)
        self._device = resolve_device(request.device)
        self._dtype = resolve_dtype(request.dtype)
        config = from_source(AutoConfig, request)
        if config.model_type not in RECIPES:
            raise HarnessError(
                f"model {request.name!r} is a {config.model_type!r} model; the audio-encoder "
                f"family loads {', '.join(sorted(RECIPES))}"
            )
        self._whisper = config.model_type == "whisper"
        recipe = RECIPES[config.model_type]
        self.feature_extractor = from_source(AutoFeatureExtractor, request)
        model = from_source(AutoModel, request, dtype=self._dtype)
        self.model = (model.encoder if self._whisper else model).to(self._device).eval()
        self._alone = recipe.always_alone or (
            not self._whisper and getattr(config, "feat_extract_norm", "layer") != "layer"
        )
        self._lengths = recipe.lengths
        self._min_samples = recipe.min_samples
        self.sampling_rate = int(self.feature_extractor.sampling_rate)
        default_seconds = (
            float(self.feature_extractor.chunk_length) if self._whisper else recipe.max_seconds
        )
        self.max_seconds = max_seconds_option(request.options.get("max_seconds", default_seconds))
        if self._whisper and self.max_seconds != default_seconds:
            raise HarnessError(
                f"option max_seconds: Whisper's encoder takes exactly {default_seconds:g} s "
                "(its feature extractor's chunk_length); leave the option out"
            )
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="audio-encoder",
            similarity="cosine",
            modalities=("audio",),
            dtype=request.dtype,
            embed_dim=int(getattr(config, "d_model", None) or config.hidden_size),
            n_parameters=n_parameters(self.model),
            options={
                "sampling_rate": self.sampling_rate,
                "max_seconds": self.max_seconds,
                "min_samples": self._min_samples,
                "pooling": "mean",
                "pooled_lengths": self._lengths,
                "one_clip_per_pass": self._alone,
                "feature_extractor": type(self.feature_extractor).__name__,
            },
        )

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """Resample, cut and featurise the item's clip (in a DataLoader worker): ``audio``
        becomes the feature extractor's arrays for one clip. An item without a waveform
        (already preprocessed) is returned as it is."""
        waveform = item.get("audio")
        if not isinstance(waveform, Waveform):
            return item
        samples = truncate(resample(waveform, self.sampling_rate), self.max_seconds).samples
        if self._min_samples is not None and len(samples) < self._min_samples:
            samples = np.pad(samples, (0, self._min_samples - len(samples)))
        extra: dict[str, Any] = {}
        if self._whisper:
            assert self.max_seconds is not None
            extra = {
                "padding": "max_length",
                "truncation": True,
                "max_length": int(self.max_seconds * self.sampling_rate),
            }
        features = self.feature_extractor(
            samples,
            sampling_rate=self.sampling_rate,
            return_tensors="np",
            return_attention_mask=True,
            **extra,
        )
        return {**item, "audio": {key: np.asarray(value) for key, value in features.items()}}

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Encode one batch of clips, decoded or preprocessed; ``role`` and ``instruction`` are
        ignored."""
        if not items:
            return np.zeros((0, self.meta.embed_dim or 0), dtype=np.float32)
        for index, item in enumerate(items):
            if item.get("audio") is None:
                raise BadInputError(
                    f"item {index} has no audio; {self.meta.name} embeds audio clips only"
                )
        features = [self.preprocess(item)["audio"] for item in items]
        groups = [[one] for one in features] if self._alone else [features]
        return np.concatenate([self._embed(group) for group in groups])

    @torch.inference_mode()
    def _embed(self, features: list[Mapping[str, np.ndarray]]) -> np.ndarray:
        """One forward pass over padded clips; the mean of each clip's frames."""
        key = "input_features" if self._whisper else "input_values"
        inputs, mask = _padded(features, key, float(self.feature_extractor.padding_value))
        values = inputs.to(self._device, self._dtype)
        if self._whisper:
            hidden = self.model(values).last_hidden_state
        else:
            hidden = self.model(values, attention_mask=mask.to(self._device)).last_hidden_state
        lengths = self._pooled_lengths(mask, hidden.shape[1]).to(hidden.device)
        keep = torch.arange(hidden.shape[1], device=hidden.device)[None] < lengths[:, None]
        keep = keep.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1e-9)
        return pooled.float().cpu().numpy()

    def _pooled_lengths(self, mask: torch.Tensor, frames: int) -> torch.Tensor:
        """How many encoder frames of each clip the mean takes (mteb's lengths per type)."""
        valid = mask.sum(dim=1)
        if self._lengths == "feature_encoder":
            lengths = self.model._get_feat_extract_output_lengths(valid)
        else:
            lengths = (valid.float() / (mask.shape[1] / frames)).long()
        return torch.clamp(torch.as_tensor(lengths, dtype=torch.long), min=0, max=frames)


def _padded(
    features: list[Mapping[str, np.ndarray]], key: str, padding_value: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips' ``key`` arrays padded at the end of the time axis with ``padding_value``, and
    the attention mask over that axis."""
    longest = max(one[key].shape[-1] for one in features)
    arrays, masks = [], []
    for one in features:
        array, mask = one[key], one["attention_mask"]
        pad = longest - array.shape[-1]
        widths = [(0, 0)] * (array.ndim - 1) + [(0, pad)]
        arrays.append(np.pad(array, widths, constant_values=padding_value))
        masks.append(np.pad(mask, [(0, 0), (0, pad)]))
    return torch.from_numpy(np.concatenate(arrays)), torch.from_numpy(np.concatenate(masks))


def max_seconds_option(value: Any, option: str = "max_seconds") -> float | None:
    """A clip cap given as ``option``: a positive number of seconds, or None (uncapped)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise HarnessError(f"option {option} must be a positive number, got {value!r}")
    return float(value)
