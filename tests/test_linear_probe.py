"""Linear probe and multilabel classification end to end: hub layout, custom YAML, agreement with
mteb's own tasks run through mteb's CLIP wrapper, encoding once, bad input, and the demo data."""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import yaml
from PIL import Image

from harness.core.adapter import Role
from harness.core.errors import HarnessError
from harness.engine.encoding import BatchEncoder
from harness.model_adapters.registry import load_adapter
from harness.scoring.classification import (
    CLASSIFICATION_METRICS,
    MULTILABEL_METRICS,
    kshot_samples,
)
from harness.tasks.definition import TaskDefinition
from harness.tasks.demo.classification import (
    MULTILABEL_NAMES,
    PER_CLASS,
    build_classification,
    class_scenes,
)
from harness.tasks.linear_probe import LinearProbe
from harness.tasks.multilabel import MultilabelClassification
from harness.tasks.registry import builtin_tasks, load_task_file
from tests.dataset_fixtures import (
    DEMO_DATA,
    RGB,
    decoded_rows,
    result_files,
    run_cli,
    task_file,
    write_labelled_dataset,
)

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
# Label 4 has fewer train rows than 16 shots; label 5 occurs only in the test split.
TRAIN_COUNTS = (20, 20, 18, 16, 3, 0)
TEST_COUNTS = (5, 5, 5, 5, 5, 3)


def swatch(colours: Sequence[str], seed: int, size: int = 16) -> bytes:
    """A PNG of vertical stripes, one per colour, with strong seeded noise."""
    rng = np.random.default_rng(seed)
    stripes = np.array_split(np.arange(size), len(colours))
    pixels = np.zeros((size, size, 3))
    for colour, columns in zip(colours, stripes, strict=True):
        pixels[:, columns] = RGB[colour]
    pixels += rng.normal(scale=60.0, size=pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def colour_rows(counts: Sequence[int], seed: int) -> list[tuple[bytes, int]]:
    labels = [label for label, count in enumerate(counts) for _ in range(count)]
    order = np.random.default_rng(seed).permutation(len(labels))
    return [(swatch([COLOURS[labels[i]]], seed * 1000 + i), labels[i]) for i in order]


def colour_set_rows(n: int, seed: int) -> list[tuple[bytes, list[int]]]:
    """Images of one to three colour stripes, labelled with the colours' ids (VOC2007 style)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        labels = sorted(rng.choice(len(COLOURS), size=int(rng.integers(1, 4)), replace=False))
        rows.append((swatch([COLOURS[j] for j in labels], seed * 1000 + i), labels))
    return rows


@pytest.fixture(scope="module")
def cifar_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CIFAR10's layout on the hub (mteb/cifar10): columns ``img`` and ``label``."""
    splits = {"train": colour_rows(TRAIN_COUNTS, 1), "test": colour_rows(TEST_COUNTS, 2)}
    label = datasets.ClassLabel(names=list(COLOURS))
    return write_labelled_dataset(tmp_path_factory.mktemp("cifar-like"), splits, label)


@pytest.fixture(scope="module")
def voc_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """VOC2007's layout on the hub (mteb/VOC2007): columns ``image`` and ``classes``."""
    splits = {"train": colour_set_rows(70, 3), "test": colour_set_rows(40, 4)}
    label = datasets.Sequence(datasets.ClassLabel(names=list(COLOURS)))
    root = tmp_path_factory.mktemp("voc-like")
    return write_labelled_dataset(root, splits, label, "image", "classes")


def linear_entry(name: str, data: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "linear_probe",
        "dataset": {"path": str(data), "columns": {"image": "img"}},
        "category": "i2c",
        **overrides,
    }


def multilabel_entry(name: str, data: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "multilabel_classification",
        "dataset": {"path": str(data), "columns": {"label": "classes"}},
        "category": "i2c",
        "protocol": {"max_eval_samples": None},
        **overrides,
    }


def load_entry(tmp_path: Path, entry: dict[str, Any]) -> TaskDefinition:
    path = tmp_path / f"{entry['name']}.yaml"
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    [task] = load_task_file(path)
    return task


class RecordingAdapter:
    """Wraps an adapter and records the role and size of every call."""

    def __init__(self, adapter: Any) -> None:
        self.adapter, self.meta = adapter, adapter.meta
        self.calls: list[tuple[Role, int]] = []

    def encode(
        self, items: Sequence[dict[str, Any]], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        self.calls.append((role, len(items)))
        return self.adapter.encode(items, role=role, instruction=instruction)


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir: Path) -> Any:
    return load_adapter(str(tiny_clip_dir))


def evaluate(task: TaskDefinition, adapter: Any, **kwargs: Any) -> dict[str, Any]:
    kind = LinearProbe() if task.type == "linear_probe" else MultilabelClassification()
    encoder = BatchEncoder(adapter, batch_size=256, show_progress=False)
    return kind.evaluate(task, encoder, split="test", **kwargs).subsets[0]


def test_cli_run_writes_linear_probe_and_multilabel_results(
    tiny_clip_dir: Path, cifar_like: Path, voc_like: Path, tmp_path: Path
) -> None:
    entries = [linear_entry("ColourProbe", cifar_like), multilabel_entry("ColourSets", voc_like)]
    assert run_cli(tiny_clip_dir, task_file(tmp_path / "tasks.yaml", entries), tmp_path) == 0

    from mteb.results import TaskResult

    files = result_files(tmp_path, "Colour*")
    probe = json.loads(files["ColourProbe"].read_text())
    [scores] = probe["scores"]["test"]
    assert scores["main_score"] == scores["accuracy"]
    assert len(scores["scores_per_experiment"]) == 5
    for key in CLASSIFICATION_METRICS:
        value = scores[key]
        assert value is None if key.startswith("ap") else 0.0 <= value <= 1.0, key
    protocol = probe["harness"]["task"]["protocol"]
    assert (protocol["fit_dtype"], protocol["samples_per_label"]) == ("float64", 16)

    sets = json.loads(files["ColourSets"].read_text())
    [scores] = sets["scores"]["test"]
    assert scores["main_score"] == scores["lrap"]
    assert all(math.isfinite(scores[key]) for key in MULTILABEL_METRICS)
    assert sets["harness"]["task"]["protocol"]["classifier"] == "knn"
    for path in files.values():
        assert TaskResult.from_disk(path).task_name == path.stem


def mteb_reference(
    mteb_task: str, data: Path, tiny_clip_dir: Path, max_eval_samples: int | None = None
) -> dict[str, Any]:
    """mteb's own task (its constants and columns) through mteb's CLIP wrapper."""
    mteb = pytest.importorskip("mteb")
    from mteb.models.model_implementations.clip_models import CLIPModel

    task = mteb.get_task(mteb_task)
    task.dataset = datasets.load_dataset(str(data))
    task.data_loaded = True
    if max_eval_samples is not None:
        task.max_eval_samples = max_eval_samples
    model = CLIPModel(str(tiny_clip_dir), revision=None, device="cpu")
    encode_kwargs = {"batch_size": 256, "show_progress_bar": False}
    return task.evaluate(model, "test", encode_kwargs=encode_kwargs)["default"]


def assert_agrees(mine: dict[str, Any], reference: dict[str, Any], keys: Sequence[str]) -> None:
    assert mine["accuracy"] == reference["accuracy"]
    for ours, theirs in zip(
        mine["scores_per_experiment"], reference["scores_per_experiment"], strict=True
    ):
        assert ours["accuracy"] == theirs["accuracy"]
    for key in keys:
        if reference[key] is None or np.isnan(reference[key]):
            assert mine[key] is None or np.isnan(mine[key]), key
        else:
            assert mine[key] == pytest.approx(reference[key], abs=1e-6), key


def test_linear_probe_equals_mteb_cifar10_through_its_clip_wrapper(
    cifar_like: Path, tiny_clip_dir: Path, tiny_clip: Any, tmp_path: Path
) -> None:
    reference = mteb_reference("CIFAR10", cifar_like, tiny_clip_dir)
    mine = evaluate(load_entry(tmp_path, linear_entry("Probe", cifar_like)), tiny_clip)
    assert 0.2 < mine["accuracy"] < 1.0
    assert_agrees(mine, reference, CLASSIFICATION_METRICS)


@pytest.mark.parametrize("max_eval_samples", [None, 25])
def test_multilabel_equals_mteb_voc2007_through_its_clip_wrapper(
    max_eval_samples: int | None,
    voc_like: Path,
    tiny_clip_dir: Path,
    tiny_clip: Any,
    tmp_path: Path,
) -> None:
    reference = mteb_reference("VOC2007", voc_like, tiny_clip_dir, max_eval_samples)
    entry = multilabel_entry("Sets", voc_like, protocol={"max_eval_samples": max_eval_samples})
    mine = evaluate(load_entry(tmp_path, entry), tiny_clip)
    assert 0.0 < mine["lrap"] < 1.0
    assert_agrees(mine, reference, MULTILABEL_METRICS)


def test_train_union_and_test_split_are_encoded_once_each(
    cifar_like: Path, tiny_clip: Any, tmp_path: Path
) -> None:
    task = load_entry(tmp_path, linear_entry("Probe", cifar_like))
    adapter = RecordingAdapter(tiny_clip)
    evaluate(task, adapter, limit=7)
    train_labels = datasets.load_dataset(str(cifar_like), split="train")["label"]
    samples = kshot_samples(train_labels, 16, 5)
    assert adapter.calls == [(None, len(set().union(*samples))), (None, 7)]
    assert [len(rows) for rows in samples] == [sum(min(n, 16) for n in TRAIN_COUNTS)] * 5


def test_sparse_and_unseen_labels_are_warnings_not_errors(
    cifar_like: Path, tiny_clip: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    task = load_entry(tmp_path, linear_entry("Probe", cifar_like))
    with caplog.at_level(logging.WARNING, logger="harness.tasks.linear_probe"):
        scores = evaluate(task, tiny_clip)
    assert "1 label(s) have fewer than 16 train rows (fewest: 4 with 3)" in caplog.text
    assert "1 label(s) of split test never occur in the train split (5)" in caplog.text
    assert scores["recall"] <= 5 / 6  # the unseen label's rows are always wrong


def test_excluded_train_rows_leave_the_sample(
    cifar_like: Path, tiny_clip: Any, tmp_path: Path
) -> None:
    entry = linear_entry("Probe", cifar_like, protocol={"exclude_train_rows": [0, 5]})
    adapter = RecordingAdapter(tiny_clip)
    evaluate(load_entry(tmp_path, entry), adapter)
    labels = datasets.load_dataset(str(cifar_like), split="train")["label"]
    kept = [label for row, label in enumerate(labels) if row not in (0, 5)]
    assert adapter.calls[0][1] == len(set().union(*kshot_samples(kept, 16, 5)))


def test_undecodable_train_image_is_skipped_on_request(tiny_clip: Any, tmp_path: Path) -> None:
    rows = [(swatch([COLOURS[i % 2]], i, size=8), i % 2) for i in range(8)]
    broken = [*rows[:3], (b"\x89PNG not really", 1), *rows[4:]]
    splits = {"train": broken, "test": rows}
    data = write_labelled_dataset(tmp_path / "data", splits, datasets.Value("int64"))
    task = load_entry(tmp_path, linear_entry("Broken", data))
    with pytest.raises(HarnessError, match="item '3': the image in column 'img' cannot be decoded"):
        evaluate(task, tiny_clip)
    encoder = BatchEncoder(tiny_clip, skip_bad_inputs=True, show_progress=False)
    outcome = LinearProbe().evaluate(task, encoder, split="test")
    assert outcome.skipped_inputs == ["3"]
    assert len(outcome.subsets[0]["scores_per_experiment"]) == 5


def only_split(root: Path, split: str, labels: list[Any], feature: Any, column: str) -> Path:
    rows = [(swatch(["red"], i, size=8), label) for i, label in enumerate(labels)]
    return write_labelled_dataset(root, {split: rows, "test": rows}, feature, "img", column)


@pytest.mark.parametrize(
    ("make", "entry", "message"),
    [
        (
            lambda root: only_split(root, "validation", [0, 1], datasets.Value("int64"), "label"),
            {},
            r"has no 'train' split.*protocol\.train_split",
        ),
        (
            lambda root: only_split(root, "train", [0, 0, 0], datasets.Value("int64"), "label"),
            {},
            "single label; a linear probe needs at least two labels",
        ),
        (
            lambda root: only_split(root, "train", [0, 1], datasets.Value("int64"), "label"),
            {"dataset": {"columns": {"image": "img", "label": "cls"}}},
            r"lacks the column.*cls.*dataset\.columns",
        ),
        (
            lambda root: only_split(root, "train", [0, 1], datasets.Value("int64"), "label"),
            {"protocol": {"exclude_train_rows": [2]}},
            r"exclude_train_rows names rows \[2\] outside",
        ),
        (
            lambda root: only_split(root, "train", [0, 1], datasets.Value("int64"), "label"),
            {"type": "multilabel_classification"},
            "holds single labels, not lists of labels.*linear_probe",
        ),
        (
            lambda root: only_split(
                root, "train", [[0], [1]], datasets.Sequence(datasets.Value("int64")), "label"
            ),
            {},
            "holds lists of labels.*multilabel_classification",
        ),
        (
            lambda root: only_split(
                root,
                "train",
                [[0], [1], [0, 1]],
                datasets.Sequence(datasets.Value("int64")),
                "label",
            ),
            {"type": "multilabel_classification"},
            "3 train rows, fewer than the 5 neighbours",
        ),
    ],
    ids=[
        "no-train-split",
        "one-label",
        "missing-column",
        "bad-exclusion",
        "single-labels",
        "label-lists",
        "few-rows",
    ],
)
def test_bad_input_gets_a_clear_error(
    make: Any, entry: dict[str, Any], message: str, tiny_clip: Any, tmp_path: Path
) -> None:
    data = make(tmp_path / "data")
    task_entry = linear_entry("Bad", data, **{k: v for k, v in entry.items() if k != "dataset"})
    task_entry["dataset"] = {
        "path": str(data),
        **entry.get("dataset", {"columns": {"image": "img"}}),
    }
    with pytest.raises(HarnessError, match=message) as error:
        evaluate(load_entry(tmp_path, task_entry), tiny_clip)
    assert "task Bad" in str(error.value)


@pytest.mark.parametrize(
    "protocol",
    [{"samples_per_label": 0}, {"fit_dtype": "float16"}, {"shots": 16}],
)
def test_bad_protocols_are_refused_when_the_file_loads(
    protocol: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(HarnessError, match="invalid protocol settings"):
        load_entry(tmp_path, linear_entry("Bad", tmp_path, protocol=protocol))


# --- demo ---------------------------------------------------------------------------------

DEMO_SETS = ("DemoShapesClassification", "DemoShapesMultilabelClassification")


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-classification")
    build_classification(out)
    return out


@pytest.mark.parametrize("name", DEMO_SETS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_committed_demo_data_matches_the_builder(rebuilt: Path, name: str, split: str) -> None:
    parquet = Path("data") / f"{split}-00000-of-00001.parquet"
    assert decoded_rows(DEMO_DATA / name / parquet) == decoded_rows(rebuilt / name / parquet)
    readme = (DEMO_DATA / name / "README.md").read_text(encoding="utf-8")
    assert readme == (rebuilt / name / "README.md").read_text(encoding="utf-8")
    size = sum(p.stat().st_size for p in (DEMO_DATA / name).rglob("*") if p.is_file())
    assert size < 600_000


def test_demo_classes_pair_up_over_the_same_objects() -> None:
    scenes = class_scenes()
    data = datasets.load_dataset(str(DEMO_DATA / DEMO_SETS[0]))
    assert data["train"].features["label"].names == [scene.caption for scene in scenes]
    for split, count in PER_CLASS.items():
        assert np.bincount(data[split]["label"]).tolist() == [count] * len(scenes)
    layouts = [scene.layout for scene in scenes]
    assert len(set(layouts)) == len(layouts)
    for first, second in zip(layouts[::2], layouts[1::2], strict=True):
        assert {first[0], first[1]} == {second[0], second[1]}


def test_demo_multilabel_labels_name_the_colours_and_shapes_present() -> None:
    data = datasets.load_dataset(str(DEMO_DATA / DEMO_SETS[1]), split="test")
    assert data.features["classes"].feature.names == list(MULTILABEL_NAMES)
    assert all(2 <= len(labels) <= 4 for labels in data["classes"])


def test_demo_task_definitions_point_at_the_demo_data() -> None:
    tasks = builtin_tasks()
    assert Path(tasks["DemoShapesClassification"].dataset.path) == DEMO_DATA / DEMO_SETS[0]
    multilabel = tasks["DemoShapesMultilabelClassification"]
    assert Path(multilabel.dataset.path) == DEMO_DATA / DEMO_SETS[1]
    assert multilabel.main_score == "lrap"
