"""MIEB's classification-family catalog entries: linear probe, multilabel, zero-shot, clustering.

Each distinct dataset layout is scored end to end on a tiny fixture written in that layout
(driven by the entry: its columns, eval splits and label names); the column names, protocol
constants and label prompts are compared with mteb's own task classes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
from pydantic import ValidationError
from threadpoolctl import threadpool_limits

from harness.core.encoder import Encoded
from harness.core.items import RawItem
from harness.engine.encoding import BatchEncoder
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import column
from harness.tasks.registry import task_type
from harness.tasks.zero_shot import ZeroShotClassification, ZeroShotProtocol
from tests.catalog_layouts import catalog_tasks, layout_params, score_on_fixture
from tests.dataset_fixtures import COLOURS, RGB, fake_meta, png_bytes, write_labelled_dataset

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb

MTEB_TYPES = ("ImageClassification", "ZeroShotClassification", "ImageClustering")
TYPES = ("linear_probe", "multilabel_classification", "zero_shot_classification", "clustering")
CATALOG = catalog_tasks(*TYPES)
# ClassLabel names shaped like SUN397's paths, so that name rewrites have something to do.
FEATURE_NAMES = ["/a/abbey", "/c/church/outdoor", "/b/boat_deck"]
N_LABELS = len(FEATURE_NAMES)
# Metrics each type reports beside its main score.
METRICS = {
    "linear_probe": {"accuracy", "f1", "precision", "recall", "scores_per_experiment"},
    "multilabel_classification": {"lrap", "f1", "accuracy", "hamming", "scores_per_experiment"},
    "zero_shot_classification": {"accuracy", "f1", "precision", "recall"},
    "clustering": {"nmi", "v_measure", "ari"},
}


def declared_label_names(task: TaskDefinition) -> list[str] | None:
    """Names an entry over the same dataset lists: there the hub stores plain integer labels
    (mteb keeps the names itself), elsewhere a ``ClassLabel``."""
    for entry in [task, *catalog_tasks("zero_shot_classification")]:
        names = entry.protocol.get("label_names")
        if entry.dataset.path == task.dataset.path and isinstance(names, list):
            return names
    return None


def label_feature(task: TaskDefinition) -> datasets.ClassLabel | datasets.Value:
    """The label column's feature in the real dataset."""
    if declared_label_names(task) is not None:
        return datasets.Value("int64")
    return datasets.ClassLabel(names=FEATURE_NAMES)


def image_rows(labels: list[Any], seed: int) -> list[tuple[bytes, Any]]:
    """One small swatch per label, its colour chosen by the (first) label."""
    swatches = {}
    rows = []
    for i, label in enumerate(labels):
        colour = COLOURS[(label[0] if isinstance(label, list) else label) % len(COLOURS)]
        key = (colour, i % 4)
        if key not in swatches:
            swatches[key] = png_bytes(RGB[colour], size=16, seed=seed + i % 4)
        rows.append((swatches[key], label))
    return rows


def write_split_fixture(
    task: TaskDefinition, root: Path, splits: dict[str, list[Any]], feature: Any
) -> Path:
    """The entry's layout: config ``default``, its splits, its image and label columns."""
    rows = {
        split: image_rows(labels, seed=100 * i) for i, (split, labels) in enumerate(splits.items())
    }
    return write_labelled_dataset(
        root, rows, feature, image_column=column(task, "image"), label_column=column(task, "label")
    )


def write_linear_probe_fixture(task: TaskDefinition, root: Path) -> Path:
    """A ``train`` split (long enough for the rows the entry excludes) and the eval splits."""
    protocol = task_type(task).protocol(task)
    n_train = max(4 * N_LABELS, max(protocol.exclude_train_rows, default=0) + 1)
    splits = {protocol.train_split: [i % N_LABELS for i in range(n_train)]}
    splits |= {split: [i % N_LABELS for i in range(2 * N_LABELS)] for split in task.eval_splits}
    return write_split_fixture(task, root, splits, label_feature(task))


def write_multilabel_classification_fixture(task: TaskDefinition, root: Path) -> Path:
    """Rows holding one or two labels each, as a sequence of ``ClassLabel``s."""
    protocol = task_type(task).protocol(task)

    def label_sets(n: int) -> list[list[int]]:
        return [sorted({i % N_LABELS, (i // 2) % N_LABELS}) for i in range(n)]

    splits = {protocol.train_split: label_sets(12)}
    splits |= {split: label_sets(6) for split in task.eval_splits}
    feature = datasets.Sequence(datasets.ClassLabel(names=FEATURE_NAMES))
    return write_split_fixture(task, root, splits, feature)


def write_zero_shot_classification_fixture(task: TaskDefinition, root: Path) -> Path:
    """The eval splits only; labels index the entry's names or the ``ClassLabel`` names."""
    names = declared_label_names(task) or FEATURE_NAMES
    labels = [i % min(len(names), N_LABELS) for i in range(2 * N_LABELS)]
    return write_split_fixture(
        task, root, dict.fromkeys(task.eval_splits, labels), label_feature(task)
    )


def write_clustering_fixture(task: TaskDefinition, root: Path) -> Path:
    """The eval splits only, two images of each of three labels."""
    labels = [i % N_LABELS for i in range(2 * N_LABELS)]
    return write_split_fixture(
        task, root, dict.fromkeys(task.eval_splits, labels), label_feature(task)
    )


WRITERS: dict[str, Callable[[TaskDefinition, Path], Path]] = {
    "linear_probe": write_linear_probe_fixture,
    "multilabel_classification": write_multilabel_classification_fixture,
    "zero_shot_classification": write_zero_shot_classification_fixture,
    "clustering": write_clustering_fixture,
}


@pytest.mark.parametrize("benchmark", ["MIEB(lite)", "MIEB(eng)", "MIEB(Multilingual)"])
def test_catalog_covers_mieb_classification_family(benchmark: str) -> None:
    mieb = {
        task.metadata.name
        for task in mteb.get_benchmark(benchmark).tasks
        if task.metadata.type in MTEB_TYPES
    }
    assert mieb, benchmark
    assert mieb <= {task.name for task in CATALOG}


@pytest.mark.parametrize("task", layout_params(CATALOG))
def test_layout_scores(task: TaskDefinition, tiny_clip_dir: Path, tmp_path: Path) -> None:
    # One OpenMP thread: on a busy 2-core machine MiniBatchKMeans' threads spin for about a
    # second on these few rows; the scores do not depend on the thread count.
    with threadpool_limits(limits=1):
        result = score_on_fixture(task, WRITERS[task.type], tiny_clip_dir, tmp_path)
    assert set(result["scores"]) == set(task.eval_splits)
    for split in task.eval_splits:
        [scores] = result["scores"][split]
        assert scores["hf_subset"] == "default"
        assert math.isfinite(scores["main_score"])
        assert scores["main_score"] == scores[task.main_score]
        assert METRICS[task.type] <= set(scores)


@cache
def mteb_task(name: str) -> Any:
    return mteb.get_task(name)


@pytest.mark.parametrize("task", CATALOG, ids=lambda task: task.name)
def test_columns_and_constants_match_mteb(task: TaskDefinition) -> None:
    reference = mteb_task(task.name)
    assert column(task, "image") == reference.input_column_name
    assert column(task, "label") == reference.label_column_name
    protocol = task_type(task).protocol(task)
    if task.type in ("linear_probe", "multilabel_classification"):
        assert protocol.samples_per_label == reference.samples_per_label
        assert protocol.n_experiments == reference.n_experiments
        assert protocol.train_split == reference.train_split
    if task.type == "multilabel_classification":
        assert protocol.max_eval_samples == reference.max_eval_samples
    if task.type == "zero_shot_classification":
        mteb_softmax = reference.metadata.modalities == ["image", "text"]
        assert (protocol.label_scoring == "softmax") == mteb_softmax


class ConstantAdapter:
    """A model that gives every input the same vector."""

    meta = fake_meta("constant")

    def encode(self, items: list[dict[str, Any]], **_: Any) -> np.ndarray:
        return np.ones((len(items), 4), dtype=np.float32)


@dataclass
class PromptRecorder(BatchEncoder):
    """An encoder that records, in order, the texts a task hands it."""

    texts: list[str] = field(default_factory=list)

    def encode(self, items: Sequence[RawItem], **kwargs: Any) -> Encoded:
        self.texts += [item.parts["text"] for item in items if "text" in item.parts]
        return super().encode(items, **kwargs)


@pytest.mark.parametrize(
    "task", catalog_tasks("zero_shot_classification"), ids=lambda task: task.name
)
def test_label_prompts_equal_mtebs_candidate_labels(task: TaskDefinition, tmp_path: Path) -> None:
    """The prompts the entry encodes on its fixture are mteb's ``get_candidate_labels`` for a
    split with the fixture's label feature."""
    fixture = write_zero_shot_classification_fixture(task, tmp_path / "data")
    local = task.model_copy(
        update={"dataset": task.dataset.model_copy(update={"path": str(fixture)})}
    )
    recorder = PromptRecorder(ConstantAdapter(), show_progress=False)
    ZeroShotClassification().evaluate(local, recorder, split=task.eval_splits[0])

    reference = mteb_task(task.name)
    feature = datasets.Features({reference.label_column_name: label_feature(task)})
    split = datasets.Dataset.from_dict({reference.label_column_name: [0]}, features=feature)
    reference.dataset = datasets.DatasetDict(dict.fromkeys(["test", *task.eval_splits], split))
    assert recorder.texts == reference.get_candidate_labels()


def test_a_bad_label_name_rewrite_is_refused() -> None:
    with pytest.raises(ValidationError, match="label_name_rewrites: bad pattern"):
        ZeroShotProtocol.model_validate({"label_name_rewrites": [["([", ""]]})
