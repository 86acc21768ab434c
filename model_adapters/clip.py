"""Dual encoders from transformers (CLIP, SigLIP, ...): one tower per modality.

Texts and images of a batch are encoded in one forward pass each. An item with both an image
and a text becomes the sum of the two raw embeddings (``fusion="sum"``, the default), as the
CLIP, SigLIP, ALIGN, OpenCLIP, EVA-CLIP, MetaCLIP and Jina-CLIP wrappers of mteb 2.26 fuse it;
``fusion="normalized_sum"`` adds the L2-normalised embeddings instead, so that neither tower
outweighs the other. The fusion is in the fingerprint, so the two never share cache entries.

``autocast="bfloat16"`` (or ``"float16"``) runs both towers under ``torch.autocast`` on the
model's device (meant for CUDA) while the weights stay in ``dtype``; embeddings come back in
float32, so similarities are always computed in float32. It is in the fingerprint.

The weights of a local model directory are loaded on first use: the metadata comes from the
config and the safetensors headers, so a run served wholly from the embedding cache never
loads them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

from harness.core.adapter import AdapterMeta, Item, Role, check_options, rows_by_part
from harness.core.errors import HarnessError
from model_adapters.family import LoadRequest
from model_adapters.torch_utils import (
    concatenated,
    n_parameters,
    resolve_device,
    resolve_dtype,
    to_numpy,
)

# Model types whose text tower was trained on fixed-length, padded sequences.
MAX_LENGTH_PADDING_TYPES = frozenset({"siglip", "siglip2"})
FUSIONS = ("sum", "normalized_sum")
OPTIONS = frozenset({"padding", "max_length", "fusion", "autocast"})
AUTOCAST_DTYPES = ("bfloat16", "float16")
# Tokenizers without a known limit report a huge sentinel as model_max_length.
_NO_LIMIT = 1_000_000


class ClipAdapter:
    """Encode texts and images with a transformers model that has text and image towers.

    ``options``: ``padding`` (``"longest"`` or ``"max_length"``; SigLIP-family models default
    to ``"max_length"``, others to ``"longest"``), ``max_length`` (defaults to the tokenizer's
    limit) and ``fusion`` (``"sum"``, mteb's, or ``"normalized_sum"``).
    """

    def __init__(self, request: LoadRequest) -> None:
        check_options("clip", request.options, OPTIONS)
        self._device = resolve_device(request.device)
        self._dtype = resolve_dtype(request.dtype)
        self._source, self._hub_revision = request.source, request.hub_revision
        self._model: torch.nn.Module | None = None
        self.config = AutoConfig.from_pretrained(request.source, revision=request.hub_revision)
        self.tokenizer = AutoTokenizer.from_pretrained(
            request.source, revision=request.hub_revision
        )
        self.image_processor = AutoImageProcessor.from_pretrained(
            request.source, revision=request.hub_revision
        )
        settings = self._settings(request.options)
        self._padding = settings["padding"]
        self._max_length = settings["max_length"]
        self._fusion = settings["fusion"]
        self._autocast = settings.get("autocast")
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="clip",
            similarity="cosine",
            modalities=("image", "text"),
            dtype=request.dtype,
            embed_dim=_embed_dim(self.config),
            n_parameters=_stored_parameters(request.source) or n_parameters(self.model),
            options=settings,
        )

    @property
    def model(self) -> torch.nn.Module:
        """The transformers model, loaded (once) on first use."""
        if self._model is None:
            model = AutoModel.from_pretrained(
                self._source, revision=self._hub_revision, dtype=self._dtype
            )
            self._model = model.to(self._device).eval()
        return self._model

    def _settings(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Every setting that changes the vectors, defaults filled in."""
        model_type = self.config.model_type
        default_padding = "max_length" if model_type in MAX_LENGTH_PADDING_TYPES else "longest"
        settings = {
            "padding": options.get("padding", default_padding),
            "max_length": int(options.get("max_length") or self._default_max_length()),
            "fusion": options.get("fusion", FUSIONS[0]),
            "image_processor": type(self.image_processor).__name__,
        }
        if settings["padding"] not in ("longest", "max_length"):
            raise HarnessError(
                f"option padding must be 'longest' or 'max_length', got {settings['padding']!r}"
            )
        if settings["fusion"] not in FUSIONS:
            raise HarnessError(
                f"option fusion must be one of {FUSIONS}, got {settings['fusion']!r}"
            )
        autocast = options.get("autocast")
        if autocast is not None:  # absent from the fingerprint unless set
            if autocast not in AUTOCAST_DTYPES:
                raise HarnessError(
                    f"option autocast must be one of {AUTOCAST_DTYPES}, got {autocast!r}"
                )
            settings["autocast"] = autocast
        return settings

    def _default_max_length(self) -> int:
        """The tokenizer's limit, or the text tower's position count when it has none."""
        limit = self.tokenizer.model_max_length
        if limit and limit < _NO_LIMIT:
            return int(limit)
        return int(_text_config(self.config).max_position_embeddings)

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """Run the image processor on the item's image (in a DataLoader worker): ``image``
        becomes its arrays, ``{"pixel_values": (1, 3, h, w), ...}``. An item without a PIL
        image (text only, or already preprocessed) is returned as it is."""
        image = item.get("image")
        if not isinstance(image, Image.Image):
            return item
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return {**item, "image": to_numpy(self.image_processor(images=[rgb], return_tensors="pt"))}

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Encode one batch of items, decoded or preprocessed; ``role`` and ``instruction`` are
        ignored."""
        if not items:
            return np.zeros((0, self.meta.embed_dim or 0), dtype=np.float32)
        items = [self.preprocess(item) for item in items]
        texts, images = rows_by_part(items, ("text", "image"), "neither a text nor an image")
        text_vectors = self._encode_texts([items[i]["text"] for i in texts])
        image_vectors = self._encode_images([items[i]["image"] for i in images])
        return self._combine(len(items), texts, text_vectors, images, image_vectors)

    def _combine(
        self,
        n: int,
        texts: list[int],
        text_vectors: torch.Tensor,
        images: list[int],
        image_vectors: torch.Tensor,
    ) -> np.ndarray:
        """Place text and image vectors at their items' rows, fusing items that have both."""
        if self._fusion == "normalized_sum" and texts and images:
            both = set(texts) & set(images)
            text_vectors = _normalize_rows(text_vectors, [i in both for i in texts])
            image_vectors = _normalize_rows(image_vectors, [i in both for i in images])
        dim = (text_vectors if texts else image_vectors).shape[1]
        out = torch.zeros(n, dim, dtype=torch.float32)
        for rows, vectors in ((texts, text_vectors), (images, image_vectors)):
            if rows:
                out[rows] += vectors
        return out.numpy()

    @torch.inference_mode()
    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        """One forward pass of the text tower; float32 on the CPU."""
        if not texts:
            return torch.empty(0)
        batch = self.tokenizer(
            texts,
            padding=self._padding,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        )
        return self._features("get_text_features", batch)

    @torch.inference_mode()
    def _encode_images(self, images: list[Mapping[str, np.ndarray]]) -> torch.Tensor:
        """One forward pass of the image tower on preprocessed images; float32 on the CPU."""
        if not images:
            return torch.empty(0)
        batch = concatenated(images)
        return self._features("get_image_features", batch)

    def _features(self, method: str, batch: Mapping[str, Any]) -> torch.Tensor:
        """Run the model's ``get_*_features`` method on the inputs it names; return its pooled
        output."""
        tower = getattr(self.model, method)
        accepted = _named_parameters(tower)
        inputs = {key: self._to_device(value) for key, value in batch.items() if key in accepted}
        with torch.autocast(
            device_type=self._device.type,
            dtype=resolve_dtype(self._autocast or "bfloat16"),
            enabled=self._autocast is not None,
        ):
            output = tower(**inputs)
        pooled = output if isinstance(output, torch.Tensor) else output.pooler_output
        return pooled.float().cpu()

    def _to_device(self, value: torch.Tensor) -> torch.Tensor:
        """Move a tensor to the model's device; floating tensors also take the model's dtype."""
        if value.is_floating_point():
            return value.to(self._device, self._dtype)
        return value.to(self._device)


def _stored_parameters(source: str) -> int | None:
    """The parameter count of a local directory's safetensors files, read from their headers
    (tied weights are stored once); None when the source is not such a directory."""
    files = sorted(Path(source).glob("*.safetensors")) if Path(source).is_dir() else []
    if not files:
        return None
    from safetensors import safe_open

    total = 0
    for path in files:
        with safe_open(str(path), framework="pt") as stored:
            total += sum(math.prod(stored.get_slice(k).get_shape()) for k in stored.keys())  # noqa: SIM118
    return total


def _named_parameters(function: Callable[..., Any]) -> set[str]:
    """The explicitly named parameters of ``function`` (not ``*args``/``**kwargs``)."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind not in variadic}


def _normalize_rows(vectors: torch.Tensor, mask: list[bool]) -> torch.Tensor:
    """L2-normalise the rows where ``mask`` is true, leave the others as they are."""
    selected = torch.tensor(mask, dtype=torch.bool)
    normalized = torch.nn.functional.normalize(vectors, dim=-1)
    return torch.where(selected[:, None], normalized, vectors)


def _text_config(config: Any) -> Any:
    """The text tower's config (the model config itself when it is not split)."""
    return getattr(config, "text_config", None) or config


def _embed_dim(config: Any) -> int | None:
    """The joint embedding size: the projection size, else the text tower's hidden size."""
    dim = getattr(config, "projection_dim", None) or getattr(
        _text_config(config), "projection_size", None
    )
    return int(dim or _text_config(config).hidden_size)
