"""`harness submit`: valid results are filed under the canonical layout, never silently replaced."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.app.cli import main
from harness.app.submission import InvalidSubmission, submit
from harness.core.errors import HarnessError
from harness.engine.results import read_result
from harness.tasks.loading import dataset_revision
from harness.tasks.registry import builtin_tasks, task_record
from tests.dataset_fixtures import run_cli

TASK = "DemoShapesT2IRetrieval"


@pytest.fixture(scope="module")
def clean_results(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Path:
    """The results folder of a real `harness run` of the tiny CLIP on a built-in demo task."""
    workdir = tmp_path_factory.mktemp("run")
    assert run_cli(tiny_clip_dir, TASK, workdir) == 0
    return workdir / "out"


def task_file(folder: Path) -> Path:
    [path] = folder.rglob(f"{TASK}.json")
    return path


def changed_copy(clean: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], Any]) -> Path:
    """A copy of the clean results whose task file was changed by ``edit``."""
    folder = tmp_path / "changed"
    shutil.copytree(clean, folder)
    payload = json.loads(task_file(folder).read_text())
    edit(payload)
    task_file(folder).write_text(json.dumps(payload))
    return folder


def slower(payload: dict[str, Any]) -> None:
    """Another timing: a valid result with other content and the same scores."""
    payload["evaluation_time"] = 123.0


def out_of_range(payload: dict[str, Any]) -> None:
    payload["scores"]["test"][0]["main_score"] = 7.0


def test_files_under_the_canonical_layout(clean_results: Path, tmp_path: Path) -> None:
    filed = submit(clean_results, tmp_path / "tree")
    result = read_result(task_file(clean_results))
    name, revision = str(result.harness.model.name), str(result.harness.model.revision)
    folder = tmp_path / "tree" / name.replace("/", "__") / revision
    assert sorted((e.path, e.status) for e in filed) == [
        (folder / f"{TASK}.json", "added"),
        (folder / "model_meta.json", "added"),
    ]
    assert read_result(folder / f"{TASK}.json") == result
    assert json.loads((folder / "model_meta.json").read_text()) == json.loads(
        next(clean_results.rglob("model_meta.json")).read_text()
    )


def test_resubmitting_the_same_results_changes_nothing(
    clean_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    submit(clean_results, tmp_path / "tree")
    assert main(["submit", str(clean_results), "--to", str(tmp_path / "tree")]) == 0
    assert capsys.readouterr().out.count("unchanged") == 2


def test_different_results_are_not_replaced_without_overwrite(
    clean_results: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    submit(clean_results, tree)
    before = task_file(tree).read_bytes()
    changed = changed_copy(clean_results, tmp_path, slower)
    with pytest.raises(HarnessError, match="already exists with different content"):
        submit(changed, tree)
    assert task_file(tree).read_bytes() == before
    statuses = {e.path.name: e.status for e in submit(changed, tree, overwrite=True)}
    assert statuses == {f"{TASK}.json": "replaced", "model_meta.json": "unchanged"}
    assert read_result(task_file(tree)).evaluation_time == 123.0


def test_invalid_submission_is_refused_with_its_problems(
    clean_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = changed_copy(clean_results, tmp_path, out_of_range)
    with pytest.raises(InvalidSubmission, match="outside"):
        submit(changed, tmp_path / "tree")
    assert main(["submit", str(changed), "--to", str(tmp_path / "tree")]) == 1
    err = capsys.readouterr().err
    assert "submission refused, 1 problem(s)" in err
    assert f"{TASK}.json: split 'test'" in err
    assert not (tmp_path / "tree").exists()


def test_two_different_copies_of_one_task_are_refused(clean_results: Path, tmp_path: Path) -> None:
    changed = changed_copy(clean_results, tmp_path, slower)
    both = tmp_path / "both"
    shutil.copytree(clean_results, both / "a")
    shutil.copytree(changed, both / "b")
    with pytest.raises(InvalidSubmission, match="appears twice"):
        submit(both, tmp_path / "tree")


def test_differing_model_meta_for_one_model_is_refused(clean_results: Path, tmp_path: Path) -> None:
    other = "DemoShapesI2TRetrieval"
    folder = tmp_path / "two"
    shutil.copytree(clean_results, folder / "a")
    shutil.copytree(clean_results, folder / "b")
    payload = json.loads(task_file(folder / "b").read_text())
    definition = builtin_tasks()[other]
    payload.update(task_name=other, dataset_revision=dataset_revision(definition))
    payload["harness"]["task"] = task_record(definition)
    task_file(folder / "b").write_text(json.dumps(payload))
    task_file(folder / "b").rename(task_file(folder / "b").with_name(f"{other}.json"))
    [meta] = (folder / "b").rglob("model_meta.json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "n_parameters": 1}))
    with pytest.raises(HarnessError, match=r"would both be filed as .*model_meta\.json"):
        submit(folder, tmp_path / "tree")
    assert not (tmp_path / "tree").exists()
