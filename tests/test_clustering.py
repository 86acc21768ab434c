"""Image clustering end to end: hub layout, custom YAML, agreement with mteb, bad input."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import torch

from harness.core.errors import HarnessError
from harness.engine.encoding import BatchEncoder
from harness.scoring.clustering import METRIC_KEYS
from harness.tasks.clustering import Clustering
from harness.tasks.registry import load_task_file
from tests.dataset_fixtures import (
    RGB,
    png_bytes,
    read_result_json,
    run_cli,
    task_file,
    write_labelled_dataset,
)
from tests.test_zero_shot import ContentAdapter, MtebContentModel

# Six labels; the last two share a colour, so no clustering of the swatches is perfect.
LABEL_COLOURS = ("red", "green", "blue", "yellow", "purple", "purple")
NAMES = ["cat", "dog", "bird", "fish", "horse", "car"]


def swatch_dataset(root: Path, image_column: str = "img", n: int = 48) -> Path:
    labels = np.random.default_rng(3).integers(0, len(NAMES), n).tolist()
    rows = [
        (png_bytes(RGB[LABEL_COLOURS[label]], size=12, seed=i), label)
        for i, label in enumerate(labels)
    ]
    return write_labelled_dataset(
        root, {"test": rows}, datasets.ClassLabel(names=NAMES), image_column
    )


def entry(name: str, data: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "clustering",
        "dataset": {"path": str(data), "columns": {"image": "img"}},
        "category": "i2c",
        **overrides,
    }


def evaluate(path: Path, adapter: Any | None = None, **kwargs: Any) -> dict[str, Any]:
    [task] = load_task_file(path)
    encoder = BatchEncoder(adapter or ContentAdapter(), batch_size=64, show_progress=False)
    return Clustering().evaluate(task, encoder, split="test", **kwargs).subsets[0]


def test_cli_run_writes_clustering_results(tiny_clip_dir: Path, tmp_path: Path) -> None:
    data = swatch_dataset(tmp_path / "data")
    tasks = task_file(tmp_path / "tasks.yaml", [entry("SwatchClustering", data)])
    assert run_cli(tiny_clip_dir, tasks, tmp_path) == 0
    result = read_result_json(tmp_path, "SwatchClustering")
    [scores] = result["scores"]["test"]
    assert list(scores)[:4] == list(METRIC_KEYS)
    assert scores["main_score"] == scores["nmi"]
    assert all(math.isfinite(scores[key]) and -1.0 <= scores[key] <= 1.0 for key in METRIC_KEYS)
    assert result["harness"]["task"]["protocol"] == {
        "batch_size": 500,
        "seed": 42,
        "fit_dtype": "float64",
    }


class TensorContentModel(MtebContentModel):
    """Returns torch tensors, as mteb's CLIP-style wrappers do (scikit-learn fits float64)."""

    def encode(self, inputs: Any, **kwargs: Any) -> torch.Tensor:
        return torch.from_numpy(super().encode(inputs, **kwargs))


@pytest.mark.parametrize(
    ("mteb_task", "image_column"),
    [("CIFAR10Clustering", "img"), ("ImageNetDog15Clustering", "image")],
)
@pytest.mark.parametrize(
    ("model", "fit_dtype"),
    [(TensorContentModel, "float64"), (MtebContentModel, "float32")],
    ids=["tensor-output", "numpy-output"],
)
def test_same_scores_as_mteb_on_the_same_dataset(
    mteb_task: str, image_column: str, model: type, fit_dtype: str, tmp_path: Path
) -> None:
    mteb = pytest.importorskip("mteb")
    from mteb.timing import TimingStack

    data = swatch_dataset(tmp_path / "data", image_column)
    reference_data = datasets.load_dataset(str(data), split="test")
    reference = mteb.get_task(mteb_task)._evaluate_subset(
        model(),
        reference_data,
        hf_split="test",
        hf_subset="default",
        encode_kwargs={"batch_size": 5},
        timer=TimingStack(),
    )
    overrides = {
        "dataset": {"path": str(data), "columns": {"image": image_column}},
        "protocol": {"fit_dtype": fit_dtype},
    }
    mine = evaluate(task_file(tmp_path / "t.yaml", [entry("Mine", data, **overrides)]))
    assert 0.0 < mine["nmi"] < 1.0
    assert mine["cluster_accuracy"] == reference["cluster_accuracy"]
    for key in METRIC_KEYS:
        assert mine[key] == pytest.approx(reference[key], abs=1e-6, rel=0), key


def test_images_are_encoded_once_without_a_role(tmp_path: Path) -> None:
    data = swatch_dataset(tmp_path / "data")
    adapter = ContentAdapter()
    evaluate(task_file(tmp_path / "t.yaml", [entry("T", data)]), adapter)
    [(role, _, items)] = adapter.calls
    assert role is None and len(items) == 48


def test_limit_clusters_the_first_items_into_their_distinct_labels(tmp_path: Path) -> None:
    rows = [
        (png_bytes(RGB[colour], size=8, seed=i), i % 3)
        for i, colour in enumerate(["red", "green", "blue"] * 4)
    ]
    data = write_labelled_dataset(tmp_path / "data", {"test": rows}, datasets.Value("int64"))
    adapter = ContentAdapter()
    scores = evaluate(task_file(tmp_path / "t.yaml", [entry("T", data)]), adapter, limit=2)
    assert [len(items) for _, _, items in adapter.calls] == [2]
    assert scores["cluster_accuracy"] == 1.0  # two items, two labels, two clusters


def test_string_labels_are_clustered(tmp_path: Path) -> None:
    rows = [(png_bytes(RGB[c], size=8, seed=i), c) for i, c in enumerate(["red", "blue"] * 5)]
    data = write_labelled_dataset(tmp_path / "data", {"test": rows}, datasets.Value("string"))
    assert evaluate(task_file(tmp_path / "t.yaml", [entry("T", data)]))["nmi"] == 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"category": "t2c"}, "image clustering \\(category i2c\\), not t2c"),
        ({"protocol": {"n_init": 3}}, "n_init"),
        ({"protocol": {"fit_dtype": "float16"}}, "fit_dtype"),
        ({"protocol": {"batch_size": 0}}, "batch_size"),
    ],
)
def test_bad_definitions_are_refused_when_the_file_loads(
    overrides: dict[str, Any], message: str, tmp_path: Path
) -> None:
    path = task_file(tmp_path / "t.yaml", [entry("Bad", tmp_path, **overrides)])
    with pytest.raises(HarnessError, match=message):
        load_task_file(path)


def test_multilabel_column_gets_a_clear_error(tmp_path: Path) -> None:
    rows = [(png_bytes(RGB["red"], size=8, seed=i), [0, 1]) for i in range(3)]
    feature = datasets.Sequence(datasets.ClassLabel(names=["a", "b"]))
    data = write_labelled_dataset(tmp_path / "data", {"test": rows}, feature)
    with pytest.raises(HarnessError, match=r"one label per image.*dataset\.columns\.label"):
        evaluate(task_file(tmp_path / "t.yaml", [entry("T", data)]))


def test_missing_label_column_names_the_mapping(tmp_path: Path) -> None:
    data = swatch_dataset(tmp_path / "data")
    columns = {"image": "img", "label": "fine_label"}
    bad = entry("Bad", data, dataset={"path": str(data), "columns": columns})
    with pytest.raises(HarnessError, match=r"lacks the column.*fine_label"):
        evaluate(task_file(tmp_path / "t.yaml", [bad]))
