"""The leaderboard reads mteb's own result files beside harness results, as external rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.engine.mteb_files import MtebResult
from harness.leaderboard.collect import Collection, ModelKey, collect
from tests.leaderboard_fixtures import result_payload, write_payload
from tests.mteb_fixtures import MTEB_FIXTURES, write_mteb_result

MTEB_1_12 = MTEB_FIXTURES / "mteb-1.12"
CIFAR, FLICKR, STS = "CIFAR10ZeroShot", "Flickr30kT2IRetrieval", "STS17MultilingualVisualSTS"


def _ours(root: Path, model: str, task: str, score: float) -> Path:
    return write_payload(root, model, result_payload(model, task, score))


def _reasons(collection: Collection, path: Path) -> str:
    return " | ".join(s.reason for s in collection.skipped if s.path == path)


def test_harness_and_mteb_files_of_the_same_tasks_are_both_ranked(tmp_path: Path) -> None:
    """External rows are flagged, keyed apart from a harness row of the same model revision,
    and scored by the same rule: the main score over the eval splits, subsets averaged."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    _ours(ours, "org/m", CIFAR, 0.75)
    _ours(ours, "org/m", FLICKR, 0.5)
    write_mteb_result(theirs, "org/m", "r1", CIFAR, {"test": 0.7321})
    sts = [
        {"cosine_spearman": s, "main_score": s, "hf_subset": n, "languages": ["eng-Latn"]}
        for n, s in [("en-en", 0.7), ("ko-ko", 0.2)]
    ]
    # mteb files often hold more splits than the task evaluates: only the eval splits count.
    write_mteb_result(theirs, "org/m", "r1", STS, {"test": sts, "train": 0.99})
    collection = collect([ours, theirs])
    assert collection.skipped == []
    table = collection.table()
    assert table == {
        ModelKey("org/m", "r1"): {CIFAR: 0.75, FLICKR: 0.5},
        ModelKey("org/m", "r1", external=True): {CIFAR: 0.7321, STS: pytest.approx(0.45)},
    }
    external = [entry for entry in collection.entries if entry.external]
    assert {entry.task for entry in external} == {CIFAR, STS}
    for entry in external:
        assert isinstance(entry.result, MtebResult)
        assert entry.interval("test") is None and entry.units("test") is None
        assert entry.model_meta.fingerprint is None
        assert entry.model_meta.modalities == ["image", "text"]
    [harness_cifar] = [e for e in collection.entries if not e.external and e.task == CIFAR]
    assert harness_cifar.units("test") is not None and harness_cifar.interval("test") is None
    assert collection.task_types() == {
        CIFAR: "zero_shot_classification",
        FLICKR: "retrieval",
        STS: "visual_sts",
    }


def test_mteb_1_x_files_give_a_row_per_model_revision() -> None:
    """Files written by mteb 1.12: two revisions of one model, and one with no model_meta.json."""
    collection = collect([MTEB_1_12])
    assert collection.skipped == []
    assert collection.table() == {
        ModelKey("fixture-org/clip-like", "rev-a", True): {
            CIFAR: 0.8123,
            FLICKR: 0.58642,
            STS: pytest.approx((0.6931 + 0.2987) / 2),
        },
        ModelKey("fixture-org/clip-like", "rev-b", True): {CIFAR: 0.8401},
        ModelKey("fixture-org/no-meta", "no_revision_available", True): {CIFAR: 0.6555},
    }
    sizes = {e.key: e.model_meta.n_parameters for e in collection.entries}
    assert sizes[ModelKey("fixture-org/clip-like", "rev-a", True)] == 151_277_313
    assert sizes[ModelKey("fixture-org/no-meta", "no_revision_available", True)] is None


def test_an_mteb_file_that_cannot_be_ranked_is_skipped_with_why(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    revision = write_mteb_result(theirs, "org/a", "r1", CIFAR, {"test": 0.5}, dataset_revision="x1")
    custom = write_mteb_result(theirs, "org/b", "r1", CIFAR, {"test": 0.5})
    payload = json.loads(custom.read_text())
    payload["task_name"] = "NotInTheCatalog"
    custom.write_text(json.dumps(payload))
    forged = write_mteb_result(
        theirs,
        "org/c",
        "r1",
        CIFAR,
        {"test": [{"accuracy": 0.4, "main_score": 0.9, "hf_subset": "default", "languages": []}]},
    )
    outside = write_mteb_result(tmp_path / "outside", "org/d", "r1", CIFAR, {"test": 0.5})
    missing = write_mteb_result(theirs, "org/e", "r1", CIFAR, {"validation": 0.5})
    high = write_mteb_result(theirs, "org/f", "r1", CIFAR, {"test": 1.5})
    linked = theirs / "org__d" / "r1" / f"{CIFAR}.json"
    linked.parent.mkdir(parents=True)
    linked.symlink_to(outside)
    collection = collect([theirs])
    assert collection.entries == []
    assert "dataset revision 'x1' does not match task CIFAR10ZeroShot's" in _reasons(
        collection, revision
    )
    assert "'NotInTheCatalog' is not a built-in task" in _reasons(collection, custom)
    assert "main score 0.9 is not the value of the metric it names, accuracy" in _reasons(
        collection, forged
    )
    assert "eval split(s) test missing" in _reasons(collection, missing)
    assert "outside [0, 1]" in _reasons(collection, high)
    assert "symbolic link" in _reasons(collection, linked)
    for path in (revision, custom, forged, missing, high):
        assert _reasons(collection, path).startswith("an mteb result file (mteb 2.x TaskResult)")


def test_duplicate_mteb_files_are_skipped(tmp_path: Path) -> None:
    """The same model revision and task twice: a same-score copy is dropped, different
    scores drop both (neither can be preferred)."""
    first = write_mteb_result(tmp_path / "a", "org/m", "r1", CIFAR, {"test": 0.5})
    copy = tmp_path / "b" / first.relative_to(tmp_path / "a")
    copy.parent.mkdir(parents=True)
    shutil.copy(first, copy)
    collection = collect([tmp_path / "a", tmp_path / "b"])
    assert [entry.path for entry in collection.entries] == [first]
    assert "appears twice (with the same scores" in _reasons(collection, copy)
    other = write_mteb_result(tmp_path / "c", "org/m", "r1", CIFAR, {"test": 0.6})
    collection = collect([tmp_path / "a", tmp_path / "c"])
    assert collection.entries == []
    assert "appears twice (with other scores" in _reasons(collection, other)
    assert "appears twice (with other scores" in _reasons(collection, first)


def test_a_bad_mteb_file_is_skipped_not_fatal(tmp_path: Path) -> None:
    good = write_mteb_result(tmp_path, "org/m", "r1", CIFAR, {"test": 0.5})
    bad = good.parent / f"{FLICKR}.json"
    bad.write_text(json.dumps({"task_name": FLICKR, "scores": {"test": [{"main_score": 0.5}]}}))
    collection = collect([tmp_path])
    assert [entry.task for entry in collection.entries] == [CIFAR]
    assert "lacks mteb's `hf_subset`" in _reasons(collection, bad)
