"""X-CLIP (transformers ``XCLIPModel``): a video tower and a text tower, as mteb 2.26's X-CLIP
wrapper runs them.

Video, in the DataLoader workers (``preprocess``): a fixed number of frames evenly spaced over
the clip (the checkpoint's ``num_frames``, 8 for every published X-CLIP, as mteb's fixed-sample
``FramesCollator``; a shorter clip repeats its frames in place), run through the checkpoint's
image processor as one video (VideoMAE's: resize, centre crop, normalise). The vector is
``get_video_features``: the frames' projected class tokens through the multi-frame integration
transformer, averaged over time.

Text: tokenised with padding and truncation at the tokenizer's limit; the vector is
``get_text_features``, the text tower alone. In the full model X-CLIP adds a video-conditioned
prompt to each text (its prompt generator); mteb's wrapper embeds texts without any video, and
so does this adapter. Neither tower's output is normalised (similarity is cosine); an item with
a video and a text is the sum of the two raw vectors, as mteb fuses them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

from harness.core.adapter import AdapterMeta, Item, Role, check_options
from harness.core.video import FrameSampling, Video
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


class XClipAdapter:
    """Encode videos, texts and video+text items with an ``XCLIPModel``; it takes no options
    (the number of frames is the checkpoint's: its temporal position embeddings fix it)."""

    def __init__(self, request: LoadRequest) -> None:
        check_options("xclip", request.options, frozenset())
        self._device = resolve_device(request.device)
        self._dtype = resolve_dtype(request.dtype)
        self.model = load_eval_model(AutoModel, request, self._device, self._dtype)
        self.tokenizer = from_source(AutoTokenizer, request)
        self.image_processor = from_source(AutoImageProcessor, request)
        config = self.model.config
        self.sampling = FrameSampling(num_frames=int(config.vision_config.num_frames))
        crop = self.image_processor.crop_size
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="xclip",
            similarity="cosine",
            modalities=("text", "video"),
            dtype=request.dtype,
            embed_dim=int(config.projection_dim),
            n_parameters=n_parameters(self.model),
            options={
                "image_processor": type(self.image_processor).__name__,
                "max_length": int(self.tokenizer.model_max_length),
                "fusion": "sum",
            },
            modality_options={
                "video": {
                    **self.sampling.options(),
                    "video_frame_size": {
                        "height": int(crop["height"]),
                        "width": int(crop["width"]),
                    },
                }
            },
        )

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """Sample the item's frames and run the image processor on them (in a DataLoader
        worker): ``video`` becomes ``{"pixel_values": (1, frames, 3, h, w)}``. An item without
        an opened clip (text only, or already preprocessed) is returned as it is."""
        video = item.get("video")
        if not isinstance(video, Video):
            return item
        frames = video.frames(self.sampling)
        pixels = self.image_processor([frames], return_tensors="np")["pixel_values"]
        return {**item, "video": {"pixel_values": np.asarray(pixels, dtype=np.float32)}}

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Encode one batch of items, decoded or preprocessed; ``role`` and ``instruction`` are
        ignored."""
        towers: dict[str, Callable[[list[Any]], torch.Tensor]] = {
            "text": self._encode_texts,
            "video": self._encode_videos,
        }
        return summed_parts(
            items, self.preprocess, self.meta.embed_dim or 0, towers, "neither a text nor a video"
        )

    @torch.inference_mode()
    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        """The text tower's projected end-of-text states."""
        batch = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        inputs = {key: value.to(self._device) for key, value in batch.items()}
        return _pooled(self.model.get_text_features(**inputs))

    @torch.inference_mode()
    def _encode_videos(self, videos: list[Mapping[str, np.ndarray]]) -> torch.Tensor:
        """The video tower's time-averaged integration outputs."""
        pixels = concatenated(videos)["pixel_values"].to(self._device, self._dtype)
        return _pooled(self.model.get_video_features(pixel_values=pixels))


def _pooled(output: Any) -> torch.Tensor:
    """A tower's pooled output, float32 on the CPU."""
    pooled = output if isinstance(output, torch.Tensor) else output.pooler_output
    return pooled.float().cpu()
