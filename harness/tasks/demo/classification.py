"""Write the demo labelled-image datasets in the hub layout of MIEB's image classification sets.

``DemoShapesClassification`` (task index 4) is one labelled image set that serves the linear
probe, zero-shot and clustering demo tasks, as CIFAR10 serves three MIEB tasks. Its classes are
10 scene layouts, named by their canonical caption ("a red circle left of an orange square"),
in 5 pairs that hold the same two objects and differ only in their order or relation; each
class has 30 train and 25 test renderings that differ in jittered positions, sizes, colours and
background. Layout: one config ``default`` with splits ``train`` and ``test``; columns
``image`` (PNG) and ``label`` (a ``ClassLabel`` whose names are the captions).

``DemoShapesMultilabelClassification`` (task index 5) follows VOC2007's layout: columns
``image`` and ``classes`` (a list of label ids, ``Sequence(ClassLabel)``), splits ``train`` and
``test``. The 10 labels are the colours and shapes a scene contains (2 to 4 per image).

Usage: ``python -m harness.tasks.demo OUT_DIR`` (the committed copy is
``harness/tasks/demo/data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from harness.tasks.demo.build import DATA_SEED, IMAGE_SIZE, png_bytes
from harness.tasks.demo.shapes import (
    COLOURS,
    GENERATOR_VERSION,
    SHAPES,
    Layout,
    Scene,
    render,
    sample_scenes,
    scene_for,
)

CLASSIFICATION_INDEX = 4
MULTILABEL_INDEX = 5
N_PAIRS = 5
PER_CLASS = {"train": 30, "test": 25}
MULTILABEL_SIZES = {"train": 160, "test": 160}
MULTILABEL_NAMES = (*COLOURS, *SHAPES)
SPLITS = ("train", "test")

Row = dict[str, object]


@dataclass(frozen=True)
class LabelledSet:
    """One dataset: its name, features, rows per split and the README's description."""

    name: str
    index: int
    features: datasets.Features
    rows: dict[str, list[Row]]
    description: str


def class_scenes() -> list[Scene]:
    """The classes of DemoShapesClassification, as scenes in their canonical caption.

    Five pairs of classes over the same two objects (five objects of distinct colours, in a
    ring): in pairs 0, 2 and 4 the objects swap places ("a left of b" / "b left of a"), in
    pairs 1 and 3 the relation changes ("a left of b" / "a above b"). Which objects a scene
    holds never tells the two classes of a pair apart.
    """
    rng = np.random.default_rng((DATA_SEED, CLASSIFICATION_INDEX))
    colours = [list(COLOURS)[i] for i in rng.permutation(len(COLOURS))[:N_PAIRS]]
    shapes = [SHAPES[i] for i in rng.permutation(len(SHAPES))]
    objects = [(colours[i], shapes[i % len(shapes)]) for i in range(N_PAIRS)]
    scenes = []
    for i, first in enumerate(objects):
        second = objects[(i + 1) % N_PAIRS]
        other: Layout = (second, first, "horizontal") if i % 2 == 0 else (first, second, "vertical")
        for layout in ((first, second, "horizontal"), other):
            scenes.append(scene_for(layout, backward=False))
    return scenes


def _image(scene: Scene, seed: tuple[int, ...]) -> dict[str, bytes]:
    return {"bytes": png_bytes(render(scene, size=IMAGE_SIZE, seed=seed))}


def _shuffled(rows: list[Row], seed: tuple[int, ...]) -> list[Row]:
    """Rows in a seeded random order, so that row order carries no label information."""
    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[k] for k in order]


def classification_set() -> LabelledSet:
    """DemoShapesClassification: 10 layouts, 30 train and 25 test renderings each."""
    scenes = class_scenes()
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=[scene.caption for scene in scenes]),
        }
    )
    rows = {}
    for split_code, split in enumerate(SPLITS):
        split_rows: list[Row] = [
            {
                "image": _image(scene, (DATA_SEED, CLASSIFICATION_INDEX, label, split_code, k)),
                "label": label,
            }
            for label, scene in enumerate(scenes)
            for k in range(PER_CLASS[split])
        ]
        rows[split] = _shuffled(split_rows, (DATA_SEED, CLASSIFICATION_INDEX, split_code))
    description = (
        f"Which of {2 * N_PAIRS} scenes an image shows. Each class is one layout of two "
        'coloured shapes, named by its caption (for example "a red circle left of an orange '
        'square"); its images are renderings with jittered positions, sizes, colours and '
        f"background. The classes come in {N_PAIRS} pairs over the same two objects: in three "
        "pairs the objects swap places, in two the relation changes (left of / above), so "
        "telling a pair apart needs more than knowing which objects are present. Serves the "
        "linear-probe, zero-shot and clustering demo tasks."
    )
    return LabelledSet(
        "DemoShapesClassification", CLASSIFICATION_INDEX, features, rows, description
    )


def scene_labels(scene: Scene) -> list[int]:
    """The multilabel ids of a scene: its colours and shapes, in label order."""
    present = {*scene.colours, *scene.shapes}
    return [i for i, name in enumerate(MULTILABEL_NAMES) if name in present]


def multilabel_set() -> LabelledSet:
    """DemoShapesMultilabelClassification: which colours and shapes an image contains."""
    total = sum(MULTILABEL_SIZES.values())
    scenes = sample_scenes(total, (DATA_SEED, MULTILABEL_INDEX))
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "classes": datasets.Sequence(datasets.ClassLabel(names=list(MULTILABEL_NAMES))),
        }
    )
    rows: dict[str, list[Row]] = {}
    start = 0
    for split_code, split in enumerate(SPLITS):
        chosen = scenes[start : start + MULTILABEL_SIZES[split]]
        start += MULTILABEL_SIZES[split]
        rows[split] = [
            {
                "image": _image(scene, (DATA_SEED, MULTILABEL_INDEX, split_code, i)),
                "classes": scene_labels(scene),
            }
            for i, scene in enumerate(chosen)
        ]
    description = (
        "Which colours and shapes an image of two coloured shapes contains (VOC2007-style "
        f"multilabel classification, {len(MULTILABEL_NAMES)} labels, 2 to 4 per image). Train "
        "and test scenes have pairwise distinct layouts."
    )
    return LabelledSet(
        "DemoShapesMultilabelClassification", MULTILABEL_INDEX, features, rows, description
    )


def _readme(labelled: LabelledSet) -> str:
    files = "".join(
        f"  - split: {split}\n    path: data/{split}-00000-of-00001.parquet\n" for split in SPLITS
    )
    sizes = ", ".join(f"{len(labelled.rows[split])} {split} rows" for split in SPLITS)
    return (
        f"---\nlicense: apache-2.0\npretty_name: {labelled.name}\nconfigs:\n"
        f"- config_name: default\n  data_files:\n{files}---\n\n"
        f"# {labelled.name}\n\n{labelled.description}\n\n"
        f"Synthetic scenes of two coloured shapes ({IMAGE_SIZE}x{IMAGE_SIZE} PNG), generated by "
        f"`harness/tasks/demo/shapes.py` (generator version {GENERATOR_VERSION}) and written by "
        f"`harness/tasks/demo/classification.py` (data seed {DATA_SEED}, "
        f"task index {labelled.index}). "
        f"{sizes}. Columns: {', '.join(labelled.features)}.\n"
    )


def write_set(out_dir: Path, labelled: LabelledSet) -> Path:
    """Write one dataset's folder (README and one parquet file per split) and return it."""
    folder = out_dir / labelled.name
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        dataset = datasets.Dataset.from_list(labelled.rows[split], features=labelled.features)
        dataset.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    (folder / "README.md").write_text(_readme(labelled), encoding="utf-8")
    return folder


def build_classification(out_dir: Path) -> None:
    """Write DemoShapesClassification and DemoShapesMultilabelClassification under ``out_dir``."""
    for labelled in (classification_set(), multilabel_set()):
        write_set(Path(out_dir), labelled)
