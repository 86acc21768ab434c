"""Loading apart from scoring: canonical loaded splits, one load per shared dataset, and the
inputs ``--dry-run`` counts on local datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest

from harness.app.plan import plan
from harness.engine.encoding import BatchEncoder
from harness.tasks import datasets_memo, loading
from harness.tasks.definition import TaskDefinition
from harness.tasks.registry import task_type
from tests.dataset_fixtures import RGB, colour_retrieval, png_bytes, write_labelled_dataset
from tests.test_zero_shot import ContentAdapter

NAMES = ["red", "green", "blue"]


@pytest.fixture(autouse=True)
def fresh_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no dataset loaded."""
    monkeypatch.setattr(datasets_memo, "_MEMO", {})


def swatches(root: Path, n: int = 12) -> Path:
    """Train and test splits of colour swatches labelled with their colour."""
    rows = [(png_bytes(RGB[NAMES[i % 3]], size=8, seed=i), i % 3) for i in range(n)]
    labels = datasets.ClassLabel(names=NAMES)
    return write_labelled_dataset(root, {"train": rows, "test": rows}, labels)


def task(name: str, kind: str, data: Path, category: str, **extra: Any) -> TaskDefinition:
    dataset = {"path": str(data), "columns": {"image": "img"} if category[0] == "i" else {}}
    return TaskDefinition(name=name, type=kind, category=category, dataset=dataset, **extra)


def shared_tasks(data: Path) -> list[TaskDefinition]:
    """CIFAR10's three tasks on one dataset: linear probe, zero-shot and clustering."""
    return [
        task("Probe", "linear_probe", data, "i2c", protocol={"samples_per_label": 2}),
        task("ZeroShot", "zero_shot_classification", data, "i2t"),
        task("Clusters", "clustering", data, "i2c"),
    ]


def test_tasks_that_share_a_dataset_load_each_split_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = swatches(tmp_path / "swatches")
    loads = []
    real = loading._load_part

    def counted(task: TaskDefinition, part: str, config: str, split: str) -> datasets.Dataset:
        loads.append(split)
        return real(task, part, config, split)

    monkeypatch.setattr(loading, "_load_part", counted)
    for entry in shared_tasks(data):
        task_type(entry).load(entry, "test")
    assert sorted(loads) == ["test", "train"]


def test_an_edited_local_dataset_is_loaded_afresh(tmp_path: Path) -> None:
    clusters = shared_tasks(swatches(tmp_path / "swatches"))[2]
    assert task_type(clusters).load(clusters, "test").input_counts() == {"items": 12}
    swatches(tmp_path / "swatches", n=9)
    assert task_type(clusters).load(clusters, "test").input_counts() == {"items": 9}


@pytest.mark.parametrize("index", [0, 1, 2], ids=["linear_probe", "zero_shot", "clustering"])
def test_scoring_reads_the_loaded_split_only(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``score`` works on what ``load`` returned: it reads no dataset, whatever the layout."""
    entry = shared_tasks(swatches(tmp_path / "swatches"))[index]
    kind = task_type(entry)
    encoder = BatchEncoder(ContentAdapter(), batch_size=8, show_progress=False)
    expected = kind.evaluate(entry, encoder, split="test", limit=6).subsets
    loaded = kind.load(entry, "test", limit=6)

    def no_reading(*args: Any) -> None:
        raise AssertionError("score read the dataset")

    monkeypatch.setattr(loading, "memoised", no_reading)
    scored = kind.score(entry, loaded, encoder).subsets
    assert json.dumps(scored) == json.dumps(expected)  # NaN (no ``ap``) equals itself here


def test_loaded_splits_count_their_inputs(tmp_path: Path) -> None:
    data = swatches(tmp_path / "swatches")
    probe, zero_shot, _ = shared_tasks(data)
    # Two rows per label are sampled for each of the 5 experiments (each row encoded once).
    counts = task_type(probe).load(probe, "test").input_counts()
    assert counts["test"] == 12 and 6 <= counts["train"] <= 12
    assert task_type(zero_shot).load(zero_shot, "test", 5).input_counts() == {
        "items": 5,
        "prompts": 3,
    }
    retrieval = task("Colours", "retrieval", colour_retrieval(tmp_path / "c", n=5), "t2i")
    assert task_type(retrieval).load(retrieval, "test").input_counts() == {
        "queries": 5,
        "corpus": 5,
    }


def test_the_dry_run_counts_inputs_on_local_datasets(tmp_path: Path) -> None:
    """A local dataset's inputs come from its loaded splits, not the declared ``n_samples``."""
    local = task("Colours", "retrieval", colour_retrieval(tmp_path / "c", n=5), "t2i")
    local = local.model_copy(update={"n_samples": {"test": 999}})
    hub = TaskDefinition(
        name="Hub",
        type="retrieval",
        category="t2i",
        dataset={"path": "org/colours", "revision": "abc"},
        n_samples={"test": 7},
    )
    planned = plan([local, hub])
    assert [t.inputs for t in planned.tasks] == [
        {"test": {"queries": 5, "corpus": 5}},
        {"test": {"rows": 7}},
    ]
    assert planned.total_rows() == 17
    report = planned.report()
    assert "test: queries=5, corpus=5" in report and "test=7" in report


def test_the_dry_run_says_why_a_local_dataset_has_no_count(tmp_path: Path) -> None:
    data = colour_retrieval(tmp_path / "c", n=5)
    broken = task("Colours", "retrieval", data, "t2i", eval_splits=["validation"])
    [planned] = plan([broken]).tasks
    assert planned.inputs is None
    assert "has no split 'validation'" in planned.why
    assert "Sizes unknown for: Colours (" in plan([broken]).report()
