"""The video modality: stored clips, metadata, frame sampling as mteb's collator samples, and
the per-item errors of bad clips."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from typing import Any

import av
import datasets
import numpy as np
import pytest
import torch
from mteb.models.modality_collators import FramesCollator

from harness.core.errors import BadInputError
from harness.core.frame_store import LOCATION_VARIABLE, frame_store, keep, lookup
from harness.core.items import RawItem
from harness.core.modalities import modality, parse_category
from harness.core.video import (
    EncodedVideo,
    FrameSampling,
    Video,
    encode_video,
    frame_indices,
    video_pipeline,
)


def ramp(n_frames: int, size: int = 16) -> np.ndarray:
    """Frames whose brightness grows with their index (so a frame's index can be read back)."""
    levels = np.linspace(0, 250, n_frames).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n_frames, size, size, 3)).copy()


def brightness(frames: np.ndarray) -> list[int]:
    return [round(float(frame.mean())) for frame in frames]


def clip_with_times(times_ms: list[int], size: int = 16) -> bytes:
    """An MP4 whose frames start at ``times_ms`` (a variable frame rate)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, start in enumerate(times_ms):
            pixels = np.full((size, size, 3), 10 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = start
            frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


class _Metadata:
    def __init__(self, num_frames: int, end_stream_seconds: float) -> None:
        self.num_frames = num_frames
        self.end_stream_seconds = end_stream_seconds


class FakeDecoder:
    """What mteb's collator reads of a torchcodec decoder: metadata, and frames by index (those
    from ``decodable`` on fail as torchcodec's do past the last decodable frame)."""

    def __init__(self, video: Video, decodable: int | None = None) -> None:
        self.metadata = _Metadata(video.num_frames, video.seconds)
        self.decodable = video.num_frames if decodable is None else decodable
        self.asked: list[int] = []

    def get_frames_at(self, indices: list[int]) -> Any:
        if max(indices) >= self.decodable:
            raise RuntimeError("Requested next frame while there are no more frames left to decode")
        self.asked = list(indices)

        class Batch:
            data = torch.zeros(len(indices))

        return Batch()


SAMPLINGS = [
    {"num_frames": 8},
    {"num_frames": 40},
    {"fps": 2.0, "max_frames": 64},
    {"fps": 1.0, "max_frames": 3},
    {"fps": 0.05},
    {"fps": 0.05, "min_frames": 4},
    {},
]


@pytest.mark.parametrize("settings", SAMPLINGS, ids=str)
@pytest.mark.parametrize("n_frames,fps", [(20, 8.0), (31, 30.0), (5, 2.0)])
def test_sampling_picks_the_frames_mtebs_collator_picks(
    settings: dict[str, Any], n_frames: int, fps: float
) -> None:
    video = Video(encode_video(ramp(n_frames), fps))
    decoder = FakeDecoder(video)
    FramesCollator.resample_video(decoder, **settings)
    sampling = FrameSampling(**settings)
    assert video.frame_indices(sampling) == decoder.asked
    frames = video.frames(sampling)
    assert frames.shape == (len(decoder.asked), 16, 16, 3)
    every = brightness(video.frames(FrameSampling()))
    assert brightness(frames) == [every[i] for i in decoder.asked]


def test_trailing_frames_that_fail_are_dropped_as_mteb_drops_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    video = Video(encode_video(ramp(20), 8.0))
    decoder = FakeDecoder(video, decodable=13)
    FramesCollator.resample_video(decoder, num_frames=8)
    real_decode = video._decode

    def decode(indices: list[int]) -> tuple[dict[int, np.ndarray] | None, int]:
        if max(indices) >= 13:
            return None, 13
        return real_decode(indices)

    monkeypatch.setattr(video, "_decode", decode)
    frames = video.frames(FrameSampling(num_frames=8))
    every = brightness(Video(encode_video(ramp(20), 8.0)).frames(FrameSampling()))
    assert brightness(frames) == [every[i] for i in decoder.asked]
    assert max(decoder.asked) == 12


def test_metadata_counts_frames_and_the_end_of_the_last_one() -> None:
    video = Video(encode_video(ramp(20, size=32), 8.0))
    assert (video.num_frames, video.seconds, video.fps) == (20, 2.5, 8.0)
    assert (video.width, video.height) == (32, 32)


def test_decoded_frames_equal_a_sequential_decode_across_keyframes() -> None:
    data = encode_video(ramp(300), 30.0)
    video = Video(data)
    assert len(video._keyframes) > 1  # the sparse picks seek
    with av.open(io.BytesIO(data), mode="r") as container:
        sequential = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    for sampling in (FrameSampling(num_frames=8), FrameSampling(fps=2.0, max_frames=64)):
        indices = video.frame_indices(sampling)
        assert np.array_equal(video.frames(sampling), sequential[indices])


def test_a_variable_frame_rate_clip_is_sampled_by_frame_index_as_mteb_does() -> None:
    times = [0, 40, 80, 400, 440, 1500, 1540, 3000]
    video = Video(clip_with_times(times))
    assert video.num_frames == len(times)
    decoder = FakeDecoder(video)
    FramesCollator.resample_video(decoder, fps=2.0, max_frames=64)
    frames = video.frames(FrameSampling(fps=2.0, max_frames=64))
    assert brightness(frames) == pytest.approx([10 * i for i in decoder.asked], abs=3)


def test_an_hours_long_clip_is_capped_at_the_declared_frame_count() -> None:
    # 200 frames, one every 20 s: 4000 s of video in a few kilobytes
    video = Video(encode_video(ramp(200), 0.05))
    assert video.seconds == pytest.approx(4000)
    sampling = FrameSampling(fps=2.0, max_frames=64)
    assert len(video.frame_indices(sampling)) == 64
    assert video.frames(sampling).shape[0] == 64
    assert sampling.options() == {"video_fps": 2.0, "video_max_frames": 64, "video_min_frames": 1}


def test_frame_indices_repeat_frames_in_place_for_short_clips() -> None:
    assert frame_indices(3, 6) == [0, 0, 1, 1, 2, 2]
    assert frame_indices(10, 4) == [0, 3, 6, 9]


def test_sampling_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="not both"):
        FrameSampling(fps=1.0, num_frames=4)
    with pytest.raises(ValueError, match="at least 1"):
        FrameSampling(num_frames=0)
    assert FrameSampling(num_frames=8).options() == {"video_num_frames": 8}


def test_clips_are_encoded_deterministically_with_an_optional_audio_track() -> None:
    frames = ramp(6)
    assert encode_video(frames, 4.0) == encode_video(frames, 4.0)
    sound = np.sin(np.arange(8000) / 5).astype(np.float32)
    with av.open(io.BytesIO(encode_video(frames, 4.0, audio=sound))) as container:
        assert len(container.streams.audio) == 1
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        encode_video(frames[..., 0], 4.0)


def test_category_letters_and_cache_digests_need_no_decoding() -> None:
    sides = parse_category("va2t")
    assert (sides.query, sides.document) == (("audio", "video"), ("text",))
    data = encode_video(ramp(4), 4.0)
    item = RawItem.read("v1", {"video": ("clip", {"bytes": data, "path": None})})
    assert item.parts["video"] == EncodedVideo(data=data)
    assert modality("video").digest(item.parts["video"]) == data
    assert (
        item.content_digest()
        != RawItem.of("v2", video=EncodedVideo(data=encode_video(ramp(5), 4.0))).content_digest()
    )
    assert isinstance(item.decoded()["video"], Video)
    assert modality("video").length(item.parts["video"]) == 1000


def test_a_datasets_video_column_is_read_undecoded(tmp_path: Any) -> None:
    data = encode_video(ramp(4), 4.0)
    table = datasets.Dataset.from_dict(
        {"video": [{"bytes": data, "path": None}]},
        features=datasets.Features({"video": datasets.Video()}),
    )
    feature = modality("video").undecoded_feature(table.features["video"])
    assert feature == datasets.Video(decode=False)
    cell = table.cast_column("video", feature)[0]["video"]
    assert modality("video").read(cell) == EncodedVideo(data=data)


def test_the_decoder_is_recorded() -> None:
    assert video_pipeline()["decoder"].startswith(f"PyAV {av.__version__} (FFmpeg libavcodec ")


@pytest.mark.parametrize(
    "cell,message",
    [
        (None, "is empty"),
        (b"", "empty clip"),
        (3.5, "holds float where a video belongs"),
    ],
)
def test_unusable_cells_are_item_faults_naming_the_column(cell: Any, message: str) -> None:
    item = RawItem.read("v1", {"video": ("clip", cell)})
    assert item.fault is not None and "column 'clip'" in item.fault and message in item.fault


def _silent_wav() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        block = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        block.sample_rate = 8000
        container.mux(stream.encode(block))
        container.mux(stream.encode(None))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data,message",
    [
        (b"not a video at all" * 10, "FFmpeg cannot read it"),
        (encode_video(ramp(20), 8.0)[:600], "FFmpeg cannot read it"),
        (_silent_wav(), "has no video stream"),
    ],
    ids=["garbage", "truncated", "audio-only"],
)
def test_bad_clips_fail_to_decode_naming_the_column_and_the_fix(data: bytes, message: str) -> None:
    item = RawItem.read("v1", {"video": ("clip", data)})
    with pytest.raises(BadInputError, match=f"column 'clip' cannot be decoded .*{message}"):
        item.decoded()


def test_a_clip_without_frames_is_a_bad_input() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        container.start_encoding()  # the header, with no frame after it
        container.mux(stream.encode(None))
    item = RawItem.read("v1", {"video": ("clip", buffer.getvalue())})
    with pytest.raises(BadInputError, match=r"column 'clip' cannot be decoded .*no frames"):
        item.decoded()


def test_a_runs_frame_store_serves_a_clip_decoded_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encode_video(ramp(20), 8.0)
    calls: list[list[int]] = []
    real_decode = Video._decode

    def counted(self: Video, indices: list[int]) -> Any:
        calls.append(list(indices))
        return real_decode(self, indices)

    monkeypatch.setattr(Video, "_decode", counted)
    sampling = FrameSampling(num_frames=8)
    with frame_store(tmp_path) as root:
        assert os.environ[LOCATION_VARIABLE] == str(root)
        first = Video(data).frames(sampling)
        again = Video(data).frames(sampling)  # another item (another task) with the same clip
        other = Video(data).frames(FrameSampling(num_frames=4))  # other frames: decoded
        assert np.array_equal(first, again) and other.shape[0] == 4
        assert len(calls) == 2
    assert not root.exists() and LOCATION_VARIABLE not in os.environ
    Video(data).frames(sampling)  # no store outside a run
    assert len(calls) == 3


def test_the_frame_store_stops_keeping_at_its_cap(tmp_path: Any) -> None:
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    with frame_store(tmp_path, max_bytes=frames.nbytes * 2):
        assert keep("clip-a", [0, 1, 2, 3], frames)
        assert keep("clip-b", [0, 1, 2, 3], frames)
        assert not keep("clip-c", [0, 1, 2, 3], frames)
        assert lookup("clip-c", [0, 1, 2, 3]) is None
        kept = lookup("clip-a", [0, 1, 2, 3])
        assert kept is not None and np.array_equal(kept, frames)
        assert lookup("clip-a", [0, 1, 2]) is None


def test_a_clip_none_of_whose_frames_decodes_is_a_bad_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    video = Video(encode_video(ramp(8), 8.0))
    monkeypatch.setattr(video, "_decode", lambda indices: (None, 0))
    with pytest.raises(BadInputError, match="none of its frames decodes; re-encode the clip"):
        video.frames(FrameSampling(num_frames=4))
