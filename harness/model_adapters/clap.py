"""CLAP (transformers ``ClapModel``): an audio tower and a text tower, as mteb 2.26's CLAP
wrapper runs them.

Audio, in the DataLoader workers (``preprocess``): the clip is resampled to the feature
extractor's rate (48 kHz), cut to ``max_seconds`` (by default the extractor's window for
``rand_trunc`` checkpoints, so the deterministic repeat-pad branch always runs, and uncapped for
``fusion`` ones, whose long-clip path is their own), rounded to 16-bit as laion_clap does, and
featurised with numpy's global seed fixed at 0 around the extractor (fusion picks random
chunks), ``is_longer`` set only for clips over the window. Text: tokenised to at most 77 tokens
(laion_clap's context). Both towers' outputs are L2-normalised; an item with a clip and a text
is the sum of the two unit vectors, as mteb fuses them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer

from harness.core.adapter import AdapterMeta, Item, Role, check_options
from harness.core.audio import Waveform, resample, truncate
from harness.core.errors import HarnessError
from harness.model_adapters.audio_encoder import max_seconds_option
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.torch_utils import (
    concatenated,
    from_source,
    load_eval_model,
    n_parameters,
    resolve_device,
    resolve_dtype,
    summed_parts,
)

OPTIONS = frozenset({"max_seconds", "max_length"})
# laion_clap's text context length.
TEXT_MAX_LENGTH = 77
INT16_SCALE = np.float32(32767.0)


class ClapAdapter:
    """Encode audio clips, texts and clip+text items with a ``ClapModel``.

    ``options``: ``max_seconds`` (the clip cap; default as described in the module) and
    ``max_length`` (text tokens, default 77).
    """

    def __init__(self, request: LoadRequest) -> None:
        check_options("clap", request.options, OPTIONS)
        self._device = resolve_device(request.device)
        self._dtype = resolve_dtype(request.dtype)
        self.model = load_eval_model(AutoModel, request, self._device, self._dtype)
        self.tokenizer = from_source(AutoTokenizer, request)
        self.feature_extractor = from_source(AutoFeatureExtractor, request)
        extractor = self.feature_extractor
        self.sampling_rate = int(extractor.sampling_rate)
        self._fused = extractor.truncation == "fusion"
        window = None if self._fused else extractor.nb_max_samples / self.sampling_rate
        self.max_seconds = max_seconds_option(request.options.get("max_seconds", window))
        self._max_length = request.options.get("max_length", TEXT_MAX_LENGTH)
        length = self._max_length
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            raise HarnessError(f"option max_length must be a positive integer, got {length!r}")
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="clap",
            similarity="cosine",
            modalities=("audio", "text"),
            dtype=request.dtype,
            embed_dim=int(self.model.config.projection_dim),
            n_parameters=n_parameters(self.model),
            options={
                "sampling_rate": self.sampling_rate,
                "max_seconds": self.max_seconds,
                "truncation": extractor.truncation,
                "padding": extractor.padding,
                "int16_rounding": True,
                "max_length": self._max_length,
                "fusion": "normalized_sum",
            },
        )

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """Resample, cut, round and featurise the item's clip (in a DataLoader worker):
        ``audio`` becomes ``{"input_features", "is_longer"}`` for one clip. An item without a
        waveform (text only, or already preprocessed) is returned as it is."""
        waveform = item.get("audio")
        if not isinstance(waveform, Waveform):
            return item
        samples = truncate(resample(waveform, self.sampling_rate), self.max_seconds).samples
        rounded = (np.clip(samples, -1.0, 1.0) * INT16_SCALE).astype(np.int16) / INT16_SCALE
        with _numpy_seed(0):
            features = self.feature_extractor(
                rounded, sampling_rate=self.sampling_rate, return_tensors="np"
            )
        arrays = {key: np.asarray(value) for key, value in features.items()}
        if self._fused:
            arrays["is_longer"][:] = len(rounded) > self.feature_extractor.nb_max_samples
        return {**item, "audio": arrays}

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Encode one batch of items, decoded or preprocessed; ``role`` and ``instruction`` are
        ignored."""
        towers: dict[str, Callable[[list[Any]], torch.Tensor]] = {
            "text": self._encode_texts,
            "audio": self._encode_clips,
        }
        return summed_parts(
            items,
            self.preprocess,
            self.meta.embed_dim or 0,
            towers,
            "neither a text nor an audio clip",
        )

    @torch.inference_mode()
    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        """The text tower's unit vectors."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self._max_length, return_tensors="pt"
        )
        inputs = {key: value.to(self._device) for key, value in batch.items()}
        return _unit(self.model.get_text_features(**inputs))

    @torch.inference_mode()
    def _encode_clips(self, clips: list[Mapping[str, np.ndarray]]) -> torch.Tensor:
        """The audio tower's unit vectors."""
        batch = concatenated(clips)
        features = batch["input_features"].to(self._device, self._dtype)
        is_longer = batch["is_longer"].to(self._device)
        return _unit(self.model.get_audio_features(input_features=features, is_longer=is_longer))


def _unit(output: Any) -> torch.Tensor:
    """A tower's pooled output, L2-normalised, float32 on the CPU."""
    pooled = output if isinstance(output, torch.Tensor) else output.pooler_output
    return (pooled / pooled.norm(dim=-1, keepdim=True)).float().cpu()


@contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for a block (the feature extractor draws from it), then
    restore its state."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)
