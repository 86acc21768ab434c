"""The video suites of ``benchmarks/compare_mteb.py``: the PyAV stand-in for torchcodec gives
mteb's collator the frames the harness decodes, decodes are counted, and a bare rerun is held
to the mteb side of the suite it reruns."""

from __future__ import annotations

import multiprocessing
import sys
from typing import Any

import av
import datasets
import numpy as np
import pytest
import torch
from mteb.models.modality_collators import FramesCollator

from benchmarks import _probe, compare_mteb, video_stand_in
from benchmarks.suites import SUITES
from harness.core.frame_store import LOCATION_VARIABLE
from harness.core.video import FrameSampling, Video, encode_video
from tests.test_video import clip_with_times, ramp

CLIPS = {
    "8 fps": encode_video(ramp(20, size=32), 8.0),
    "keyframes": encode_video(ramp(300), 30.0),
    "variable rate": clip_with_times([0, 40, 80, 400, 440, 1500, 1540, 3000]),
}
SAMPLINGS = [{"num_frames": 8}, {"num_frames": 40}, {"fps": 2.0, "max_frames": 5}, {}]


@pytest.fixture(autouse=True)
def no_frame_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every decode in these tests is a real one."""
    monkeypatch.delenv(LOCATION_VARIABLE, raising=False)


@pytest.mark.parametrize("clip", sorted(CLIPS))
def test_the_stand_in_reads_the_metadata_the_harness_reads(clip: str) -> None:
    decoder = video_stand_in.VideoDecoder(CLIPS[clip])
    video = Video(CLIPS[clip])
    assert decoder.metadata.num_frames == video.num_frames
    assert decoder.metadata.end_stream_seconds == video.seconds
    assert (decoder.metadata.width, decoder.metadata.height) == (video.width, video.height)


@pytest.mark.parametrize("settings", SAMPLINGS, ids=str)
@pytest.mark.parametrize("clip", sorted(CLIPS))
def test_mtebs_collator_on_the_stand_in_gets_the_harness_frames(
    clip: str, settings: dict[str, Any]
) -> None:
    theirs = FramesCollator.resample_video(video_stand_in.VideoDecoder(CLIPS[clip]), **settings)
    ours = Video(CLIPS[clip]).frames(FrameSampling(**settings))
    assert theirs.dtype == torch.uint8
    np.testing.assert_array_equal(theirs.numpy().transpose(0, 2, 3, 1), ours)


def test_an_index_past_the_last_frame_is_refused() -> None:
    decoder = video_stand_in.VideoDecoder(CLIPS["8 fps"])
    with pytest.raises(IndexError, match="index=20"):
        decoder.get_frames_at([3, 20])


def test_install_routes_datasets_video_through_the_stand_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("torchcodec", "torchcodec.decoders"):  # removed again after the test
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(datasets.config, "TORCHCODEC_AVAILABLE", False)
    video_stand_in.install()
    decoded = datasets.Video().decode_example({"bytes": CLIPS["8 fps"], "path": None})
    assert isinstance(decoded, video_stand_in.VideoDecoder)
    assert decoded.metadata.num_frames == 20
    with pytest.raises(NotImplementedError, match="video only"):
        sys.modules["torchcodec.decoders"].AudioDecoder(b"")


def test_decoding_passes_and_their_frames_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(av, "open", av.open)  # restored after the test
    counters = {name: multiprocessing.Value("q", 0) for name in _probe.DECODE_COUNTERS}
    monkeypatch.setattr(_probe, "_COUNTERS", counters)
    _probe._count_av_decodes()
    decoder = video_stand_in.VideoDecoder(CLIPS["8 fps"])  # demuxes: no decode
    assert _probe.counts()["decoded"] == 0
    decoder.get_frames_at([2, 0, 2])  # frames 0, 1 and 2
    decoder.get_frames_at([19])  # all 20
    assert (_probe.counts()["decoded"], _probe.counts()["frames"]) == (2, 23)
    Video(CLIPS["8 fps"]).frames(FrameSampling(num_frames=8))
    assert _probe.counts()["decoded"] == 3


def measure(side: str, scores: dict[str, float]) -> compare_mteb.Measure:
    report = {
        "scores": scores,
        "run_seconds": 1.0,
        "decoded": 3,
        "frames": 24,
        "forward_calls": 2,
    }
    return compare_mteb.Measure(side, 2.0, 500.0, report)


@pytest.mark.parametrize(("bare", "agree"), [(0.5, True), (0.5000004, True), (0.501, False)])
def test_a_bare_rerun_is_held_to_the_mteb_side_of_its_suite(
    bare: float, agree: bool, capsys: pytest.CaptureFixture
) -> None:
    rows = [
        (
            "tiny",
            SUITES["i"],
            {"mteb": measure("mteb", {"T": 0.5}), "harness": measure("h", {"T": 0.5})},
        ),
        ("tiny", SUITES["k"], {"harness": measure("harness", {"T": bare})}),
    ]
    assert compare_mteb.print_table(rows, "0") is agree
    table = capsys.readouterr().out
    assert "speed-up vs mteb" in table
    assert "3 (24 frames)" in table


@pytest.mark.parametrize(("suites", "message"), [("k", "reruns suite i: list"), ("j", "i warm")])
def test_reruns_need_the_suite_they_rerun(
    suites: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        compare_mteb.main(["--suites", suites])
    assert message in capsys.readouterr().err
