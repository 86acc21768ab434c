"""The video modality: a part stored as its container bytes (MP4, WebM, MKV, AVI...) or a path
to them, opened in the DataLoader workers as a :class:`Video` whose frames are decoded on
demand, only those that an adapter's :class:`FrameSampling` picks.

Decoding is PyAV's (FFmpeg). mteb decodes with torchcodec, whose wheels here need CUDA; the
metadata and frame picking follow torchcodec's exact mode as mteb's frame collator uses it:
``num_frames`` counts the stream's packets, ``seconds`` is the end of the last frame, and frame
``i`` is the ``i``-th in presentation order. :meth:`FrameSampling.indices` picks indices as
mteb's ``FramesCollator`` does, including its fall-back when trailing frames fail to decode.

The audio track of a ``va`` item is its own ``audio`` part (a separate column, as in mteb's
datasets); :func:`encode_video` writes clips (the demo's, the tests').
"""

from __future__ import annotations

import bisect
import hashlib
import io
import math
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any, cast

import numpy as np

from harness.core import frame_store
from harness.core.errors import BadInputError
from harness.core.modalities import Modality
from harness.core.stored import StoredFile

_CONTAINERS = "MP4, WebM, MKV or AVI"


@dataclass(frozen=True)
class EncodedVideo(StoredFile):
    """A clip as stored: container bytes or a path to such a file."""


def frame_indices(n_source: int, target: int) -> list[int]:
    """``target`` evenly spaced indices into ``n_source`` frames; a clip with fewer frames than
    ``target`` repeats each frame in place (0, 0, 1, 1...), as mteb's collator does."""
    if n_source < target:
        return [i * n_source // target for i in range(target)]
    return [int(i) for i in np.linspace(0, n_source - 1, target).round()]


@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a clip an adapter sees, as mteb's ``FramesCollator`` picks them.

    ``num_frames``: that many frames, evenly spaced (fixed-sample mode). ``fps``: one frame per
    ``1/fps`` seconds of the clip, at least ``min_frames``, at most ``max_frames``, and never more
    than the clip has. Neither: every frame.
    """

    fps: float | None = None
    max_frames: int | None = None
    num_frames: int | None = None
    min_frames: int = 1

    def __post_init__(self) -> None:
        if self.fps is not None and self.num_frames is not None:
            raise ValueError("give either fps or num_frames for frame sampling, not both")
        for name in ("max_frames", "num_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    def indices(self, n_source: int, seconds: float) -> list[int]:
        """The indices of the frames to decode from a clip of ``n_source`` frames lasting
        ``seconds``."""
        if self.num_frames is None and self.fps is None:
            return list(range(n_source))
        if self.num_frames is not None:
            return frame_indices(n_source, self.num_frames)
        assert self.fps is not None
        target = max(self.min_frames, int(seconds * self.fps))
        if self.max_frames is not None:
            target = min(target, self.max_frames)
        return frame_indices(n_source, min(target, n_source))

    def options(self) -> dict[str, Any]:
        """The settings, for an adapter's recorded options (``min_frames`` only in fps mode)."""
        settings = {
            "video_fps": self.fps,
            "video_max_frames": self.max_frames,
            "video_num_frames": self.num_frames,
        }
        if self.fps is not None:
            settings["video_min_frames"] = self.min_frames
        return {name: value for name, value in settings.items() if value is not None}


class Video:
    """An opened clip, as adapters receive it: its metadata, read by demuxing (no decoding), and
    :meth:`frames`, which decodes only the frames a sampling picks.

    Raises ``ValueError`` (saying what is wrong and the fix) for a container that cannot be
    read, one without a video stream, or one with no frames.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        import av

        try:
            with av.open(io.BytesIO(data)) as container:
                if not container.streams.video:
                    raise ValueError(
                        "the clip has no video stream (audio only?); store a clip with video, "
                        "or read the column as audio"
                    )
                stream = container.streams.video[0]
                self.width = int(stream.codec_context.width)
                self.height = int(stream.codec_context.height)
                self._time_base = stream.time_base or Fraction(1, 1)
                pts, keyframes, end = _scan(container, stream)
        except av.EOFError:
            raise ValueError(
                "the clip ends before its first frame (no frames, or cut short); store a clip "
                "with at least one frame"
            ) from None
        except av.FFmpegError as error:
            raise ValueError(
                f"FFmpeg cannot read it ({error.strerror or error}); store {_CONTAINERS} bytes"
            ) from None
        if not pts:
            raise ValueError("the clip has no frames; store a clip with at least one frame")
        self._pts = pts
        self._keyframes = keyframes or pts[:1]
        self.num_frames = len(pts)
        self.seconds = float(end * self._time_base)

    @property
    def fps(self) -> float:
        """The average frame rate."""
        return self.num_frames / self.seconds if self.seconds > 0 else 0.0

    def frame_indices(self, sampling: FrameSampling) -> list[int]:
        """The indices ``sampling`` picks from this clip."""
        return sampling.indices(self.num_frames, self.seconds)

    def frames(self, sampling: FrameSampling) -> np.ndarray:
        """The frames ``sampling`` picks, decoded: uint8 RGB of shape ``(T, H, W, 3)``.

        When trailing frames fail to decode, the clip counts as the frames that do, and the
        indices are picked again (mteb's fall-back); a :class:`BadInputError` (an item's fault:
        reported, or skipped under ``--skip-bad-inputs``) when none decodes. Within
        a run, the frames are kept in the run's frame store (:mod:`harness.core.frame_store`),
        so a clip that several tasks share is decoded once.
        """
        asked = sampling.indices(self.num_frames, self.seconds)
        stored = frame_store.is_open()
        kept = frame_store.lookup(self.digest, asked) if stored else None
        if kept is not None:
            return kept
        indices = asked
        while True:
            decoded, decodable = self._decode(indices)
            if decoded is not None:
                frames = np.stack([decoded[i] for i in indices])
                if stored:
                    frame_store.keep(self.digest, asked, frames)
                return frames
            if decodable == 0:
                raise BadInputError(
                    "the video cannot be decoded: none of its frames decodes; re-encode the clip"
                )
            indices = sampling.indices(decodable, self.seconds)

    def _decode(self, indices: Sequence[int]) -> tuple[dict[int, np.ndarray] | None, int]:
        """The frames at ``indices`` by index; or None and the number of leading frames that
        decode, when one of them is past the last decodable frame."""
        import av

        index_of = {self._pts[i]: i for i in set(indices)}
        found: dict[int, np.ndarray] = {}
        last_index = -1
        with av.open(io.BytesIO(self._data), mode="r") as container:
            stream = container.streams.video[0]
            frames = None
            for target in sorted(index_of):
                if index_of[target] in found:
                    continue
                keyframe = self._keyframes[max(0, bisect.bisect_right(self._keyframes, target) - 1)]
                if frames is None or keyframe > self._pts[max(last_index, 0)]:
                    container.seek(keyframe, stream=stream, backward=True)
                    frames = container.decode(stream)
                try:
                    for frame in frames:
                        if frame.pts is None:
                            continue
                        last_index = max(last_index, bisect.bisect_left(self._pts, frame.pts))
                        if frame.pts in index_of:
                            found[index_of[frame.pts]] = frame.to_ndarray(format="rgb24")
                        if frame.pts >= target:
                            break
                except av.FFmpegError:
                    pass
                if index_of[target] not in found:
                    return None, min(last_index + 1, bisect.bisect_left(self._pts, target))
        return found, len(self._pts)

    @cached_property
    def digest(self) -> str:
        """A hash of the stored bytes (names the clip in the frame store)."""
        return hashlib.sha256(self._data).hexdigest()


def _scan(container: Any, stream: Any) -> tuple[list[int], list[int], int]:
    """Demux the video stream (no decoding): its frames' presentation times in order, those of
    its keyframes, and the end of the last frame (time-base units)."""
    pts: list[int] = []
    keyframes: list[int] = []
    end = 0
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        pts.append(packet.pts)
        if packet.is_keyframe:
            keyframes.append(packet.pts)
        end = max(end, packet.pts + (packet.duration or 0))
    pts.sort()
    keyframes.sort()
    return pts, keyframes, end


_ACCEPTED = "video file bytes, a path, or a datasets Video value"


def _read(value: Any) -> EncodedVideo:
    """A cell as a stored clip; ``ValueError`` (finishing "column X ...") when it holds none."""
    if isinstance(value, EncodedVideo):
        return value
    if value is None:
        raise ValueError("is empty (None) where a video belongs; fill the cell or drop the row")
    stored = EncodedVideo.from_cell(value, "clip")
    if stored is not None:
        return stored
    raise ValueError(
        f"holds {type(value).__name__} where a video belongs ({_ACCEPTED}); map the video "
        "column under dataset.columns"
    )


def _digest(video: EncodedVideo) -> bytes:
    return video.key_bytes()


def _decode(video: EncodedVideo) -> Video:
    data = video.read_bytes()
    if not data:
        raise ValueError("the clip is empty (0 bytes); store the clip's file bytes")
    return Video(data)


def _header_seconds(video: EncodedVideo) -> float:
    """The duration from the container's header (never demuxed); 0 for a clip that cannot be
    opened (its decode reports it, per item)."""
    import av

    source = video.path if video.data is None else io.BytesIO(video.data)
    with suppress(Exception), av.open(source, mode="r") as container:
        if container.duration:
            return container.duration / av.time_base
        stream = container.streams.video[0]
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
    return 0.0


def _cost(video: EncodedVideo) -> float:
    """The duration in seconds, for balancing shards."""
    return _header_seconds(video)


def _milliseconds(video: EncodedVideo) -> int:
    """The duration in milliseconds, for ordering batches longest first."""
    return math.floor(_header_seconds(video) * 1000)


def _undecoded_feature(feature: Any) -> Any | None:
    import datasets  # only where a dataset is read: harness.core stays light

    return datasets.Video(decode=False) if isinstance(feature, datasets.Video) else None


def video_pipeline() -> dict[str, str]:
    """The decoder, with its version and FFmpeg's, as result files record it."""
    import av

    codec = ".".join(str(part) for part in av.library_versions.get("libavcodec", ()))
    return {"decoder": f"PyAV {av.__version__} (FFmpeg libavcodec {codec})"}


def encode_video(
    frames: np.ndarray,
    fps: float,
    *,
    audio: np.ndarray | None = None,
    sampling_rate: int = 16000,
    codec: str = "libx264",
) -> bytes:
    """MP4 bytes of ``frames`` (uint8 RGB ``(T, H, W, 3)``, even sides) at ``fps``, with an
    AAC track of mono ``audio`` samples when given. The same inputs give the same bytes."""
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) uint8 RGB, got shape {frames.shape}")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        container.metadata.clear()
        stream = cast(
            "av.VideoStream",
            container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001)),
        )
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            # One thread, and no macroblock-tree rate control: with it, libx264 gives other
            # bytes for the same frames from run to run.
            stream.codec_context.options = {
                "crf": "18",
                "preset": "medium",
                "x264-params": "threads=1:lookahead-threads=1:sync-lookahead=0:mbtree=0",
            }
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sampling_rate, layout="mono")
        for pixels in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None and audio is not None:
            samples = np.asarray(audio, dtype=np.float32).reshape(1, -1)
            block = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            block.sample_rate = sampling_rate
            container.mux(sound.encode(block))
            container.mux(sound.encode(None))
    return buffer.getvalue()


VIDEO = Modality(
    name="video",
    letter="v",
    read=_read,
    digest=_digest,
    cost=_cost,
    decode=_decode,
    length=_milliseconds,
    undecoded_feature=_undecoded_feature,
    pipeline=video_pipeline,
)
