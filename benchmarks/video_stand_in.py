"""A stand-in for torchcodec's ``VideoDecoder``, backed by PyAV, for the mteb side.

mteb (through ``datasets``' Video feature and its ``FramesCollator``) decodes video with
torchcodec, whose wheels need CUDA and do not load here. :func:`install` puts a
``torchcodec.decoders`` module in ``sys.modules`` whose :class:`VideoDecoder` gives what mteb
reads from torchcodec's in exact seek mode: ``metadata.num_frames`` (the frames found by
demuxing the stream), ``metadata.end_stream_seconds`` (the end of the last frame), and
``get_frames_at(indices).data``, the frames at those presentation-order indices as a uint8
``(N, 3, H, W)`` tensor (RGB, converted by FFmpeg's swscale as PyAV does). An index past the
last frame that decodes raises torchcodec's "no more frames" error, which mteb's collator
catches to drop trailing frames. It shares no code with the harness's decoder
(``harness/core/video.py``), so equal scores also check that both pick and decode the same
frames.
"""

from __future__ import annotations

import io
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

NO_MORE_FRAMES = "Requested next frame while there are no more frames left to decode."


@dataclass
class StreamMetadata:
    """The fields of torchcodec's ``VideoStreamMetadata`` that mteb reads (exact mode), and the
    ``path`` that ``datasets`` sets."""

    num_frames: int
    begin_stream_seconds: float
    end_stream_seconds: float
    width: int
    height: int
    path: str | None = None

    @property
    def duration_seconds(self) -> float:
        return self.end_stream_seconds - self.begin_stream_seconds

    @property
    def average_fps(self) -> float | None:
        duration = self.duration_seconds
        return self.num_frames / duration if duration > 0 else None


@dataclass(frozen=True)
class FrameBatch:
    """torchcodec's ``FrameBatch``: the frames and their times."""

    data: Any  # torch.Tensor, uint8 (N, 3, H, W)
    pts_seconds: Any
    duration_seconds: Any


class VideoDecoder:
    """torchcodec's ``VideoDecoder`` over a path, bytes or a binary file, CPU only."""

    def __init__(self, source: Any, *, stream_index: int | None = None, **options: Any) -> None:
        self._data = _source_bytes(source)
        self._stream_index = stream_index or 0
        import av

        with av.open(io.BytesIO(self._data), mode="r") as container:
            stream = container.streams.video[self._stream_index]
            times = [
                (packet.pts, packet.duration or 0)
                for packet in container.demux(stream)
                if packet.pts is not None and packet.size > 0
            ]
            self._time_base = stream.time_base or Fraction(1, 1)
            width, height = stream.codec_context.width, stream.codec_context.height
        self._pts = sorted(pts for pts, _ in times)
        self._durations = dict(times)
        end = max((pts + duration for pts, duration in times), default=0)
        self.metadata = StreamMetadata(
            num_frames=len(self._pts),
            begin_stream_seconds=float(self._pts[0] * self._time_base) if self._pts else 0.0,
            end_stream_seconds=float(end * self._time_base),
            width=int(width),
            height=int(height),
        )

    def __len__(self) -> int:
        return self.metadata.num_frames

    def get_frames_at(self, indices: Sequence[int]) -> FrameBatch:
        """The frames at ``indices`` (presentation order, repeats allowed), decoded from the
        start of the stream up to the last one asked for."""
        import torch

        wanted = [int(i) for i in indices]
        for index in wanted:
            if not 0 <= index < self.metadata.num_frames:
                raise IndexError(f"Invalid frame index={index}; must be less than num_frames")
        frames = self._decode_up_to(max(wanted, default=-1))
        pixels = np.stack([frames[i] for i in wanted]) if wanted else np.zeros((0, 0, 0, 3))
        seconds = [float(self._pts[i] * self._time_base) for i in wanted]
        durations = [float(self._durations[self._pts[i]] * self._time_base) for i in wanted]
        return FrameBatch(
            data=torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))),
            pts_seconds=torch.tensor(seconds, dtype=torch.float64),
            duration_seconds=torch.tensor(durations, dtype=torch.float64),
        )

    def _decode_up_to(self, last: int) -> dict[int, np.ndarray]:
        """Every frame up to index ``last``, by index; "no more frames" when one of them does
        not decode."""
        import av

        index_of = {pts: i for i, pts in enumerate(self._pts)}
        frames: dict[int, np.ndarray] = {}
        if last < 0:
            return frames
        with av.open(io.BytesIO(self._data), mode="r") as container:
            stream = container.streams.video[self._stream_index]
            try:
                for frame in container.decode(stream):
                    index = None if frame.pts is None else index_of.get(frame.pts)
                    if index is None or index > last:
                        continue
                    frames[index] = frame.to_ndarray(format="rgb24")
                    if len(frames) == last + 1:
                        break
            except av.FFmpegError:
                pass
        if len(frames) < last + 1:
            raise RuntimeError(NO_MORE_FRAMES)
        return frames


class AudioDecoder:
    """torchcodec's audio decoder, which ``datasets`` names beside the video one; audio is not
    decoded through it here (the audio suites decode with soundfile)."""

    def __init__(self, source: Any, **options: Any) -> None:
        raise NotImplementedError("the torchcodec stand-in decodes video only")


def _source_bytes(source: Any) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    if isinstance(source, str | Path):
        return Path(source).read_bytes()
    if hasattr(source, "read"):
        return bytes(source.read())
    raise TypeError(f"VideoDecoder cannot read a {type(source).__name__}")


def install() -> None:
    """Make ``torchcodec.decoders.VideoDecoder`` this stand-in, for mteb and ``datasets``."""
    import datasets

    torchcodec = types.ModuleType("torchcodec")
    decoders = types.ModuleType("torchcodec.decoders")
    decoders.VideoDecoder = VideoDecoder  # type: ignore[attr-defined]
    decoders.AudioDecoder = AudioDecoder  # type: ignore[attr-defined]
    torchcodec.decoders = decoders  # type: ignore[attr-defined]
    sys.modules["torchcodec"] = torchcodec
    sys.modules["torchcodec.decoders"] = decoders
    datasets.config.TORCHCODEC_AVAILABLE = True
