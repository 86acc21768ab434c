"""MLLM embedders (LCO-Embedding, E5-V style): the last token's final hidden state.

Each item becomes one chat-templated prompt: the video, the audio clip and the image (those
present), then the text, then a summarising suffix for the item's modality; the prompt is
rendered with the model's own chat template and a generation prompt. A batch is left-padded, so
the last position of every row is that item's last token; its final hidden state,
L2-normalised, is the embedding.

The ``protocol`` option names how a published set of numbers was computed (``PROTOCOLS``):
``mteb-2.26`` (the default) is mteb 2.26's LCO-Embedding wrapper, as above; ``lco-paper`` is the
wrapper of the February 2025 mteb snapshot in which the LCO-Embedding paper's numbers were
computed (LCO-Embedding/LCO-Embedding, ``Evaluation/MTEB-MIEB/mteb/models/LCO_Embedding.py``):
texts, images and image+text items only (that snapshot had no audio or video tasks); an
image+text item is its text, then its image, then "\nSummarize the above in one word:" (no
modality word); an image is first resized as ``qwen_omni_utils.fetch_image`` does (sides rounded
to multiples of 28, see :func:`harness.model_adapters.gme.fetch_size`, which caps an aspect
ratio over 200 where that function refuses the image), then capped by the image processor at
``max_pixels`` = 1280 * 28 * 28 (unless the option is given); and the last hidden state is rounded
to float16 and not normalised. Both are scored by cosine similarity (that snapshot's default for a
model without a similarity function), which normalises each vector itself, so retrieval and STS
scores agree with normalised vectors; linear probes, clustering and the pair classification's dot
and distance scores see the unnormalised vectors, as they did there.

The processor is assembled from the tokenizer and the image processor rather than through
``AutoProcessor``, whose Qwen2-VL/2.5-VL/Omni variants require a video processor that needs
torchvision: the image placeholder is expanded here to ``prod(image_grid_thw) / merge_size**2``
tokens, exactly as those processors do.

A Qwen2.5-Omni thinker also embeds audio, as mteb's LCO-Embedding wrapper does: the clip is
resampled to the Whisper feature extractor's rate (16 kHz) and cut to ``max_audio_seconds``
(default: the extractor's 300 s window) in the DataLoader workers, and its log-mel frames are
computed there as ``Qwen2_5OmniProcessor`` computes them (it pads every clip to the window; the
frames of the clip itself depend only on the silence right after it, so the clip is padded by a
few frames instead and only its own frames kept). The audio placeholder is expanded to the
audio tower's output length.

Every family member embeds video as mteb's LCO-Embedding wrapper does: frames sampled at 2 per
second, at most 64 (the ``video_*`` options change it), and turned into patches in the
DataLoader workers as the model's video processor would (:mod:`harness.model_adapters.mllm_video`);
the audio track of a ``va`` item is its own audio part (``use_audio_in_video`` off). The video
placeholder is expanded to ``prod(video_grid_thw) / merge_size**2`` tokens.
"""

from __future__ import annotations

import inspect
import itertools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoTokenizer
from transformers.models.qwen2_5_omni.processing_qwen2_5_omni import (
    _get_feat_extract_output_lengths as audio_token_count,
)
from transformers.utils import cached_file

from harness.core.adapter import AdapterMeta, Item, Role, check_options
from harness.core.audio import Waveform, resample, truncate
from harness.core.errors import BadInputError, HarnessError
from harness.core.video import Video
from harness.model_adapters.audio_encoder import max_seconds_option
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.mllm_video import (
    BOUND_OPTIONS,
    SAMPLING_OPTIONS,
    frame_sampling,
    load_video_patches,
)
from harness.model_adapters.torch_utils import (
    DTYPES,
    concatenated,
    from_source,
    load_eval_model,
    n_parameters,
    resolve_device,
    resolve_dtype,
    to_numpy,
)

logger = logging.getLogger(__name__)

# transformers model classes by config model_type (the Omni model is used through its thinker).
MODEL_CLASSES = {
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen2_5_omni": "Qwen2_5OmniThinkerForConditionalGeneration",
    "qwen2_5_omni_thinker": "Qwen2_5OmniThinkerForConditionalGeneration",
}
# The parts of a user turn, in order: a video, an audio clip and an image come first (those
# present), then the item's text with the prompt's suffix, as mteb's LCO-Embedding wrapper
# builds its messages.
PART_ORDER = ("video", "audio", "image", "text")
# Prompt presets: the user turn for each set of parts (named in ``PART_ORDER``, joined by
# commas), where ``{text}`` stands for the item's text and ``{image}``, ``{audio}`` and
# ``{video}`` for the placeholders of those parts. ``lco`` follows mteb 2.26's LCO-Embedding
# wrapper: the parts in ``PART_ORDER``, then the suffix of the item's image, else of its video,
# else of its audio, else of its text; ``e5v`` takes E5-V's wording (mteb's e5_v.py), rendered
# with the model's chat template, and has no audio or video prompts.
_LCO_SUFFIX = "\nSummarize the above {modality} in one word:"
_LCO_PRECEDENCE = ("image", "video", "audio", "text")
_PLACEHOLDER = re.compile(r"\{(image|audio|video)\}")


def _lco_prompts() -> dict[str, str]:
    """The ``lco`` prompt of every set of parts."""
    prompts = {}
    for size in range(1, len(PART_ORDER) + 1):
        for parts in itertools.combinations(PART_ORDER, size):
            modality = next(name for name in _LCO_PRECEDENCE if name in parts)
            placed = "".join("{" + name + "}" for name in parts)
            prompts[",".join(parts)] = placed + _LCO_SUFFIX.format(modality=modality)
    return prompts


PRESETS: dict[str, dict[str, str]] = {
    "lco": _lco_prompts(),
    "e5v": {
        "text": "{text}\nSummary above sentence in one word: ",
        "image": "{image}\nSummary above image in one word: ",
        "image,text": (
            '{image}Modify this image with "{text}" Describe modified image in one word: '
        ),
    },
}
# The lco prompts as the LCO-Embedding paper's evaluation wrote them (protocol lco-paper): no
# audio or video, and an image+text item's text before its image, with no modality word.
PAPER_PROMPTS = {
    "text": PRESETS["lco"]["text"],
    "image": PRESETS["lco"]["image"],
    "image,text": "{text}{image}\nSummarize the above in one word:",
}
# Protocols: the settings under which a published set of numbers was computed (see the module
# docstring). mteb-2.26, the default, is left out of the options (and so of the fingerprint): a
# model record without ``protocol`` was run under it, as every result made before the option.
DEFAULT_PROTOCOL = "mteb-2.26"
PAPER_PROTOCOL = "lco-paper"
PROTOCOLS = (DEFAULT_PROTOCOL, PAPER_PROTOCOL)
PAPER_MAX_PIXELS = 1280 * 28 * 28
# What a model record adds under protocol lco-paper (mteb-2.26 adds nothing).
_PAPER_RECORD = {"protocol": PAPER_PROTOCOL, "normalized": False, "output_dtype": "float16"}
# Where a task instruction goes: nowhere (as mteb's and the authors' LCO evaluation code do),
# as the system message (replacing the template's default one), or before the item's text.
INSTRUCTION_MODES = ("ignore", "system", "prefix")
OPTIONS = frozenset(
    {
        "preset",
        "protocol",
        "instruction",
        "max_text_tokens",
        "max_pixels",
        "cuda_dtype",
        "max_audio_seconds",
    }
    | SAMPLING_OPTIONS
    | BOUND_OPTIONS
)
# How messages name an item's parts.
_PARTS = {"text": "a text", "image": "an image", "audio": "an audio clip", "video": "a video"}
# Silence after a clip, in hop lengths, beyond the last STFT window that reaches into the clip.
_AUDIO_TAIL_HOPS = 4
DEFAULT_MAX_TEXT_TOKENS = 300
CHAT_TEMPLATE_FIX = (
    "add the chat template of its base model to the model directory "
    "(chat_template.jinja, chat_template.json, or `chat_template` in tokenizer_config.json)"
)


class MllmAdapter:
    """Encode texts, images and image+text items with a Qwen2-VL-family model, and audio
    clips alone or with them with a Qwen2.5-Omni thinker.

    ``options``: ``protocol`` (one of ``PROTOCOLS``, default ``"mteb-2.26"``; ``"lco-paper"``
    takes the ``lco`` prompts, the default ``max_pixels``, the image resizing and the outputs of
    the LCO-Embedding paper's evaluation), ``preset`` (``"lco"`` or ``"e5v"``), ``instruction``
    (one of ``INSTRUCTION_MODES``, default ``"ignore"``), ``max_text_tokens`` (texts are cut to
    this many tokens before prompting, default 300 as in the LCO-Embedding evaluation),
    ``max_pixels`` (an image is resized to at most this many pixels; default: the image
    processor's own limit, as mteb runs it, or 1280 * 28 * 28 under ``lco-paper``),
    ``max_audio_seconds`` (an Omni thinker's clips are
    cut to this length; default: its feature extractor's window, as mteb runs it) and
    ``cuda_dtype`` (the dtype used on a CUDA device when the run asks for float32, the CLI's
    default; registered LCO models set ``bfloat16``, the dtype their authors and mteb run them
    in. An explicit ``--dtype float32`` cannot be told apart from the default: to run such a
    model in float32 on CUDA, pass its hub id instead of its short name). ``meta.dtype``, and so
    the fingerprint and the result file, record the dtype actually used.
    """

    def __init__(self, request: LoadRequest) -> None:
        settings = _settings(request.options)
        self._paper = settings.pop("protocol") == PAPER_PROTOCOL
        self._device = resolve_device(request.device)
        dtype = _effective_dtype(request.dtype, self._device, settings.pop("cuda_dtype"))
        self._dtype = resolve_dtype(dtype)
        config = from_source(AutoConfig, request)
        config = getattr(config, "thinker_config", config)
        self.model = load_eval_model(
            _model_class(config.model_type, request.name), request, self._device, self._dtype
        )
        self.tokenizer = from_source(AutoTokenizer, request)
        self.tokenizer.padding_side = "left"
        self.tokenizer.chat_template = _chat_template(
            self.tokenizer, request.source, request.hub_revision, request.name
        )
        self.image_processor = from_source(AutoImageProcessor, request)
        if settings["max_pixels"] is None:
            settings["max_pixels"] = int(self.image_processor.size["longest_edge"])
        self.image_token = str(self.tokenizer.convert_ids_to_tokens(config.image_token_id))
        audio_settings = self._load_audio(request, config, settings.pop("max_audio_seconds"))
        self.video_patches = load_video_patches(
            request.source, request.hub_revision, config.model_type, request.options
        )
        self._sampling = frame_sampling(request.options)
        self.video_token = str(self.tokenizer.convert_ids_to_tokens(config.video_token_id))
        self._prompts = PAPER_PROMPTS if self._paper else PRESETS[settings["preset"]]
        self._instruction_mode = settings["instruction"]
        self._max_text_tokens = settings["max_text_tokens"]
        # Qwen2-VL/2.5-VL compute multimodal RoPE from per-token modality types (1 = image,
        # 2 = video).
        self._wants_token_types = (
            "mm_token_type_ids" in inspect.signature(self.model.forward).parameters
        )
        self._last_position_only()
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="mllm",
            similarity="cosine",
            modalities=(*(("audio",) if audio_settings else ()), "image", "text", "video"),
            dtype=dtype,
            embed_dim=int(_text_config(self.model.config).hidden_size),
            n_parameters=n_parameters(self.model),
            uses_instructions=self._instruction_mode != "ignore",
            options={
                **settings,
                **(_PAPER_RECORD if self._paper else {}),
                "pooling": "last_token",
                "padding_side": "left",
                "image_processor": type(self.image_processor).__name__,
                **audio_settings,
            },
            modality_options={
                "video": {**self._sampling.options(), **self.video_patches.options()}
            },
        )

    def _load_audio(
        self, request: LoadRequest, config: Any, max_seconds: float | None
    ) -> dict[str, Any]:
        """An Omni thinker's feature extractor and audio placeholder; its audio settings (none
        for a model without an audio tower)."""
        self.feature_extractor: Any = None
        if getattr(config, "audio_config", None) is None:
            if max_seconds is not None:
                raise HarnessError(
                    f"option max_audio_seconds: model {request.name!r} embeds no audio"
                )
            return {}
        self.feature_extractor = from_source(AutoFeatureExtractor, request)
        self.audio_token = str(self.tokenizer.convert_ids_to_tokens(config.audio_token_id))
        return {
            "sampling_rate": int(self.feature_extractor.sampling_rate),
            "max_audio_seconds": max_seconds or float(self.feature_extractor.chunk_length),
            "feature_extractor": type(self.feature_extractor).__name__,
        }

    def _last_position_only(self) -> None:
        """Only hidden states are used: let the LM head see the last position alone."""
        head = self.model.get_output_embeddings()
        if head is not None:
            head.register_forward_pre_hook(lambda _module, args: (args[0][:, -1:, :],))

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Encode one batch of items, decoded or preprocessed; ``role`` is ignored,
        ``instruction`` placed as the option says."""
        if not items:
            return np.zeros((0, self.meta.embed_dim or 0), dtype=np.float32)
        for index, item in enumerate(items):
            if all(item.get(name) is None for name in self.meta.modalities):
                *others, last = [_PARTS[name] for name in _PARTS if name in self.meta.modalities]
                raise BadInputError(f"item {index} has neither {', '.join(others)} nor {last}")
        items = [self.preprocess(item) for item in items]
        prompts = [self.prompt(item, instruction) for item in items]
        images = [item["image"] for item in items if item.get("image") is not None]
        clips = [item["audio"] for item in items if item.get("audio") is not None]
        videos = [item["video"] for item in items if item.get("video") is not None]
        return self.embed(prompts, images, clips, videos)

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """Run the image processor on the item's image, the feature extractor on its audio
        clip and the video processing on its video's sampled frames (in a DataLoader worker):
        ``image`` becomes its patches, ``{"pixel_values": (patches, d), "image_grid_thw": (1,
        3)}``, at most ``max_pixels`` pixels, ``audio`` its log-mel frames,
        ``{"input_features": (1, mels, frames), "feature_attention_mask": (1, frames)}``, and
        ``video`` its patches, ``{"pixel_values_videos": (patches, d), "video_grid_thw": (1,
        3)}``. Parts already preprocessed are kept."""
        image, clip, video = item.get("image"), item.get("audio"), item.get("video")
        if isinstance(image, Image.Image):
            image = _rgb(image)
            if self._paper:
                image = _fetch_resized(image)
            size = {
                "shortest_edge": self.image_processor.size["shortest_edge"],
                "longest_edge": self.meta.options["max_pixels"],
            }
            pixels = self.image_processor(images=[image], size=size, return_tensors="pt")
            item = {**item, "image": to_numpy(pixels)}
        if isinstance(clip, Waveform):
            item = {**item, "audio": self._log_mel(clip)}
        if isinstance(video, Video):
            item = {**item, "video": self.video_patches(video.frames(self._sampling))}
        return item

    def _log_mel(self, clip: Waveform) -> dict[str, np.ndarray]:
        """The clip's log-mel frames at the extractor's rate, cut to ``max_audio_seconds``."""
        if self.feature_extractor is None:
            raise BadInputError(f"model {self.meta.name!r} embeds no audio (no audio tower)")
        extractor = self.feature_extractor
        options = self.meta.options
        samples = truncate(
            resample(clip, options["sampling_rate"]), options["max_audio_seconds"]
        ).samples
        hop = int(extractor.hop_length)
        frames = -(-len(samples) // hop)
        features = extractor(
            samples,
            sampling_rate=options["sampling_rate"],
            padding="max_length",
            max_length=(frames + extractor.n_fft // hop + _AUDIO_TAIL_HOPS) * hop,
            truncation=False,
            return_attention_mask=True,
            return_tensors="np",
        )
        return {
            "input_features": np.asarray(features["input_features"])[..., :frames],
            "feature_attention_mask": np.asarray(features["attention_mask"])[..., :frames],
        }

    def prompt(self, item: Item, instruction: str | None = None) -> str:
        """The chat-templated prompt of one item, with one placeholder per video, audio clip
        and image."""
        text = item.get("text")
        present = [name for name in PART_ORDER if item.get(name) is not None]
        modality = ",".join(present)
        if modality not in self._prompts:
            if self._paper:
                raise BadInputError(
                    f"protocol {PAPER_PROTOCOL} embeds texts, images and image+text items only, "
                    f"as the LCO-Embedding paper's evaluation did; use protocol="
                    f"{DEFAULT_PROTOCOL} for {modality} items"
                )
            raise BadInputError(f"the prompt preset has no prompt for {modality} items; use lco")
        if text is not None:
            text = self._truncate(text)
            if instruction and self._instruction_mode == "prefix":
                text = f"{instruction}\n{text}"
        content = _content(self._prompts[modality], text)
        messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
        if instruction and self._instruction_mode == "system":
            messages.insert(0, {"role": "system", "content": instruction})
        rendered = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return str(rendered)

    def _truncate(self, text: str) -> str:
        """The text cut to ``max_text_tokens`` tokens (unchanged when it is shorter)."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) <= self._max_text_tokens:
            return text
        return str(self.tokenizer.decode(ids[: self._max_text_tokens]))

    def model_inputs(
        self,
        prompts: list[str],
        images: list[Mapping[str, np.ndarray]],
        clips: Sequence[Mapping[str, np.ndarray]] = (),
        videos: Sequence[Mapping[str, np.ndarray]] = (),
        *,
        max_length: int | None = None,
    ) -> dict[str, Any]:
        """Token ids (left-padded), the preprocessed images' and videos' pixel inputs,
        concatenated, with the seconds per temporal patch the model takes, and the clips'
        log-mel frames, padded; image, audio and video placeholders expanded. ``max_length``
        cuts each expanded prompt to that many tokens (none: never cut)."""
        inputs: dict[str, Any] = {}
        if images:
            inputs.update(concatenated(images))
            counts = inputs["image_grid_thw"].prod(dim=-1) // self.image_processor.merge_size**2
            prompts = self._expand_tokens(prompts, self.image_token, counts.tolist(), "image")
        if clips:
            inputs.update(_padded_frames(clips))
            counts = audio_token_count(inputs["feature_attention_mask"].sum(-1))
            prompts = self._expand_tokens(prompts, self.audio_token, counts.tolist(), "audio")
        if videos:
            inputs.update(concatenated(videos))
            inputs.update(self.video_patches.time_inputs(len(videos)))
            counts = self.video_patches.tokens(inputs["video_grid_thw"])
            prompts = self._expand_tokens(prompts, self.video_token, counts.tolist(), "video")
        truncation = {"truncation": True, "max_length": max_length} if max_length else {}
        inputs.update(self.tokenizer(prompts, padding=True, return_tensors="pt", **truncation))
        if (images or videos) and self._wants_token_types:
            ids = inputs["input_ids"]
            image_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
            video_id = self.tokenizer.convert_tokens_to_ids(self.video_token)
            inputs["mm_token_type_ids"] = ((ids == image_id) + 2 * (ids == video_id)).int()
        return inputs

    def _expand_tokens(
        self, prompts: list[str], token: str, counts: list[int], kind: str
    ) -> list[str]:
        """Replace the n-th ``token`` placeholder by as many tokens as the n-th input of that
        ``kind`` (image, audio, video) yields."""
        placeholders = sum(prompt.count(token) for prompt in prompts)
        if placeholders != len(counts):
            raise HarnessError(
                f"the chat template of model {self.meta.name!r} placed {placeholders} {kind} "
                f"placeholder(s) {token!r} for {len(counts)} {kind}(s); "
                "use the base model's chat template"
            )
        remaining = iter(counts)
        expanded = []
        for prompt in prompts:
            first, *rest = prompt.split(token)
            expanded.append(first + "".join(token * next(remaining) + piece for piece in rest))
        return expanded

    @torch.inference_mode()
    def embed(
        self,
        prompts: list[str],
        images: list[Mapping[str, np.ndarray]],
        clips: Sequence[Mapping[str, np.ndarray]] = (),
        videos: Sequence[Mapping[str, np.ndarray]] = (),
        *,
        max_length: int | None = None,
    ) -> np.ndarray:
        """One forward pass over rendered prompts and their preprocessed parts (in prompt
        order); the last position's final hidden state, L2-normalised (protocol lco-paper:
        rounded to float16 instead, not normalised), as float32."""
        inputs = self.model_inputs(prompts, images, clips, videos, max_length=max_length)
        inputs = {key: self._to_device(key, value) for key, value in inputs.items()}
        output = self.model(**inputs, output_hidden_states=True, return_dict=True)
        last = output.hidden_states[-1][:, -1, :]
        if self._paper:
            return last.to(torch.float16).float().cpu().numpy()
        return torch.nn.functional.normalize(last.float(), dim=-1).cpu().numpy()

    def _to_device(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """Move a tensor to the model's device; floating tensors also take the model's dtype,
        except the seconds per temporal patch (kept in float32, as the processor gives them)."""
        if value.is_floating_point() and key != self.video_patches.time_key:
            return value.to(self._device, self._dtype)
        return value.to(self._device)


def _settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option with its default, validated."""
    check_options("mllm", options, OPTIONS)
    protocol = options.get("protocol", DEFAULT_PROTOCOL)
    if protocol not in PROTOCOLS:
        raise HarnessError(
            f"option protocol must be one of {', '.join(PROTOCOLS)} (got {protocol!r}): "
            f"{DEFAULT_PROTOCOL} is mteb 2.26's LCO-Embedding wrapper, {PAPER_PROTOCOL} the "
            "LCO-Embedding paper's evaluation"
        )
    paper = protocol == PAPER_PROTOCOL
    if paper and options.get("preset", "lco") != "lco":
        raise HarnessError(
            f"option preset cannot be {options['preset']!r} with protocol={PAPER_PROTOCOL}, "
            "which takes the lco prompts as the LCO-Embedding paper wrote them; drop preset"
        )
    settings = {
        "protocol": protocol,
        "preset": options.get("preset", "lco"),
        "instruction": options.get("instruction", "ignore"),
        "max_text_tokens": options.get("max_text_tokens", DEFAULT_MAX_TEXT_TOKENS),
        "max_pixels": options.get("max_pixels", PAPER_MAX_PIXELS if paper else None),
        "cuda_dtype": options.get("cuda_dtype"),
        "max_audio_seconds": max_seconds_option(
            options.get("max_audio_seconds"), "max_audio_seconds"
        ),
    }
    if settings["preset"] not in PRESETS:
        raise HarnessError(f"option preset must be one of {sorted(PRESETS)}")
    if settings["instruction"] not in INSTRUCTION_MODES:
        raise HarnessError(f"option instruction must be one of {INSTRUCTION_MODES}")
    for option, optional in (("max_text_tokens", False), ("max_pixels", True)):
        value = settings[option]
        if not (optional and value is None) and not (isinstance(value, int) and value > 0):
            raise HarnessError(f"option {option} must be a positive integer")
    if settings["cuda_dtype"] not in (None, *DTYPES):
        raise HarnessError(f"option cuda_dtype must be one of {', '.join(DTYPES)}")
    return settings


def _content(prompt: str, text: str | None) -> list[dict[str, Any]]:
    """A prompt's user-turn parts: a placeholder part for each ``{image}``, ``{audio}`` and
    ``{video}``, text parts for the text around them (``{text}`` filled in)."""
    pieces = _PLACEHOLDER.split(prompt)
    content: list[dict[str, Any]] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            content.append({"type": piece})
        elif piece:
            content.append({"type": "text", "text": piece.format(text=text)})
    return content


def _fetch_resized(image: Image.Image) -> Image.Image:
    """The image resized as ``qwen_omni_utils.fetch_image`` does before the processor sees it
    (the LCO-Embedding paper's evaluation), which is GME's ``fetch_image`` resizing."""
    from harness.model_adapters.gme import fetch_size  # gme builds on this module

    height, width = fetch_size(image.height, image.width)
    return image.resize((width, height))


def _effective_dtype(dtype: str, device: torch.device, cuda_dtype: str | None) -> str:
    """``cuda_dtype`` replaces float32 (the CLI's default) on a CUDA device."""
    if cuda_dtype and device.type == "cuda" and dtype == "float32":
        logger.info("loading in %s on %s (the model's cuda_dtype option)", cuda_dtype, device)
        return cuda_dtype
    return dtype


def _model_class(model_type: str, name: str) -> Any:
    """The transformers class that loads a model of this type."""
    if model_type not in MODEL_CLASSES:
        raise HarnessError(
            f"model {name!r} is a {model_type!r} model; the mllm family loads "
            f"{', '.join(sorted(MODEL_CLASSES))}"
        )
    return getattr(transformers, MODEL_CLASSES[model_type])


def _chat_template(tokenizer: Any, source: str, revision: str | None, name: str) -> str:
    """The processor's chat template (what ``processor.apply_chat_template`` uses, and what
    mteb's wrappers render), else the tokenizer's."""
    for filename in ("chat_template.jinja", "chat_template.json"):
        path = cached_file(
            source,
            filename,
            revision=revision,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        if path is not None:
            return _read_template(path)
    if tokenizer.chat_template:
        return tokenizer.chat_template
    raise HarnessError(f"model {name!r} has no chat template; {CHAT_TEMPLATE_FIX}")


def _read_template(path: str) -> str:
    """A chat template file's template (``.json`` files hold it under ``chat_template``)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return json.loads(text)["chat_template"] if path.endswith(".json") else text


def _padded_frames(clips: Sequence[Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """The clips' log-mel frames padded with zeros to the longest, and their frame mask."""
    longest = max(clip["input_features"].shape[-1] for clip in clips)

    def pad(array: np.ndarray) -> np.ndarray:
        return np.pad(array, [(0, 0)] * (array.ndim - 1) + [(0, longest - array.shape[-1])])

    return {
        key: torch.from_numpy(np.concatenate([pad(clip[key]) for clip in clips]))
        for key in ("input_features", "feature_attention_mask")
    }


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _text_config(config: Any) -> Any:
    """The language model's config (the model config itself when it is not split)."""
    return getattr(config, "text_config", None) or config
