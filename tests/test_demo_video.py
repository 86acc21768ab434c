"""The video demo: deterministic clips whose frames show what their captions say, time-reversed
twins, the committed data and its MVEB layouts, and the demo CLIP frame-pooled through
``harness run``: far above chance on captions, at chance on the direction of motion."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.core.video import FrameSampling, Video
from harness.model_adapters import load_adapter
from harness.tasks.demo.clips import (
    COLOURS,
    EVENTS,
    FPS,
    N_FRAMES,
    SIZE,
    Clip,
    all_clips,
    demo_clips,
    render,
    sample_clips,
    vocabulary,
)
from harness.tasks.demo.video import (
    MOTION_EVENTS,
    MOTION_PAIRS,
    N_RETRIEVAL,
    PER_CLASS,
    build_video,
    motion_clips,
)
from harness.tasks.registry import builtin_tasks, demo_tasks
from tests.dataset_fixtures import DEMO_DATA, read_result_json, run_cli

DATASETS = (
    "DemoVideoT2VRetrieval",
    "DemoVideoV2TRetrieval",
    "DemoVideoClassification",
    "DemoVideoMotionClassification",
)
TASKS = {
    "DemoVideoT2VRetrieval": ("retrieval", "t2v"),
    "DemoVideoV2TRetrieval": ("retrieval", "v2t"),
    "DemoVideoClassification": ("linear_probe", "v2c"),
    "DemoVideoZeroShot": ("zero_shot_classification", "v2t"),
    "DemoVideoClustering": ("clustering_fast", "v2c"),
    "DemoVideoMotionClassification": ("linear_probe", "v2c"),
}
MAX_BYTES = 3_000_000


def shape_pixels(frame: np.ndarray) -> np.ndarray:
    """The mask of pixels that are not the (near-white) background."""
    return np.abs(frame.astype(int) - frame[0, 0].astype(int)).sum(axis=-1) > 60


def centre(frame: np.ndarray) -> np.ndarray:
    """The (x, y) centre of the shape's pixels."""
    ys, xs = np.nonzero(shape_pixels(frame))
    return np.array([xs.mean(), ys.mean()])


def test_clip_descriptions_captions_and_labels() -> None:
    clips = all_clips()
    assert len(clips) == len({clip.caption for clip in clips}) == 6 * 4 * 11
    assert {clip.label for clip in clips} == set(EVENTS)
    assert Clip("red", "circle", "moves left").caption == "a red circle moves to the left"
    assert Clip("orange", "cross", "grows").caption == "an orange cross grows"
    turns = Clip("green", "triangle", "changes colour", "yellow")
    assert turns.caption == "a green triangle turns yellow"
    assert turns.reversed().caption == "a yellow triangle turns green"
    assert Clip("blue", "square", "moves up").reversed().label == "moves down"
    words = set(vocabulary())
    assert all(set(text.split()) <= words for text in [c.caption for c in clips] + list(EVENTS))
    for bad in (("red", "circle", "changes colour"), ("red", "circle", "grows", "blue")):
        with pytest.raises(ValueError):
            Clip(*bad)
    assert sample_clips(20, (1, 2)) == sample_clips(20, (1, 2)) != sample_clips(20, (1, 3))
    assert len(set(sample_clips(len(clips), 5))) == len(clips)


@pytest.mark.parametrize("clip", all_clips()[::7], ids=lambda clip: clip.caption)
def test_frames_show_the_caption_and_twins_are_reversed(clip: Clip) -> None:
    frames = render(clip, (3, 4))
    assert frames.shape == (N_FRAMES, SIZE, SIZE, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(render(clip, (3, 4)), frames)
    assert not np.array_equal(render(clip, (3, 5)), frames)
    twin = render(clip.reversed(), (3, 4))
    np.testing.assert_array_equal(twin, frames[::-1])
    assert not np.array_equal(twin, frames)
    first, last = frames[0], frames[-1]
    for frame in (first, last):  # the whole shape is inside the frame
        mask = shape_pixels(frame)
        assert mask.any() and not (mask[0].any() or mask[-1].any() or mask[:, 0].any())
    shift = centre(last) - centre(first)
    growth = shape_pixels(last).sum() / shape_pixels(first).sum()
    if clip.event.startswith("moves"):
        axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[
            clip.event.split()[1]
        ]
        assert sign * shift[axis] > 0.3 * SIZE and abs(shift[1 - axis]) < 1
    elif clip.event in ("grows", "shrinks"):
        assert (growth > 3) if clip.event == "grows" else (growth < 1 / 3)
    else:
        colour_of = {name: np.array(rgb) for name, rgb in COLOURS.items()}
        for frame, name in ((first, clip.colour), (last, clip.new_colour)):
            assert name is not None
            seen = frame[shape_pixels(frame)].mean(axis=0)
            assert np.abs(seen - colour_of[name]).max() <= 16


def test_demo_clips_are_deterministic_mp4() -> None:
    clips = demo_clips(6, 3)
    again = demo_clips(6, (3,))
    assert [c.caption for c in clips] == [c.caption for c in again]
    assert all(c.label in EVENTS for c in clips)
    assert [c.caption for c in demo_clips(6, 4)] != [c.caption for c in clips]
    data = clips[0].mp4()
    assert data == again[0].mp4()
    video = Video(data)
    assert (video.num_frames, video.width, video.height) == (N_FRAMES, SIZE, SIZE)
    assert video.fps == pytest.approx(FPS)
    decoded = video.frames(FrameSampling())
    assert np.abs(decoded.astype(int) - clips[0].frames).mean() < 4  # H.264 at CRF 18


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The video demo datasets as ``build_video`` writes them now."""
    out = tmp_path_factory.mktemp("demo-video")
    build_video(out)
    return out


@pytest.mark.parametrize("name", DATASETS)
def test_committed_data_matches_the_builder(rebuilt: Path, name: str) -> None:
    committed = DEMO_DATA / name
    files = sorted(p.relative_to(committed) for p in committed.rglob("*.parquet"))
    assert files == sorted(
        p.relative_to(rebuilt / name) for p in (rebuilt / name).rglob("*.parquet")
    )
    assert (committed / "README.md").read_text() == (rebuilt / name / "README.md").read_text()
    for file in files:
        # Byte for byte, clips included (the pinned PyAV bundles its libx264).
        assert pq.read_table(rebuilt / name / file) == pq.read_table(committed / file)


def _load(name: str, config: str, split: str) -> datasets.Dataset:
    data = datasets.load_dataset(str(DEMO_DATA / name), config, split=split)
    return data.cast_column("video", datasets.Video(decode=False))


@pytest.mark.parametrize("name", ["DemoVideoT2VRetrieval", "DemoVideoV2TRetrieval"])
def test_retrieval_layout(name: str) -> None:
    corpus, queries = (_load(name, config, "test") for config in ("corpus", "queries"))
    qrels = datasets.load_dataset(str(DEMO_DATA / name), "qrels", split="test")
    assert corpus.column_names == queries.column_names == ["id", "modality", "text", "video"]
    video_queries = name == "DemoVideoV2TRetrieval"
    videos, texts = (queries, corpus) if video_queries else (corpus, queries)
    assert len(videos) == len(texts) == len(qrels) == N_RETRIEVAL
    assert set(videos["modality"]) == {"video"} and set(texts["modality"]) == {"text"}
    assert len(set(texts["text"])) == N_RETRIEVAL
    assert all(cell["bytes"] for cell in videos["video"])
    pairs = set(zip(qrels["query-id"], qrels["corpus-id"], strict=True))
    assert {q for q, _ in pairs} == set(queries["id"]) and {d for _, d in pairs} == set(
        corpus["id"]
    )


def test_classification_layouts_and_twins() -> None:
    for name, names, per_class in (
        ("DemoVideoClassification", EVENTS, PER_CLASS),
        ("DemoVideoMotionClassification", MOTION_EVENTS, MOTION_PAIRS),
    ):
        for split in ("train", "test"):
            data = _load(name, "default", split)
            assert data.column_names == ["video", "label"]
            assert data.features["label"].names == list(names)
            counts = np.bincount(data["label"], minlength=len(names))
            assert counts.tolist() == [per_class[split]] * len(names)
    for split in ("train", "test"):
        clips = motion_clips(split)
        for right, left in zip(clips[::2], clips[1::2], strict=True):
            assert (right.label, left.label) == ("moves right", "moves left")
            np.testing.assert_array_equal(left.frames, right.frames[::-1])


def test_committed_video_is_small() -> None:
    total = sum(p.stat().st_size for name in DATASETS for p in (DEMO_DATA / name).rglob("*"))
    assert total < MAX_BYTES


def test_demo_tasks_include_the_video_tasks() -> None:
    known = builtin_tasks()
    assert set(TASKS) <= set(demo_tasks())
    for name, (kind, category) in TASKS.items():
        assert (known[name].type, known[name].category) == (kind, category)


def test_frame_pooling_cannot_tell_twins_apart() -> None:
    adapter = load_adapter("demo-clip")
    clips = motion_clips("test")[:8]
    vectors = adapter.encode([{"video": Video(clip.mp4())} for clip in clips])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    twins = (vectors[::2] * vectors[1::2]).sum(axis=1)
    others = vectors[::2] @ vectors[::2].T
    assert twins.min() > 0.999 > others[~np.eye(len(others), dtype=bool)].max()


def test_demo_clip_frame_pooled_through_harness_run(tmp_path: Path) -> None:
    tasks = "DemoVideoT2VRetrieval,DemoVideoMotionClassification"
    assert run_cli("demo-clip", tasks, tmp_path) == 0
    retrieval = read_result_json(tmp_path, "DemoVideoT2VRetrieval")["scores"]["test"][0]
    motion = read_result_json(tmp_path, "DemoVideoMotionClassification")["scores"]["test"][0]
    # Chance (mean of 10 seeds of random vectors): nDCG@10 0.032; accuracy 0.5.
    assert retrieval["main_score"] > 0.4
    assert abs(motion["main_score"] - 0.5) <= 0.05
