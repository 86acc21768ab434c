"""LLaVA-NeXT last-token embedders (E5-V): the last token's final hidden state.

E5-V (royokong/e5-v, a Llama-3 LLaVA-NeXT) embeds an item by prompting the model to summarise
it "in one word" and taking the final hidden state of the prompt's last token, unnormalised.
The prompts are E5-V's, as its authors and mteb's ``e5_v`` wrapper write them: one user turn in
Llama-3's chat format, with a blank assistant turn (``"\\n\\n \\n"``); the tokenizer adds
``<|begin_of_text|>``. A text, an image and an image with a text (a modification to apply)
each have their own prompt; task instructions are not used.

Images go through the model's own LLaVA-NeXT image processor (any-resolution crops) in the
DataLoader workers. Each ``<image>`` placeholder is expanded to as many tokens as the model
yields for that image: the base crop's patches, then the grid of crops unpadded to the image's
aspect ratio, with one newline token per row. A batch is left-padded, so the last position of
every row is its item's last token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoTokenizer,
    LlavaNextForConditionalGeneration,
)
from transformers.models.llava_next.modeling_llava_next import (
    get_anyres_image_grid_shape,
    unpad_image,
)

from harness.core.adapter import AdapterMeta, Item, Role, check_options
from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.mllm import _effective_dtype
from harness.model_adapters.torch_utils import (
    DTYPES,
    from_source,
    load_eval_model,
    n_parameters,
    resolve_device,
    resolve_dtype,
    to_numpy,
)

# E5-V's Llama-3 turn around every prompt, and its prompts by the parts an item has; ``{text}``
# stands for the item's text and ``<image>`` for its image.
E5V_TURN = (
    "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n \n"
)
E5V_PROMPTS = {
    "text": "{text}\nSummary above sentence in one word: ",
    "image": "<image>\nSummary above image in one word: ",
    "image,text": (
        '[INST] <image> Modify this image with "{text}" Describe modified image in one word: '
        "[/INST]"
    ),
}
IMAGE_PLACEHOLDER = "<image>"
OPTIONS = frozenset({"cuda_dtype"})
# Loosely typed: the stubs of ``from_pretrained`` refuse ``revision=None`` (a local directory).
_MODEL_CLASS: Any = LlavaNextForConditionalGeneration


class LlavaNextAdapter:
    """Encode texts, images and image+text items with a LLaVA-NeXT model, E5-V's way.

    ``options``: ``cuda_dtype`` (the dtype used on a CUDA device when the run asks for
    float32, the CLI's default; unset, as mteb loads E5-V in float32). ``meta.dtype`` records
    the dtype actually used.
    """

    def __init__(self, request: LoadRequest) -> None:
        check_options("llava-next", request.options, OPTIONS)
        cuda_dtype = request.options.get("cuda_dtype")
        if cuda_dtype not in (None, *DTYPES):
            raise HarnessError(f"option cuda_dtype must be one of {', '.join(DTYPES)}")
        self._device = resolve_device(request.device)
        dtype = _effective_dtype(request.dtype, self._device, cuda_dtype)
        self._dtype = resolve_dtype(dtype)
        config = from_source(AutoConfig, request)
        if config.model_type != "llava_next":
            raise HarnessError(
                f"model {request.name!r} is a {config.model_type!r} model; the llava-next family "
                "loads 'llava_next' models"
            )
        if config.vision_feature_select_strategy != "default":
            raise HarnessError(
                f"model {request.name!r} selects its vision features with the "
                f"{config.vision_feature_select_strategy!r} strategy; the llava-next family "
                "counts image tokens for the 'default' one (CLS token dropped)"
            )
        self.config = config
        self.model = load_eval_model(_MODEL_CLASS, request, self._device, self._dtype)
        self.tokenizer = from_source(AutoTokenizer, request)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:  # padded positions are masked: any token will do
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.image_processor = from_source(AutoImageProcessor, request)
        self.image_token = str(self.tokenizer.convert_ids_to_tokens(config.image_token_id))
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="llava-next",
            similarity="cosine",
            modalities=("image", "text"),
            dtype=dtype,
            embed_dim=int(config.text_config.hidden_size),
            n_parameters=n_parameters(self.model),
            options={
                "prompts": "e5v",
                "pooling": "last_token",
                "normalized": False,
                "padding_side": "left",
                "image_processor": type(self.image_processor).__name__,
                "cuda_dtype": cuda_dtype,
            },
        )

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Encode one batch of items, decoded or preprocessed; ``role`` and ``instruction``
        are ignored, as E5-V ignores them."""
        if not items:
            return np.zeros((0, self.meta.embed_dim or 0), dtype=np.float32)
        for index, item in enumerate(items):
            if item.get("text") is None and item.get("image") is None:
                raise BadInputError(f"item {index} has neither a text nor an image")
        items = [self.preprocess(item) for item in items]
        prompts = [self.prompt(item) for item in items]
        images = [item["image"] for item in items if item.get("image") is not None]
        return self._embed(prompts, images)

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """Run the image processor on the item's image (in a DataLoader worker): ``image``
        becomes ``{"pixel_values": (1, crops, 3, side, side), "image_sizes": (1, 2)}``.
        A preprocessed item is kept."""
        image = item.get("image")
        if isinstance(image, Image.Image):
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            pixels = self.image_processor(images=[rgb], return_tensors="np")
            item = {**item, "image": to_numpy(pixels)}
        return item

    def prompt(self, item: Item) -> str:
        """E5-V's prompt for the item, with one image placeholder when it has an image."""
        parts = ",".join(name for name in ("image", "text") if item.get(name) is not None)
        body = E5V_PROMPTS[parts].replace(IMAGE_PLACEHOLDER, self.image_token)
        return E5V_TURN.format(body).replace("{text}", str(item.get("text")))

    def image_tokens(self, height: int, width: int) -> int:
        """How many embeddings the model yields for an image of that original size: the base
        crop's patches, then the crop grid's patches unpadded to the image's aspect ratio,
        each row ending with a newline embedding."""
        vision = self.config.vision_config
        side = vision.image_size // vision.patch_size
        rows, cols = get_anyres_image_grid_shape(
            [height, width], self.config.image_grid_pinpoints, vision.image_size
        )
        grid = unpad_image(torch.empty(0, rows * side, cols * side), [height, width])
        grid_height, grid_width = grid.shape[1:]
        return side * side + grid_height * (grid_width + 1)

    def model_inputs(self, prompts: list[str], images: list[Mapping[str, np.ndarray]]) -> dict:
        """Token ids (left-padded) with each image placeholder expanded, and the images'
        crops padded with zeros to the most crops in the batch, with their sizes."""
        inputs: dict[str, Any] = {}
        if images:
            sizes = np.concatenate([image["image_sizes"] for image in images])
            counts = iter(self.image_tokens(int(h), int(w)) for h, w in sizes)
            placeholders = sum(prompt.count(self.image_token) for prompt in prompts)
            if placeholders != len(images):
                raise HarnessError(
                    f"{placeholders} image placeholder(s) {self.image_token!r} in the prompts "
                    f"of model {self.meta.name!r} for {len(images)} image(s)"
                )
            prompts = [
                "".join(
                    piece if i == 0 else self.image_token * next(counts) + piece
                    for i, piece in enumerate(prompt.split(self.image_token))
                )
                for prompt in prompts
            ]
            crops = max(image["pixel_values"].shape[1] for image in images)
            pixels = [_pad_crops(image["pixel_values"], crops) for image in images]
            inputs["pixel_values"] = torch.from_numpy(np.concatenate(pixels))
            inputs["image_sizes"] = torch.from_numpy(sizes)
        inputs.update(self.tokenizer(prompts, padding=True, return_tensors="pt"))
        return inputs

    @torch.inference_mode()
    def _embed(self, prompts: list[str], images: list[Mapping[str, np.ndarray]]) -> np.ndarray:
        """One forward pass; the last position's final hidden state, as float32."""
        inputs = self.model_inputs(prompts, images)
        inputs = {
            key: value.to(self._device, self._dtype)
            if value.is_floating_point()
            else value.to(self._device)
            for key, value in inputs.items()
        }
        output = self.model(**inputs, output_hidden_states=True, logits_to_keep=1)
        return output.hidden_states[-1][:, -1, :].float().cpu().numpy()


def _pad_crops(pixel_values: np.ndarray, crops: int) -> np.ndarray:
    """One image's crops ``(1, n, 3, side, side)`` padded with zero crops to ``crops``, as the
    processor pads a batch (the model drops the padding by the image's size)."""
    missing = crops - pixel_values.shape[1]
    return np.pad(pixel_values, [(0, 0), (0, missing), (0, 0), (0, 0), (0, 0)])
