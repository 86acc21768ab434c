"""Dual encoders from transformers (CLIP, SigLIP, ...): one tower per modality.

Texts and images of a batch are encoded in one forward pass each. An item with both an image
and a text becomes the sum of the two raw embeddings (``fusion="sum"``, the default), as the
CLIP, SigLIP, ALIGN, OpenCLIP, EVA-CLIP, MetaCLIP and Jina-CLIP wrappers of mteb 2.26 fuse it;
``fusion="normalized_sum"`` adds the L2-normalised embeddings instead, so that neither tower
outweighs the other. The fusion is in the fingerprint, so the two never share cache entries.

``autocast="bfloat16"`` (or ``"float16"``) runs both towers under ``torch.autocast`` on the
model's device (meant for CUDA) while the weights stay in ``dtype``; embeddings come back in
float32, so similarities are always computed in float32. It is in the fingerprint.

Video is the frame-pooling baseline of mteb's ``Video2ImagesWrapper``: in the DataLoader
workers ``preprocess`` samples frames (by default 8, evenly spaced: ``FrameSampling(num_frames=8)``)
and runs the image processor on each; ``encode`` embeds every frame with the image tower and
takes the plain mean of the frames' raw embeddings (no normalisation before or after), as mteb
pools them. Options ``video_num_frames``, or ``video_fps`` with ``video_max_frames``, change
the sampling. The sampling, the pooling and the frame size are the adapter's video
``modality_options``: recorded in every result, keyed into video items' cache keys and video
tasks' run identities, and kept out of the fingerprint, so the keys and results of image and
text runs stay as they were before video existed.

The weights of a local model directory are loaded on first use: the metadata comes from the
config and the safetensors headers, so a run served wholly from the embedding cache never
loads them. A checkpoint that lacks weights of the class it loads as is refused then, since
transformers would fill them with random values.

Besides CLIP and SigLIP (SigLIP 2's fixed-resolution checkpoints among them), the family loads
SigLIP 2 NaFlex (patch-based images: ``pixel_attention_mask`` and ``spatial_shapes`` travel
with the pixels), ALIGN, AltCLIP, Chinese-CLIP, MetaCLIP 2, GroupViT, OWL-ViT/OWLv2, AIMv2,
CLIPSeg and ``VisionTextDualEncoderModel``: each through its own tokenizer and image processor.
"""

from __future__ import annotations

import inspect
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

from harness.core.adapter import AdapterMeta, Item, Role, check_options, rows_by_part
from harness.core.errors import HarnessError
from harness.core.video import FrameSampling, Video
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.torch_utils import (
    concatenated,
    from_source,
    n_parameters,
    resolve_device,
    resolve_dtype,
    to_numpy,
)

# Model types whose text tower was trained on fixed-length, padded sequences.
MAX_LENGTH_PADDING_TYPES = frozenset({"siglip", "siglip2"})
FUSIONS = ("sum", "normalized_sum")
# Frame sampling options, named as ``FrameSampling.options`` records them.
VIDEO_OPTIONS = {
    "video_num_frames": "num_frames",
    "video_fps": "fps",
    "video_max_frames": "max_frames",
}
OPTIONS = frozenset({"padding", "max_length", "fusion", "autocast", *VIDEO_OPTIONS})
# mteb's Video2ImagesWrapper samples 8 evenly spaced frames unless told otherwise.
DEFAULT_FRAME_SAMPLING = FrameSampling(num_frames=8)
AUTOCAST_DTYPES = ("bfloat16", "float16")
# Tokenizers without a known limit report a huge sentinel as model_max_length.
_NO_LIMIT = 1_000_000


class ClipAdapter:
    """Encode texts and images with a transformers model that has text and image towers.

    ``options``: ``padding`` (``"longest"`` or ``"max_length"``; SigLIP-family models default
    to ``"max_length"``, others to ``"longest"``), ``max_length`` (defaults to the tokenizer's
    limit), ``fusion`` (``"sum"``, mteb's, or ``"normalized_sum"``) and the video frame
    sampling (``video_num_frames``, or ``video_fps`` and ``video_max_frames``; 8 frames by
    default).
    """

    def __init__(self, request: LoadRequest) -> None:
        check_options("clip", request.options, OPTIONS)
        self._device = resolve_device(request.device)
        self._dtype = resolve_dtype(request.dtype)
        self._source, self._hub_revision = request.source, request.hub_revision
        self._model: torch.nn.Module | None = None
        self.config = from_source(AutoConfig, request)
        self.tokenizer = from_source(AutoTokenizer, request)
        self.image_processor = from_source(AutoImageProcessor, request)
        self.frame_sampling = _frame_sampling(request.options)
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
            modalities=("image", "text", "video"),
            dtype=request.dtype,
            embed_dim=_embed_dim(self.config),
            n_parameters=_stored_parameters(request.source) or n_parameters(self.model),
            options=settings,
            modality_options={
                "video": {
                    **self.frame_sampling.options(),
                    "video_pooling": "mean",
                    "video_frame_size": _frame_size(self.image_processor),
                }
            },
        )

    @property
    def model(self) -> torch.nn.Module:
        """The transformers model, loaded (once) on first use."""
        if self._model is None:
            model, loading = AutoModel.from_pretrained(
                self._source,
                revision=self._hub_revision,
                dtype=self._dtype,
                output_loading_info=True,
            )
            _refuse_missing_weights(self._source, type(model).__name__, loading["missing_keys"])
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
        """Run the image processor on the item's image and on its video's sampled frames (in a
        DataLoader worker): ``image`` becomes its arrays, ``{"pixel_values": (1, 3, h, w),
        ...}``, and ``video`` those of its frames, ``(frames, 3, h, w)``. An item with neither
        (text only, or already preprocessed) is returned as it is."""
        arrays = {}
        image = item.get("image")
        if isinstance(image, Image.Image):
            arrays["image"] = self._pixels([image if image.mode == "RGB" else image.convert("RGB")])
        video = item.get("video")
        if isinstance(video, Video):
            frames = video.frames(self.frame_sampling)
            arrays["video"] = self._pixels([Image.fromarray(frame) for frame in frames])
        return {**item, **arrays} if arrays else item

    def _pixels(self, images: list[Image.Image]) -> dict[str, np.ndarray]:
        """The image processor's arrays for RGB images, one row each."""
        return to_numpy(self.image_processor(images=images, return_tensors="pt"))

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Encode one batch of items, decoded or preprocessed; ``role`` and ``instruction`` are
        ignored."""
        if not items:
            return np.zeros((0, self.meta.embed_dim or 0), dtype=np.float32)
        items = [self.preprocess(item) for item in items]
        texts, images, videos = rows_by_part(
            items, ("text", "image", "video"), "neither a text, an image nor a video"
        )
        parts = [
            (texts, self._encode_texts([items[i]["text"] for i in texts])),
            (images, self._encode_images([items[i]["image"] for i in images])),
            (videos, self._encode_videos([items[i]["video"] for i in videos])),
        ]
        return self._combine(len(items), [(rows, vectors) for rows, vectors in parts if rows])

    def _combine(self, n: int, parts: list[tuple[list[int], torch.Tensor]]) -> np.ndarray:
        """Place each part's vectors at its items' rows, fusing the parts of items that have
        several (text and image, say)."""
        if self._fusion == "normalized_sum" and len(parts) > 1:
            counts = Counter(row for rows, _ in parts for row in rows)
            parts = [
                (rows, _normalize_rows(vectors, [counts[i] > 1 for i in rows]))
                for rows, vectors in parts
            ]
        out = torch.zeros(n, parts[0][1].shape[1], dtype=torch.float32)
        for rows, vectors in parts:
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

    @torch.inference_mode()
    def _encode_videos(self, videos: list[Mapping[str, np.ndarray]]) -> torch.Tensor:
        """Every sampled frame through the image tower in one forward pass, then the mean of
        each video's frame embeddings; float32 on the CPU."""
        if not videos:
            return torch.empty(0)
        counts = [len(video["pixel_values"]) for video in videos]
        frames = self._features("get_image_features", concatenated(videos))
        return torch.stack([chunk.mean(dim=0) for chunk in torch.split(frames, counts)])

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


def _frame_size(image_processor: Any) -> Any:
    """The size the image processor brings each frame to (its crop, else its resize); for a
    patch-budget processor (SigLIP 2 NaFlex), its patch size and budget."""
    budget = getattr(image_processor, "max_num_patches", None)
    if budget is not None:
        return {"max_num_patches": budget, "patch_size": image_processor.patch_size}
    size = getattr(image_processor, "crop_size", None) or getattr(image_processor, "size", None)
    if size is None or isinstance(size, int):
        return size
    keys = ("height", "width", "shortest_edge", "longest_edge")
    values = {
        key: size.get(key) if isinstance(size, Mapping) else getattr(size, key, None)
        for key in keys
    }
    return {key: value for key, value in values.items() if value is not None}


def _frame_sampling(options: Mapping[str, Any]) -> FrameSampling:
    """The frame sampling the video options ask for; 8 evenly spaced frames by default."""
    given = {field: options[key] for key, field in VIDEO_OPTIONS.items() if key in options}
    if not given.keys() & {"num_frames", "fps"}:
        given.setdefault("num_frames", DEFAULT_FRAME_SAMPLING.num_frames)
    try:
        return FrameSampling(**given)
    except (TypeError, ValueError) as error:
        raise HarnessError(f"video options {sorted(given)}: {error}") from None


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


def _refuse_missing_weights(source: str, model_class: str, missing: Sequence[str]) -> None:
    """Refuse a checkpoint that lacks weights of the model class it loads as: transformers
    would fill them with random values (a BLIP retrieval checkpoint loaded as ``BlipModel``
    has no ``text_projection``, say), and every vector would be noise."""
    if missing:
        shown = ", ".join(sorted(missing)[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise HarnessError(
            f"model {source}: its checkpoint has no weights for {shown}{more} of "
            f"{model_class}, so the clip family would embed with random values; pass a "
            "checkpoint saved from that class (its get_text_features/get_image_features "
            "model), or a family that loads this architecture"
        )


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
