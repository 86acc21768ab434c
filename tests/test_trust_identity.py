"""Issue 13, item 1: a result is reused only when it is the same result (run identity), result
files never collide, a missing split is an error, and the summary's main score is mteb's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mteb.results import TaskResult

from harness.app.runner import RunSettings, run
from harness.engine.identity import identity_differences, identity_digest, run_identity
from harness.engine.main_score import task_score
from tests.dataset_fixtures import (
    colour_retrieval,
    read_result_json,
    result_files,
    retrieval_task_yaml,
    run_cli,
)

TASK = "ColourTask"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two colour datasets: eight colours, and five (other content, so another hash)."""
    root = tmp_path_factory.mktemp("identity-data")
    return {"eight": colour_retrieval(root / "eight"), "five": colour_retrieval(root / "five", n=5)}


def no_traceback(captured: pytest.CaptureResult[str]) -> str:
    """stdout and stderr together, after checking that neither holds a traceback."""
    assert "Traceback" not in captured.err + captured.out
    return captured.out + captured.err


def task_files(workdir: Path) -> dict[str, Path]:
    """The task result files a run wrote (``model_meta.json`` left out), by task name."""
    return {name: path for name, path in result_files(workdir).items() if name != "model_meta"}


def scores(workdir: Path, task: str = TASK) -> dict[str, Any]:
    return read_result_json(workdir, task)["scores"]


def stale_case(case: str, data: dict[str, Path], tmp_path: Path) -> tuple[list[str], list[str]]:
    """The first and the second run's --tasks value and options, for each kind of change."""
    task = str(retrieval_task_yaml(tmp_path / "task.yaml", TASK, data["eight"]))
    if case == "limit":
        return [task, "--limit", "3"], [task]
    if case == "dtype":
        return [task, "--dtype", "bfloat16"], [task]
    if case == "data-dir":
        return [task], [task, "--data-dir", f"{TASK}={data['five']}"]
    if case == "changed-yaml":
        changed = retrieval_task_yaml(
            tmp_path / "changed.yaml", TASK, data["eight"], main_score="recall_at_1"
        )
        return [task], [str(changed)]
    assert case == "shadowed-builtin"
    shadow = retrieval_task_yaml(tmp_path / "shadow.yaml", "DemoShapesT2IRetrieval", data["five"])
    return [str(shadow), "--limit", "4"], ["DemoShapesT2IRetrieval", "--limit", "4"]


@pytest.mark.parametrize(
    ("case", "difference"),
    [
        ("limit", "limit: 3 -> null"),
        ("dtype", "model_fingerprint: "),
        ("data-dir", "dataset_revision: local-"),
        ("changed-yaml", "task.main_score: ndcg_at_10 -> recall_at_1"),
        ("shadowed-builtin", "dataset_revision: local-"),
    ],
)
def test_a_result_of_another_identity_is_recomputed_as_a_fresh_run_would(
    case: str,
    difference: str,
    data: dict[str, Path],
    tiny_clip_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = stale_case(case, data, tmp_path)
    work, fresh = tmp_path / "work", tmp_path / "fresh"
    assert run_cli(tiny_clip_dir, first[0], work, *first[1:]) == 0
    capsys.readouterr()
    assert run_cli(tiny_clip_dir, second[0], work, *second[1:]) == 0
    output = no_traceback(capsys.readouterr())
    assert f"recomputed ({difference}" in output
    assert "exists" not in output
    assert run_cli(tiny_clip_dir, second[0], fresh, *second[1:]) == 0
    [name] = task_files(fresh)
    assert scores(work, name) == scores(fresh, name)
    stored = read_result_json(work, name)["harness"]["identity"]
    assert stored == read_result_json(fresh, name)["harness"]["identity"]


def test_a_result_of_the_same_identity_is_skipped_untouched(
    data: dict[str, Path], tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Device, batch size, workers and folders are not part of the identity (see
    ``harness.engine.identity``): changing the batch size reuses the result."""
    task = retrieval_task_yaml(tmp_path / "task.yaml", TASK, data["eight"])
    assert run_cli(tiny_clip_dir, task, tmp_path, "--limit", "5") == 0
    [path] = task_files(tmp_path).values()
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    capsys.readouterr()
    assert run_cli(tiny_clip_dir, task, tmp_path, "--limit", "5", "--batch-size", "2") == 0
    output = no_traceback(capsys.readouterr())
    assert "exists" in output and "recomputed" not in output
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("no-identity", "the stored file records no run identity"),
        ("unreadable", "the stored file is unreadable"),
    ],
)
def test_an_older_or_unreadable_result_is_recomputed_with_a_note(
    damage: str,
    reason: str,
    data: dict[str, Path],
    tiny_clip_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    task = retrieval_task_yaml(tmp_path / "task.yaml", TASK, data["eight"])
    assert run_cli(tiny_clip_dir, task, tmp_path, "--limit", "5") == 0
    [path] = task_files(tmp_path).values()
    original = json.loads(path.read_text())
    if damage == "no-identity":
        del original["harness"]["identity"]
        path.write_text(json.dumps(original))
    else:
        path.write_text('{"task_name": ')
    capsys.readouterr()
    assert run_cli(tiny_clip_dir, task, tmp_path, "--limit", "5") == 0
    assert f"recomputed ({reason})" in no_traceback(capsys.readouterr())
    assert scores(tmp_path) == original["scores"]


@pytest.mark.parametrize(
    "names",
    [("Foo Bar", "Foo_Bar"), ("!", "?"), ("Colours", "colours")],
    ids=["space-underscore", "sanitised-to-underscore", "case"],
)
def test_tasks_sharing_a_result_file_are_refused_before_any_work(
    names: tuple[str, str],
    data: dict[str, Path],
    tiny_clip_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = [
        retrieval_task_yaml(tmp_path / f"task{n}.yaml", name, data["eight"])
        for n, name in enumerate(names)
    ]
    code = run_cli(tiny_clip_dir, ",".join(map(str, files)), tmp_path)
    error = no_traceback(capsys.readouterr())
    assert code == 2
    assert f"tasks {names[0]!r} and {names[1]!r} would write the same result file" in error
    assert "Rename one of them" in error
    assert not (tmp_path / "out").exists()


def test_a_name_too_long_for_a_file_is_refused_before_any_work(
    data: dict[str, Path], tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = retrieval_task_yaml(tmp_path / "long.yaml", "T" * 300, data["eight"])
    code = run_cli(tiny_clip_dir, task, tmp_path)
    error = no_traceback(capsys.readouterr())
    assert code == 2
    assert "305 bytes, over the 255 a file system allows" in error
    assert "shorter name" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("card", "stored_split", "eval_split"),
    [(True, "train", "test"), (False, "test", "validation"), (False, "en", "test")],
    ids=["dataset-card-one-other-split", "plain-folders", "plain-folders-hub-shard-names"],
)
def test_an_eval_split_the_dataset_lacks_is_an_error_naming_the_splits_it_has(
    card: bool,
    stored_split: str,
    eval_split: str,
    tiny_clip_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Never another split's scores under its name (a lone split was once used silently)."""
    folder = colour_retrieval(tmp_path / "data", split=stored_split, card=card)
    task = retrieval_task_yaml(tmp_path / "t.yaml", TASK, folder, eval_splits=[eval_split])
    code = run_cli(tiny_clip_dir, task, tmp_path)
    output = no_traceback(capsys.readouterr())
    assert code == 2
    assert f"task {TASK}: dataset {folder} has no split {eval_split!r}" in output
    assert f"(it has {stored_split})" in output
    assert "dataset.splits" in output
    assert not task_files(tmp_path)


def test_summary_main_score_of_several_subsets_is_mtebs_and_the_leaderboards(
    tiny_clip_dir: Path, tmp_path: Path
) -> None:
    """Language splits scored as subsets (``split_subsets``): no ``default`` entry, so the
    task's score is the mean over its subsets, in the summary as in mteb and the leaderboard."""
    folder = colour_retrieval(tmp_path / "data", n=8, split="en", card=False)
    colour_retrieval(folder, n=6, split="de", card=False)
    protocol = {"split_subsets": {"en": ["eng-Latn"], "de": ["deu-Latn"]}}
    task = retrieval_task_yaml(tmp_path / "t.yaml", TASK, folder, protocol=protocol)
    settings = RunSettings(
        output=tmp_path / "out", cache_dir=None, num_workers=0, show_progress=False
    )
    for status in ("done", "exists"):
        report = run(str(tiny_clip_dir), [str(task)], settings)
        [outcome] = report.outcomes
        assert outcome.status == status
        stored = json.loads(outcome.path.read_text())
        subsets = [entry["main_score"] for entry in stored["scores"]["test"]]
        assert len(subsets) == 2 and subsets[0] != subsets[1]
        assert outcome.main_score == pytest.approx(TaskResult.from_disk(outcome.path).get_score())
        assert outcome.main_score == pytest.approx(task_score(stored["scores"], ["test"]))


def identity(**changes: Any) -> dict[str, Any]:
    """A run identity of a small retrieval task, with ``changes`` to its arguments."""
    arguments: dict[str, Any] = {
        "task": {
            "name": TASK,
            "type": "retrieval",
            "description": "colours",
            "dataset": {"path": "/data/a", "revision": None, "configs": {}},
            "eval_splits": ["test"],
            "protocol": {"k_values": [1, 10]},
            "main_score": "ndcg_at_10",
        },
        "dataset_revision": "local-abc",
        "local_dataset": True,
        "model": {"fingerprint": "f" * 32, "similarity": "cosine", "name": "m"},
        "limit": None,
        "skip_bad_inputs": False,
    }
    return run_identity(**{**arguments, **changes})


def test_identity_leaves_out_prose_and_where_a_local_dataset_sits() -> None:
    base = identity()
    moved = identity(
        task={
            **base["task"],
            "eval_splits": ["test"],
            "description": "other words",
            "dataset": {"path": "/elsewhere", "revision": None, "configs": {}},
        }
    )
    assert moved["digest"] == base["digest"]
    assert identity_differences(base, moved) == []


def test_identity_differences_name_each_changed_field() -> None:
    base = identity()
    task = {**base["task"], "eval_splits": ["dev"], "protocol": {"k_values": [1, 5]}}
    changed = identity(task=task, limit=20)
    assert changed["digest"] != base["digest"]
    assert identity_differences(base, changed) == [
        'eval_splits: ["test"] -> ["dev"]',
        "limit: null -> 20",
        "task.protocol.k_values: [1, 10] -> [1, 5]",
    ]
    assert identity_digest(dict(reversed(base.items()))) == base["digest"]
    forged = {**base, "limit": 20}  # a field edited by hand, its digest left as it was
    assert identity_differences(forged, base) == ["limit: 20 -> null"]
    assert identity_differences({**base, "digest": "0" * 32}, base) == [
        "digest: the stored digest does not match its own fields"
    ]
