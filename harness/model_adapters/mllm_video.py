"""Video inputs of Qwen2-VL-family models (Qwen2-VL, Qwen2.5-VL, Qwen2.5-Omni), computed
without torchvision.

transformers' ``Qwen2VLVideoProcessor`` (which the Qwen2-VL, Qwen2.5-VL and Qwen2.5-Omni
processors use) imports torchvision, which CPU torch here lacks. :class:`VideoPatches` computes
what it computes for frames handed over already sampled (``do_sample_frames=False``, as mteb's
LCO-Embedding wrapper calls it): every frame resized with ``smart_resize`` to multiples of
``patch_size * merge_size`` within the pixel bounds (torch's antialiased bicubic on uint8, the
kernel torchvision runs on CPU), rescaled and normalised in one step, an odd frame count padded
by repeating the last frame to a multiple of ``temporal_patch_size``, and flattened to patches
in the processor's order, with the ``(t, h, w)`` grid.

The seconds that one temporal patch spans (for the temporal positions of the multimodal RoPE)
are the processors' too: Qwen2.5-Omni's processor assumes 2 frames per second when the call
gives no ``fps`` (mteb's gives none); Qwen2.5-VL's takes the frame rate from the clip's
metadata, which frames handed over as arrays lack, and then assumes 24; Qwen2-VL has no time
scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from transformers.models.qwen2_5_omni.processing_qwen2_5_omni import Qwen2_5OmniProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
from transformers.video_processing_utils import BaseVideoProcessor

from harness.core.errors import HarnessError
from harness.core.video import FrameSampling

# mteb's LCO-Embedding wrapper: 2 frames per second (qwen-omni-utils' FPS), at most 64.
DEFAULT_SAMPLING = FrameSampling(fps=2.0, max_frames=64)
SAMPLING_OPTIONS = frozenset(
    {"video_fps", "video_max_frames", "video_num_frames", "video_min_frames"}
)
BOUND_OPTIONS = frozenset({"video_min_pixels", "video_max_pixels"})
# Qwen2VLVideoProcessor's class defaults, for a config that does not set them (its module
# cannot be imported without torchvision).
_PROCESSOR_DEFAULTS: dict[str, Any] = {
    "size": {"shortest_edge": 128 * 28 * 28, "longest_edge": 768 * 28 * 28},
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "rescale_factor": 1 / 255,
    "resample": 3,
}
_BICUBIC = 3
# The model input naming the seconds per temporal patch, and the frame rate the processor
# assumes for frames without metadata, by config model type.
_TIME_SCALES = {
    "qwen2_5_omni": ("video_second_per_grid", 2.0),
    "qwen2_5_omni_thinker": ("video_second_per_grid", 2.0),
    "qwen2_5_vl": ("second_per_grid_ts", 24.0),
}


def frame_sampling(options: Mapping[str, Any]) -> FrameSampling:
    """The sampling the ``video_*`` options ask for; mteb's LCO-Embedding default otherwise
    (``video_num_frames`` alone switches to fixed-sample mode)."""
    fixed = options.get("video_num_frames")
    default_fps = None if fixed is not None else DEFAULT_SAMPLING.fps
    default_cap = None if fixed is not None else DEFAULT_SAMPLING.max_frames
    try:
        return FrameSampling(
            fps=options.get("video_fps", default_fps),
            max_frames=options.get("video_max_frames", default_cap),
            num_frames=fixed,
            min_frames=options.get("video_min_frames", DEFAULT_SAMPLING.min_frames),
        )
    except (TypeError, ValueError) as error:
        raise HarnessError(f"video sampling options: {error}") from None


@dataclass(frozen=True)
class VideoPatches:
    """Sampled frames to a Qwen2-VL-family model's video inputs, as its video processor makes
    them; ``time_key`` and ``seconds_per_grid`` name the time scale the model takes (none for
    Qwen2-VL)."""

    patch_size: int
    temporal_patch_size: int
    merge_size: int
    min_pixels: int
    max_pixels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rescale_factor: float
    time_key: str | None = None
    seconds_per_grid: float | None = None

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """``{"pixel_values_videos": (patches, channels * temporal * patch**2) float32,
        "video_grid_thw": (1, 3)}`` of uint8 RGB frames ``(T, H, W, 3)``."""
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()
        height, width = smart_resize(
            video.shape[-2],
            video.shape[-1],
            factor=self.patch_size * self.merge_size,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
        )
        if (height, width) != tuple(video.shape[-2:]):
            video = torch.nn.functional.interpolate(
                video, size=[height, width], mode="bicubic", align_corners=False, antialias=True
            )
        # Rescaling fused into the normalisation, in float32, as the processor does it.
        mean = torch.tensor(self.mean) * (1.0 / self.rescale_factor)
        std = torch.tensor(self.std) * (1.0 / self.rescale_factor)
        video = video.to(torch.float32).sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))
        if pad := -video.shape[0] % self.temporal_patch_size:
            video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
        patches, grid = self._patchify(video)
        return {
            "pixel_values_videos": patches.numpy(),
            "video_grid_thw": np.array([grid], dtype=np.int64),
        }

    def _patchify(self, video: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """Flatten ``(T, C, H, W)`` frames to patches, merge windows together, as
        ``Qwen2VLVideoProcessor.patchify`` orders them."""
        frames, channels, height, width = video.shape
        patch, merge, temporal = self.patch_size, self.merge_size, self.temporal_patch_size
        grid = [frames // temporal, height // patch, width // patch]
        blocks = video.view(
            grid[0],
            temporal,
            channels,
            grid[1] // merge,
            merge,
            patch,
            grid[2] // merge,
            merge,
            patch,
        )
        blocks = blocks.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        return blocks.reshape(math.prod(grid), channels * temporal * patch * patch), grid

    def tokens(self, grid_thw: torch.Tensor) -> torch.Tensor:
        """The number of video placeholder tokens of each grid."""
        return grid_thw.prod(dim=-1) // self.merge_size**2

    def time_inputs(self, n_videos: int) -> dict[str, torch.Tensor]:
        """The seconds each video's temporal patch spans, under the model's input name."""
        if self.time_key is None or self.seconds_per_grid is None:
            return {}
        return {self.time_key: torch.tensor([self.seconds_per_grid] * n_videos)}

    def options(self) -> dict[str, int]:
        """The frame resolution bounds, for the adapter's recorded options."""
        return {"video_min_pixels": self.min_pixels, "video_max_pixels": self.max_pixels}


def load_video_patches(
    source: str, revision: str | None, model_type: str, options: Mapping[str, Any]
) -> VideoPatches:
    """The video processing of a checkpoint, from its video processor config (else its image
    processor config, as transformers falls back), with its processor's frame bounds unless the
    ``video_min_pixels``/``video_max_pixels`` options set them."""
    config, _ = BaseVideoProcessor.get_video_processor_dict(source, revision=revision)
    settings = {**_PROCESSOR_DEFAULTS, **config}
    if settings["resample"] != _BICUBIC:
        raise HarnessError(
            f"the video processor of {source!r} resizes with PIL filter {settings['resample']}; "
            "the mllm family resizes video frames bicubically only"
        )
    size = dict(settings["size"] or _PROCESSOR_DEFAULTS["size"])
    for key, edge in (("min_pixels", "shortest_edge"), ("max_pixels", "longest_edge")):
        value = settings.get(key, size.pop(key, None))  # top level, or the legacy size keys
        if value is not None:
            size[edge] = value
    if model_type.startswith("qwen2_5_omni"):
        # The Omni processor passes its own frame bounds to the video processor on every call.
        size = dict(cast("dict[str, int]", Qwen2_5OmniProcessor.videos_kwargs["size"]))
    bounds = {
        "min_pixels": options.get("video_min_pixels", size["shortest_edge"]),
        "max_pixels": options.get("video_max_pixels", size["longest_edge"]),
    }
    for key, value in bounds.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise HarnessError(f"option video_{key} must be a positive integer")
    time_key, fps = _TIME_SCALES.get(model_type, (None, None))
    temporal = int(settings["temporal_patch_size"])
    return VideoPatches(
        patch_size=int(settings["patch_size"]),
        temporal_patch_size=temporal,
        merge_size=int(settings["merge_size"]),
        mean=tuple(float(value) for value in settings["image_mean"]),
        std=tuple(float(value) for value in settings["image_std"]),
        rescale_factor=float(settings["rescale_factor"]),
        time_key=time_key,
        seconds_per_grid=None if fps is None else temporal / fps,
        **bounds,
    )
