"""GME embedders (Alibaba-NLP/gme-Qwen2-VL-*): a Qwen2-VL model, GME's prompts, the last
token's final hidden state, L2-normalised.

GME renders no chat template: every item is one fixed Qwen2-VL turn, as GME's own inference
code and mteb's ``gme_v_models`` wrapper write it: a system message holding the task's
instruction for queries (and for inputs of tasks without roles) or "You are a helpful
assistant." for documents and tasks without an instruction, a user message holding the image
placeholder followed by the text, and an assistant turn holding only ``<|endoftext|>``, whose
final hidden state is the embedding. The whole prompt, image tokens included, is cut to 1800
tokens.

An image is first resized as GME's ``fetch_image`` does (RGB, sides rounded to multiples of 28,
between 4 and 16384 such blocks), then the model's image processor caps it at 1280 blocks of
28 x 28 pixels (``max_pixels``). The model itself, its image processing and the batch's forward
pass are the mllm family's (:class:`harness.model_adapters.mllm.MllmAdapter`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from harness.core.adapter import AdapterMeta, Item, Role, check_options
from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.mllm import MllmAdapter

DEFAULT_INSTRUCTION = "You are a helpful assistant."
TURN = (
    "<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n"
    "<|im_start|>assistant\n<|endoftext|>"
)
IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
MAX_LENGTH = 1800
# An image's sides are multiples of BLOCK; its area is kept between MIN and FETCH_MAX blocks
# before the image processor caps it at DEFAULT_MAX_PIXELS.
BLOCK = 28
MIN_PIXELS = 4 * BLOCK * BLOCK
FETCH_MAX_PIXELS = 16384 * BLOCK * BLOCK
DEFAULT_MAX_PIXELS = 1280 * BLOCK * BLOCK
MAX_ASPECT_RATIO = 200
OPTIONS = frozenset({"cuda_dtype", "max_pixels"})


class GmeAdapter:
    """Encode texts, images and image+text items with a GME model.

    ``options``: ``max_pixels`` (an image is resized to at most this many pixels, default
    1280 * 28 * 28 as mteb runs GME) and ``cuda_dtype`` (the dtype used on a CUDA device when
    the run asks for float32; the registered GME models set ``float16``, mteb's dtype for
    them). ``meta.dtype`` records the dtype actually used.
    """

    def __init__(self, request: LoadRequest) -> None:
        check_options("gme", request.options, OPTIONS)
        options = {"max_pixels": DEFAULT_MAX_PIXELS, **request.options}
        self.mllm = MllmAdapter(replace(request, options=options))
        if "audio" in self.mllm.meta.modalities:
            raise HarnessError(
                f"model {request.name!r} is a Qwen2.5-Omni thinker; the gme family loads "
                "Qwen2-VL models"
            )
        settings = self.mllm.meta.options
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="gme",
            similarity="cosine",
            modalities=("image", "text"),
            dtype=self.mllm.meta.dtype,
            embed_dim=self.mllm.meta.embed_dim,
            n_parameters=self.mllm.meta.n_parameters,
            uses_instructions=True,
            role_aware=True,
            options={
                "prompts": "gme",
                "pooling": "last_token",
                "normalized": True,
                "max_length": MAX_LENGTH,
                "min_pixels": MIN_PIXELS,
                "max_pixels": settings["max_pixels"],
                "image_processor": settings["image_processor"],
                "cuda_dtype": request.options.get("cuda_dtype"),
            },
        )

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Encode one batch of items, decoded or preprocessed; the instruction goes into the
        system message of queries and role-less inputs, never of documents."""
        if not items:
            return np.zeros((0, self.meta.embed_dim or 0), dtype=np.float32)
        for index, item in enumerate(items):
            if item.get("text") is None and item.get("image") is None:
                raise BadInputError(f"item {index} has neither a text nor an image")
        items = [self.preprocess(item) for item in items]
        prompts = [self.prompt(item, role=role, instruction=instruction) for item in items]
        images = [item["image"] for item in items if item.get("image") is not None]
        return self.mllm.embed(prompts, images, max_length=MAX_LENGTH)

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """Resize the item's image as GME's ``fetch_image`` does, then run the image
        processor on it (in a DataLoader worker); a preprocessed item is kept."""
        image = item.get("image")
        if isinstance(image, Image.Image):
            rgb = image.convert("RGB")
            height, width = fetch_size(rgb.height, rgb.width)
            item = self.mllm.preprocess({**item, "image": rgb.resize((width, height))})
        return item

    def prompt(self, item: Item, *, role: Role = None, instruction: str | None = None) -> str:
        """GME's prompt for the item."""
        if role == "document" or not instruction:
            instruction = DEFAULT_INSTRUCTION
        image = IMAGE if item.get("image") is not None else ""
        text = item.get("text") or ""
        return TURN.format(instruction=instruction, content=image + text)


def fetch_size(height: int, width: int) -> tuple[int, int]:
    """The size GME's ``fetch_image`` resizes an image to: sides rounded to multiples of 28,
    scaled down to at most 16384 blocks of 28 x 28 or up to at least 4, the aspect ratio
    capped at 200."""
    new_height = max(BLOCK, round(height / BLOCK) * BLOCK)
    new_width = max(BLOCK, round(width / BLOCK) * BLOCK)
    if new_height * new_width > FETCH_MAX_PIXELS:
        beta = math.sqrt(height * width / FETCH_MAX_PIXELS)
        new_height = math.floor(height / beta / BLOCK) * BLOCK
        new_width = math.floor(width / beta / BLOCK) * BLOCK
    elif new_height * new_width < MIN_PIXELS:
        beta = math.sqrt(MIN_PIXELS / (height * width))
        new_height = math.ceil(height * beta / BLOCK) * BLOCK
        new_width = math.ceil(width * beta / BLOCK) * BLOCK
    if max(new_height, new_width) / min(new_height, new_width) > MAX_ASPECT_RATIO:
        if new_height > new_width:
            new_height = new_width * MAX_ASPECT_RATIO
        else:
            new_width = new_height * MAX_ASPECT_RATIO
    return new_height, new_width
