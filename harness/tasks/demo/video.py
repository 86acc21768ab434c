"""Write the video demo datasets (clips of :mod:`harness.tasks.demo.clips`) in MVEB's hub layouts.

``DemoVideoT2VRetrieval`` (task index 15) and ``DemoVideoV2TRetrieval`` (16) use the layout of
the shapes and audio retrieval demos: configs ``corpus``, ``queries`` and ``qrels`` (split
``test``); corpus and queries rows are ``id``, ``modality`` ("text" or "video"), ``text`` and
``video`` (a ``datasets.Video`` column of MP4 bytes); qrels rows ``query-id``, ``corpus-id``,
``score``. Each task draws :data:`N_RETRIEVAL` distinct captions, one clip each.

``DemoVideoClassification`` (17) serves the linear-probe, zero-shot and clustering demos: one
config ``default``, splits ``train`` and ``test``, columns ``video`` and ``label`` (a
``ClassLabel`` whose names are the 7 events: "moves left", "grows", "changes colour"...), as
MVEB's video classification sets. Each clip shows a random colour and shape doing its event.

``DemoVideoMotionClassification`` (18), the same layout with two classes, "moves left" and
"moves right": every clip comes with its time-reversed twin (:meth:`Clip.reversed`, same seed),
in the same split, so the two classes hold the same frames in opposite orders. A model that
pools its frames scores exactly chance there.

Clip ``k`` of a task is rendered with seed ``(DATA_SEED, task index, ...)``; see each builder.
Usage: ``python -m harness.tasks.demo OUT_DIR`` (the committed copy is ``harness/tasks/demo/data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from harness.tasks.demo.build import DATA_SEED, QREL_FEATURES, data_path, shuffled
from harness.tasks.demo.clips import (
    COLOURS,
    EVENTS,
    FPS,
    GENERATOR_VERSION,
    N_FRAMES,
    SHAPES,
    SIZE,
    Clip,
    DemoClip,
    rendered,
    sample_clips,
)

T2V_INDEX, V2T_INDEX, CLASSIFICATION_INDEX, MOTION_INDEX = 15, 16, 17, 18
N_RETRIEVAL = 150
PER_CLASS = {"train": 24, "test": 20}
MOTION_PAIRS = {"train": 20, "test": 50}
MOTION_EVENTS = ("moves left", "moves right")
SPLITS = ("train", "test")
ITEM_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "text": datasets.Value("string"),
        "video": datasets.Video(),
    }
)

Row = dict[str, object]


@dataclass(frozen=True)
class VideoDataset:
    """One dataset folder: its configs (``{config: (features, {split: rows})}``) and the
    README's description."""

    name: str
    index: int
    parts: dict[str, tuple[datasets.Features, dict[str, list[Row]]]]
    description: str


def _cell(clip: DemoClip) -> dict[str, object]:
    return {"bytes": clip.mp4(), "path": None}


def retrieval_clips(index: int) -> list[DemoClip]:
    """The clips of a retrieval task: ``N_RETRIEVAL`` distinct captions, clip ``i`` rendered
    with seed ``(DATA_SEED, index, i, 1)``."""
    clips = sample_clips(N_RETRIEVAL, (DATA_SEED, index))
    return [rendered(clip, (DATA_SEED, index, i, 1)) for i, clip in enumerate(clips)]


def retrieval_dataset(name: str, index: int, video_queries: bool) -> VideoDataset:
    """V2T (``video_queries``) or T2V retrieval between captions and their clips."""
    texts: list[Row] = []
    videos: list[Row] = []
    qrels: list[Row] = []
    for i, clip in enumerate(retrieval_clips(index)):
        text_id, video_id = f"t{i:04d}", f"v{i:04d}"
        texts.append({"id": text_id, "modality": "text", "text": clip.caption, "video": None})
        videos.append({"id": video_id, "modality": "video", "text": None, "video": _cell(clip)})
        query, document = (video_id, text_id) if video_queries else (text_id, video_id)
        qrels.append({"query-id": query, "corpus-id": document, "score": 1})
    queries, corpus = (videos, texts) if video_queries else (texts, videos)
    parts: dict[str, tuple[datasets.Features, dict[str, list[Row]]]] = {
        "corpus": (ITEM_FEATURES, {"test": shuffled(corpus, (DATA_SEED, index, 2))}),
        "queries": (ITEM_FEATURES, {"test": queries}),
        "qrels": (QREL_FEATURES, {"test": qrels}),
    }
    side = "clip retrieves its caption" if video_queries else "caption retrieves its clip"
    description = (
        f"Each of {N_RETRIEVAL} distinct captions has one clip; each {side} among "
        f"{N_RETRIEVAL} ('a red circle moves to the left', 'a blue square grows', 'a green "
        "triangle turns yellow')."
    )
    return VideoDataset(name, index, parts, description)


def event_clips(split: str) -> list[DemoClip]:
    """DemoVideoClassification's clips of ``split``, event by event: a random colour and shape
    (and new colour) doing the event, seed ``(DATA_SEED, 17, split code, event, k)``."""
    split_code = SPLITS.index(split) + 1
    clips: list[DemoClip] = []
    for label, event in enumerate(EVENTS):
        for k in range(PER_CLASS[split]):
            seed = (DATA_SEED, CLASSIFICATION_INDEX, split_code, label, k + 1)
            clips.append(rendered(_random_clip(event, seed), seed))
    return clips


def motion_clips(split: str) -> list[DemoClip]:
    """DemoVideoMotionClassification's clips of ``split``: pair ``k`` is a random shape moving
    right and its reversal (moving left), both rendered with seed ``(DATA_SEED, 18, split code,
    k)``."""
    split_code = SPLITS.index(split) + 1
    clips: list[DemoClip] = []
    for k in range(MOTION_PAIRS[split]):
        seed = (DATA_SEED, MOTION_INDEX, split_code, k + 1)
        clip = _random_clip("moves right", seed)
        clips.extend((rendered(clip, seed), rendered(clip.reversed(), seed)))
    return clips


def _random_clip(event: str, seed: tuple[int, ...]) -> Clip:
    """A random colour and shape doing ``event`` (drawn from the seed followed by 2)."""
    rng = np.random.default_rng((*seed, 2))
    colours = list(COLOURS)
    colour = colours[int(rng.integers(len(colours)))]
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    others = [c for c in colours if c != colour]
    new = others[int(rng.integers(len(others)))] if event == "changes colour" else None
    return Clip(colour, shape, event, new)


def labelled_dataset(
    name: str, index: int, names: tuple[str, ...], clips: dict[str, list[DemoClip]], about: str
) -> VideoDataset:
    """A classification set of ``clips`` by split, labelled with their events' ids in
    ``names``; rows shuffled with seed ``(DATA_SEED, index, split code)``."""
    features = datasets.Features(
        {"video": datasets.Video(), "label": datasets.ClassLabel(names=list(names))}
    )
    splits = {
        split: shuffled(
            [{"video": _cell(clip), "label": names.index(clip.label)} for clip in clips[split]],
            (DATA_SEED, index, code),
        )
        for code, split in enumerate(SPLITS, start=1)
    }
    sizes = ", ".join(f"{len(rows)} {split}" for split, rows in splits.items())
    description = f"{about} {len(names)} classes; {sizes} clips."
    return VideoDataset(name, index, {"default": (features, splits)}, description)


def video_datasets() -> list[VideoDataset]:
    """Every video demo dataset."""
    return [
        retrieval_dataset("DemoVideoT2VRetrieval", T2V_INDEX, video_queries=False),
        retrieval_dataset("DemoVideoV2TRetrieval", V2T_INDEX, video_queries=True),
        labelled_dataset(
            "DemoVideoClassification",
            CLASSIFICATION_INDEX,
            EVENTS,
            {split: event_clips(split) for split in SPLITS},
            "What happens in a clip: a shape moves left, right, up or down, grows, shrinks or "
            "changes colour. Serves the linear-probe, zero-shot and clustering video demos.",
        ),
        labelled_dataset(
            "DemoVideoMotionClassification",
            MOTION_INDEX,
            MOTION_EVENTS,
            {split: motion_clips(split) for split in SPLITS},
            "Whether a shape moves left or right. Every clip comes with its time-reversed twin "
            "(the same frames in the opposite order) in the same split, so a model that pools "
            "frames cannot tell the classes apart.",
        ),
    ]


def _readme(dataset: VideoDataset) -> str:
    configs = "".join(
        f"- config_name: {config}\n  data_files:\n"
        + "".join(f"  - split: {split}\n    path: {data_path(config, split)}\n" for split in rows)
        for config, (_, rows) in dataset.parts.items()
    )
    return (
        f"---\nlicense: apache-2.0\npretty_name: {dataset.name}\nconfigs:\n{configs}---\n\n"
        f"# {dataset.name}\n\n{dataset.description}\n\n"
        f"Synthetic clips ({N_FRAMES} frames of {SIZE}x{SIZE} at {FPS:g} fps, H.264 MP4 by "
        "PyAV's libx264), generated by `harness/tasks/demo/clips.py` (generator version "
        f"{GENERATOR_VERSION}) and written by `harness/tasks/demo/video.py` "
        f"(data seed {DATA_SEED}, "
        f"task index {dataset.index}). See `../SOURCE.md` to reproduce.\n"
    )


def write_dataset(out_dir: Path, dataset: VideoDataset) -> Path:
    """Write one dataset's folder (README and one parquet file per config and split)."""
    folder = out_dir / dataset.name
    for config, (features, splits) in dataset.parts.items():
        for split, rows in splits.items():
            path = folder / data_path(config, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    (folder / "README.md").write_text(_readme(dataset), encoding="utf-8")
    return folder


def build_video(out_dir: Path) -> None:
    """Write the video demo datasets under ``out_dir``."""
    for dataset in video_datasets():
        write_dataset(Path(out_dir), dataset)
