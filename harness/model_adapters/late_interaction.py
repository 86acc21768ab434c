"""Late-interaction (multi-vector) retrievers from transformers: ColPali and ColQwen2.

Each item becomes one float32 ``(tokens, d)`` array: the model's L2-normalised token
embeddings at the real (attention-mask) positions. Texts take the processor's query path (its
query prefix and ten query-augmentation tokens, as the models were trained), images its page
path (the visual prompt). An item with both a text and an image gets its text tokens followed by
its image tokens, as mteb's ColPali wrapper concatenates them. Scored by MaxSim.

These are transformers' own classes, which load the converted ``-hf`` checkpoints (for example
``vidore/colqwen2-v1.0-hf``). Their processors end each query with a newline, which mteb's
colpali_engine path does not add.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoProcessor, AutoTokenizer

from harness.core.adapter import AdapterMeta, Item, Role
from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.torch_utils import (
    from_source,
    load_eval_model,
    n_parameters,
    resolve_device,
    resolve_dtype,
    to_numpy,
)

FAMILY = "late-interaction"
# config.json model type -> (retrieval model class, processor class) in transformers.
CLASSES = {
    "colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
    "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor"),
}


class LateInteractionAdapter:
    """Encode texts and page images into per-token embeddings with a ``*ForRetrieval`` model."""

    def __init__(self, request: LoadRequest) -> None:
        if request.options:
            raise HarnessError(
                f"the {FAMILY} family takes no options, got {sorted(request.options)}"
            )
        self._device = resolve_device(request.device)
        self._dtype = resolve_dtype(request.dtype)
        config = from_source(AutoConfig, request)
        if config.model_type not in CLASSES:
            raise HarnessError(
                f"{request.source} is a {config.model_type!r} model; the {FAMILY} family loads "
                f"{', '.join(CLASSES)}"
            )
        model_class, processor_class = (
            getattr(transformers, n) for n in CLASSES[config.model_type]
        )
        self.model = load_eval_model(model_class, request, self._device, self._dtype)
        self.processor = _processor(request.source, request.hub_revision, processor_class)
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family=FAMILY,
            similarity="maxsim",
            modalities=("image", "text"),
            dtype=request.dtype,
            embed_dim=int(config.embedding_dim),
            n_parameters=n_parameters(self.model),
            options={
                "processor": type(self.processor).__name__,
                "image_processor": type(self.processor.image_processor).__name__,
                "query_prefix": self.processor.query_prefix,
                "visual_prompt_prefix": self.processor.visual_prompt_prefix,
            },
        )

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> list[np.ndarray]:
        """One ``(tokens, d)`` array per item, decoded or preprocessed; ``role`` and
        ``instruction`` are ignored."""
        items = [self.preprocess(item) for item in items]
        texts = [i for i, item in enumerate(items) if item.get("text") is not None]
        images = [i for i, item in enumerate(items) if item.get("image") is not None]
        empty = sorted(set(range(len(items))) - set(texts) - set(images))
        if empty:
            raise BadInputError(f"item {empty[0]} has neither a text nor an image")
        parts: list[list[np.ndarray]] = [[] for _ in items]
        if texts:
            batch = self.processor(text=[items[i]["text"] for i in texts], return_tensors="pt")
            for i, tokens in zip(texts, self._embed(batch), strict=True):
                parts[i].append(tokens)
        if images:
            batch = self.collate([items[i]["image"] for i in images])
            for i, tokens in zip(images, self._embed(batch), strict=True):
                parts[i].append(tokens)
        return [np.concatenate(item_parts) for item_parts in parts]

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """Run the processor's page path on the item's image (in a DataLoader worker):
        ``image`` becomes its model inputs (token ids with the visual prompt, pixel values).
        An item without a PIL image (text only, or already preprocessed) is returned as it is."""
        image = item.get("image")
        if not isinstance(image, Image.Image):
            return item
        return {
            **item,
            "image": to_numpy(self.processor(images=[_rgb(image)], return_tensors="pt")),
        }

    def collate(self, pages: list[Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """Preprocessed pages as one batch, padded as the processor pads a batch of pages:
        token rows with the tokenizer's padding on its side, pixel patches (ColQwen2: one
        row per patch) with zeros at the end."""
        tokenizer = self.processor.tokenizer
        pads = {"input_ids": tokenizer.pad_token_id, "labels": -100}
        batch = {}
        for key in pages[0]:
            values = [torch.from_numpy(page[key]) for page in pages]
            longest = max(value.shape[1] for value in values)
            padded = []
            for value in values:
                missing = longest - value.shape[1]
                if key == "pixel_values":
                    value = torch.nn.functional.pad(value, (0, 0, 0, missing))
                else:
                    side = (missing, 0) if tokenizer.padding_side == "left" else (0, missing)
                    value = torch.nn.functional.pad(value, side, value=pads.get(key, 0))
                padded.append(value)
            batch[key] = torch.cat(padded)
        return batch

    @torch.inference_mode()
    def _embed(self, batch: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
        """One forward pass; each row's embeddings at its attention-mask positions, float32."""
        inputs = {key: self._to_device(value) for key, value in batch.items()}
        embeddings = self.model(**inputs).embeddings.float().cpu()
        mask = batch["attention_mask"].bool()
        return [row[keep].numpy() for row, keep in zip(embeddings, mask, strict=True)]

    def _to_device(self, value: torch.Tensor) -> torch.Tensor:
        """Move a tensor to the model's device; floating tensors also take the model's dtype."""
        if value.is_floating_point():
            return value.to(self._device, self._dtype)
        return value.to(self._device)


def _processor(source: str, revision: str | None, processor_class: type) -> Any:
    """The saved processor, or one built from the image processor and the tokenizer.

    The fallback serves checkpoints whose processor cannot be built as saved, for instance
    when it names a torchvision image processor and torchvision is missing.
    """
    try:
        return AutoProcessor.from_pretrained(source, revision=revision)
    except (OSError, ValueError, ImportError, TypeError):
        return processor_class(
            image_processor=AutoImageProcessor.from_pretrained(source, revision=revision),
            tokenizer=AutoTokenizer.from_pretrained(source, revision=revision),
        )


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")
