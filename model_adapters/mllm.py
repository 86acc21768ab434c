"""MLLM embedders (LCO-Embedding, E5-V style): the last token's final hidden state.

Each item becomes one chat-templated prompt: the image (if any), then the text, then a
summarising suffix for the item's modality; the prompt is rendered with the model's own chat
template and a generation prompt. A batch is left-padded, so the last position of every row is
that item's last token; its final hidden state, L2-normalised, is the embedding.

The processor is assembled from the tokenizer and the image processor rather than through
``AutoProcessor``, whose Qwen2-VL/2.5-VL/Omni variants require a video processor that needs
torchvision: the image placeholder is expanded here to ``prod(image_grid_thw) / merge_size**2``
tokens, exactly as those processors do.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer
from transformers.utils import cached_file

from harness.core.adapter import AdapterMeta, Item, Role, check_options
from harness.core.errors import BadInputError, HarnessError
from model_adapters.family import LoadRequest
from model_adapters.torch_utils import (
    DTYPES,
    concatenated,
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
# Prompt presets: the user turn's text for each modality, ``{text}`` standing for the item's text.
# An image, when present, always comes first in the user turn. ``lco`` follows mteb's
# LCO-Embedding wrapper (an image+text item takes the image suffix); ``e5v`` takes E5-V's wording
# (mteb's e5_v.py), rendered with the model's chat template.
PRESETS: dict[str, dict[str, str]] = {
    "lco": {
        "text": "{text}\nSummarize the above text in one word:",
        "image": "\nSummarize the above image in one word:",
        "image,text": "{text}\nSummarize the above image in one word:",
    },
    "e5v": {
        "text": "{text}\nSummary above sentence in one word: ",
        "image": "\nSummary above image in one word: ",
        "image,text": 'Modify this image with "{text}" Describe modified image in one word: ',
    },
}
# Where a task instruction goes: nowhere (as mteb's and the authors' LCO evaluation code do),
# as the system message (replacing the template's default one), or before the item's text.
INSTRUCTION_MODES = ("ignore", "system", "prefix")
OPTIONS = frozenset({"preset", "instruction", "max_text_tokens", "max_pixels", "cuda_dtype"})
DEFAULT_MAX_TEXT_TOKENS = 300
CHAT_TEMPLATE_FIX = (
    "add the chat template of its base model to the model directory "
    "(chat_template.jinja, chat_template.json, or `chat_template` in tokenizer_config.json)"
)


class MllmAdapter:
    """Encode texts, images and image+text items with a Qwen2-VL-family model.

    ``options``: ``preset`` (``"lco"`` or ``"e5v"``), ``instruction`` (one of
    ``INSTRUCTION_MODES``, default ``"ignore"``), ``max_text_tokens`` (texts are cut to this
    many tokens before prompting, default 300 as in the LCO-Embedding evaluation),
    ``max_pixels`` (an image is resized to at most this many pixels; default: the image
    processor's own limit, as mteb runs it) and
    ``cuda_dtype`` (the dtype used on a CUDA device when the run asks for float32, the CLI's
    default; registered LCO models set ``bfloat16``, the dtype their authors and mteb run them
    in. An explicit ``--dtype float32`` cannot be told apart from the default: to run such a
    model in float32 on CUDA, pass its hub id instead of its short name). ``meta.dtype``, and so
    the fingerprint and the result file, record the dtype actually used.
    """

    def __init__(self, request: LoadRequest) -> None:
        settings = _settings(request.options)
        self._device = resolve_device(request.device)
        dtype = _effective_dtype(request.dtype, self._device, settings.pop("cuda_dtype"))
        self._dtype = resolve_dtype(dtype)
        config = AutoConfig.from_pretrained(request.source, revision=request.hub_revision)
        config = getattr(config, "thinker_config", config)
        self.model = _model_class(config.model_type, request.name).from_pretrained(
            request.source, revision=request.hub_revision, dtype=self._dtype
        )
        self.model.to(self._device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(
            request.source, revision=request.hub_revision
        )
        self.tokenizer.padding_side = "left"
        self.tokenizer.chat_template = _chat_template(
            self.tokenizer, request.source, request.hub_revision, request.name
        )
        self.image_processor = AutoImageProcessor.from_pretrained(
            request.source, revision=request.hub_revision
        )
        if settings["max_pixels"] is None:
            settings["max_pixels"] = int(self.image_processor.size["longest_edge"])
        self.image_token = str(self.tokenizer.convert_ids_to_tokens(config.image_token_id))
        self._prompts = PRESETS[settings["preset"]]
        self._instruction_mode = settings["instruction"]
        self._max_text_tokens = settings["max_text_tokens"]
        # Qwen2-VL/2.5-VL compute multimodal RoPE from per-token modality types (1 = image).
        self._wants_token_types = (
            "mm_token_type_ids" in inspect.signature(self.model.forward).parameters
        )
        self._last_position_only()
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="mllm",
            similarity="cosine",
            modalities=("image", "text"),
            dtype=dtype,
            embed_dim=int(_text_config(self.model.config).hidden_size),
            n_parameters=n_parameters(self.model),
            uses_instructions=self._instruction_mode != "ignore",
            options={
                **settings,
                "pooling": "last_token",
                "padding_side": "left",
                "image_processor": type(self.image_processor).__name__,
            },
        )

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
            if item.get("text") is None and item.get("image") is None:
                raise BadInputError(f"item {index} has neither a text nor an image")
        items = [self.preprocess(item) for item in items]
        prompts = [self.prompt(item, instruction) for item in items]
        images = [item["image"] for item in items if item.get("image") is not None]
        return self._embed(prompts, images)

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """Run the image processor on the item's image (in a DataLoader worker): ``image``
        becomes its patches, ``{"pixel_values": (patches, d), "image_grid_thw": (1, 3)}``,
        at most ``max_pixels`` pixels. An item without a PIL image (text only, or already
        preprocessed) is returned as it is."""
        image = item.get("image")
        if not isinstance(image, Image.Image):
            return item
        size = {
            "shortest_edge": self.image_processor.size["shortest_edge"],
            "longest_edge": self.meta.options["max_pixels"],
        }
        pixels = self.image_processor(images=[_rgb(image)], size=size, return_tensors="pt")
        return {**item, "image": to_numpy(pixels)}

    def prompt(self, item: Item, instruction: str | None = None) -> str:
        """The chat-templated prompt of one item, with one image placeholder per image."""
        has_image = item.get("image") is not None
        text = item.get("text")
        present = (("image", has_image), ("text", text is not None))
        modality = ",".join(name for name, here in present if here)
        if text is not None:
            text = self._truncate(text)
            if instruction and self._instruction_mode == "prefix":
                text = f"{instruction}\n{text}"
        content: list[dict[str, str]] = [{"type": "image"}] if has_image else []
        content.append({"type": "text", "text": self._prompts[modality].format(text=text)})
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
        self, prompts: list[str], images: list[Mapping[str, np.ndarray]]
    ) -> dict[str, Any]:
        """Token ids (left-padded) and the preprocessed images' pixel inputs, concatenated,
        image placeholders expanded."""
        inputs: dict[str, Any] = {}
        if images:
            inputs.update(concatenated(images))
            prompts = self._expand_image_tokens(prompts, inputs["image_grid_thw"])
        inputs.update(self.tokenizer(prompts, padding=True, return_tensors="pt"))
        if images and self._wants_token_types:
            image_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
            inputs["mm_token_type_ids"] = (inputs["input_ids"] == image_id).int()
        return inputs

    def _expand_image_tokens(self, prompts: list[str], grid_thw: torch.Tensor) -> list[str]:
        """Replace the n-th image placeholder by as many tokens as the n-th image yields."""
        counts = (grid_thw.prod(dim=-1) // self.image_processor.merge_size**2).tolist()
        placeholders = sum(prompt.count(self.image_token) for prompt in prompts)
        if placeholders != len(counts):
            raise HarnessError(
                f"the chat template of model {self.meta.name!r} placed {placeholders} image "
                f"placeholder(s) {self.image_token!r} for {len(counts)} image(s); "
                "use the base model's chat template"
            )
        remaining = iter(counts)
        expanded = []
        for prompt in prompts:
            first, *rest = prompt.split(self.image_token)
            expanded.append(
                first + "".join(self.image_token * next(remaining) + piece for piece in rest)
            )
        return expanded

    @torch.inference_mode()
    def _embed(self, prompts: list[str], images: list[Mapping[str, np.ndarray]]) -> np.ndarray:
        """One forward pass; the last position's final hidden state, L2-normalised."""
        inputs = self.model_inputs(prompts, images)
        inputs = {key: self._to_device(value) for key, value in inputs.items()}
        output = self.model(**inputs, output_hidden_states=True, return_dict=True)
        last = output.hidden_states[-1][:, -1, :].float()
        return torch.nn.functional.normalize(last, dim=-1).cpu().numpy()

    def _to_device(self, value: torch.Tensor) -> torch.Tensor:
        """Move a tensor to the model's device; floating tensors also take the model's dtype."""
        if value.is_floating_point():
            return value.to(self._device, self._dtype)
        return value.to(self._device)


def _settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option with its default, validated."""
    check_options("mllm", options, OPTIONS)
    settings = {
        "preset": options.get("preset", "lco"),
        "instruction": options.get("instruction", "ignore"),
        "max_text_tokens": options.get("max_text_tokens", DEFAULT_MAX_TEXT_TOKENS),
        "max_pixels": options.get("max_pixels"),
        "cuda_dtype": options.get("cuda_dtype"),
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


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _text_config(config: Any) -> Any:
    """The language model's config (the model config itself when it is not split)."""
    return getattr(config, "text_config", None) or config
