"""`harness validate`: real results pass; each kind of bad submission is named with a fix."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.app.check import load_side
from harness.app.cli import main
from harness.app.submission import submit
from harness.core.errors import HarnessError
from harness.engine import results
from harness.engine.results import MAX_JSON_BYTES, MAX_JSON_DEPTH, SITE_MARKER, read_result
from harness.engine.validation import metric_range, validate
from harness.leaderboard.collect import collect
from tests.dataset_fixtures import run_cli

TASK = "DemoShapesT2IRetrieval"
Payload = dict[str, Any]


@pytest.fixture(scope="module")
def clean_results(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Path:
    """The results folder of a real `harness run` of the tiny CLIP on a built-in demo task."""
    workdir = tmp_path_factory.mktemp("run")
    assert run_cli(tiny_clip_dir, TASK, workdir) == 0
    return workdir / "out"


def submission(clean: Path, tmp_path: Path, edit: Callable[[Payload], Any] | None = None) -> Path:
    """A copy of the clean results whose task file was changed by ``edit``."""
    folder = tmp_path / "submission"
    shutil.copytree(clean, folder)
    if edit is not None:
        [path] = folder.rglob(f"{TASK}.json")
        payload = json.loads(path.read_text())
        edit(payload)
        path.write_text(json.dumps(payload))
    return folder


def only_problem(folder: Path, check: str) -> str:
    """The message of the single problem found, which must be of kind ``check``."""
    problems = validate(folder).problems
    assert [problem.check for problem in problems] == [check], problems
    assert problems[0].fix
    return problems[0].message


def test_a_real_run_is_valid(clean_results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(clean_results).ok
    assert main(["validate", str(clean_results)]) == 0
    assert "1 result file(s)" in capsys.readouterr().out


def test_hidden_files_are_skipped_but_a_hidden_parent_is_not(
    clean_results: Path, tmp_path: Path
) -> None:
    folder = submission(clean_results, tmp_path / ".hidden-parent")
    (folder / ".partial").mkdir()
    (folder / ".partial" / "junk.json").write_text("{")
    validation = validate(folder)
    assert validation.ok
    assert [path.name for path, _ in validation.results] == [f"{TASK}.json"]


def set_main_score(value: Any) -> Callable[[Payload], None]:
    def edit(payload: Payload) -> None:
        payload["scores"]["test"][0]["main_score"] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "check", "expected"),
    [
        (lambda p: p.pop("scores"), "schema", "scores: Field required"),
        (lambda p: p.update(evaluation_time="slow"), "schema", "evaluation_time"),
        (lambda p: p["scores"]["test"][0].pop("hf_subset"), "schema", "hf_subset"),
        (lambda p: p.update(task_name="DemoShapesT2IRetrieva"), "task", f"Did you mean: {TASK}"),
        (lambda p: p.update(dataset_revision="local-0123456789ab"), "revision", "local-0123"),
        (lambda p: p.update(scores={"dev": p["scores"]["test"]}), "splits", "test missing"),
        (set_main_score(None), "main_score", "None, not a finite number"),
        (set_main_score("0.9"), "main_score", "not a finite number"),
        (set_main_score(1.5), "main_score", "ndcg_at_10 = 1.5 is outside [0, 1]"),
        (set_main_score(-0.2), "main_score", "outside [0, 1]"),
        (lambda p: p.pop("harness"), "mteb", "an mteb result file (mteb 2.x TaskResult"),
        (lambda p: p["harness"].update(harness_version=" "), "provenance", "version is empty"),
        (lambda p: p["harness"]["model"].pop("fingerprint"), "provenance", "lacks fingerprint"),
    ],
    ids=[
        "no-scores",
        "wrong-type",
        "no-hf-subset",
        "unknown-task",
        "revision",
        "missing-split",
        "null-score",
        "string-score",
        "score-above-range",
        "score-below-range",
        "no-harness-block",
        "no-harness-version",
        "no-fingerprint",
    ],
)
def test_each_bad_result_file_is_named(
    clean_results: Path,
    tmp_path: Path,
    edit: Callable[[Payload], Any],
    check: str,
    expected: str,
) -> None:
    assert expected in only_problem(submission(clean_results, tmp_path, edit), check)


def test_a_model_name_that_is_not_a_string_is_a_problem(
    clean_results: Path, tmp_path: Path
) -> None:
    """The harness block's parts are typed: a wrong type is a schema problem naming the field."""
    folder = submission(clean_results, tmp_path, lambda p: p["harness"]["model"].update(name=[1]))
    assert "harness.model.name: Input should be a valid string" in only_problem(folder, "schema")


def test_bare_nan_is_refused_as_invalid_json(clean_results: Path, tmp_path: Path) -> None:
    folder = submission(clean_results, tmp_path)
    [path] = folder.rglob(f"{TASK}.json")
    path.write_text(path.read_text().replace('"main_score": ', '"main_score": NaN, "x": ', 1))
    assert "bare NaN is not valid JSON" in only_problem(folder, "json")


def test_missing_model_meta(clean_results: Path, tmp_path: Path) -> None:
    folder = submission(clean_results, tmp_path)
    [meta] = folder.rglob("model_meta.json")
    meta.unlink()
    assert "model_meta.json is missing" in only_problem(folder, "model_meta")


def test_model_meta_of_another_model(clean_results: Path, tmp_path: Path) -> None:
    folder = submission(clean_results, tmp_path)
    [meta] = folder.rglob("model_meta.json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "name": "someone/else"}))
    assert "model_meta.json names 'someone/else'" in only_problem(folder, "model_meta")


def test_model_meta_without_fingerprint(clean_results: Path, tmp_path: Path) -> None:
    folder = submission(clean_results, tmp_path)
    [meta] = folder.rglob("model_meta.json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "harness": {}}))
    assert "harness.fingerprint" in only_problem(folder, "model_meta")


def test_a_task_twice(clean_results: Path, tmp_path: Path) -> None:
    folder = submission(clean_results, tmp_path)
    [path] = folder.rglob(f"{TASK}.json")
    shutil.copy(path, path.with_name("copy.json"))
    assert f"task {TASK} for" in only_problem(folder, "duplicate")


def test_huge_file_is_refused_before_parsing(clean_results: Path, tmp_path: Path) -> None:
    folder = submission(clean_results, tmp_path)
    [path] = folder.rglob(f"{TASK}.json")
    path.write_text(json.dumps({"padding": "x" * MAX_JSON_BYTES}))
    with pytest.raises(HarnessError, match=r"over the 20 MB limit") as refused:
        read_result(path)
    assert str(path) in str(refused.value)
    assert "20 MB limit" in only_problem(folder, "json")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 200_000])
def test_deeply_nested_file_is_refused(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "]" * depth)
    with pytest.raises(HarnessError, match=f"nested more than {MAX_JSON_DEPTH} levels") as refused:
        read_result(path)
    assert str(path) in str(refused.value)


def test_brackets_inside_strings_do_not_count_as_nesting(
    clean_results: Path, tmp_path: Path
) -> None:
    brackets = '"' + "[{" * (MAX_JSON_DEPTH + 1)  # the quote is escaped in the file
    folder = submission(clean_results, tmp_path, lambda p: p.update(mteb_version=brackets))
    [path] = folder.rglob(f"{TASK}.json")
    assert read_result(path).mteb_version == brackets
    assert validate(folder).ok


def test_cli_prints_file_and_fix_and_exits_1(
    clean_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = submission(clean_results, tmp_path, set_main_score(None))
    assert main(["validate", str(folder)]) == 1
    out = capsys.readouterr().out
    assert f"{TASK}.json: split 'test'" in out
    [path] = folder.rglob(f"{TASK}.json")
    model = read_result(path).harness.model.name
    assert f"fix: re-run the task, `harness run --model {model} --tasks {TASK} --overwrite`" in out


def test_cli_missing_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("ndcg_at_10", (0.0, 1.0)),
        ("accuracy", (0.0, 1.0)),
        ("cosine_spearman", (-1.0, 1.0)),
        ("euclidean_pearson", (-1.0, 1.0)),
        ("ari", (-1.0, 1.0)),
    ],
)
def test_metric_ranges(metric: str, expected: tuple[float, float]) -> None:
    assert metric_range(metric) == expected


def test_a_leaderboard_site_inside_the_results_is_not_validated(
    clean_results: Path, tmp_path: Path
) -> None:
    folder = submission(clean_results, tmp_path)
    assert main(["leaderboard", "--results", str(folder), "--out", str(folder / "site")]) == 0
    assert list((folder / "site").rglob("*.json"))  # the site carries copies of the raw JSON
    assert validate(folder).ok


def test_validate_check_submit_and_the_leaderboard_read_the_same_files(
    clean_results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One scan for every command: linked files and folders are refused unread, a built site
    and hidden entries are passed over, and a stray JSON is read (and refused as no result)."""
    folder = submission(clean_results, tmp_path)
    [task_file] = folder.rglob(f"{TASK}.json")
    outside = tmp_path / "outside"
    shutil.copytree(clean_results, outside)
    [outside_file] = outside.rglob(f"{TASK}.json")
    (task_file.parent / "Linked.json").symlink_to(outside_file)
    (folder / "linked-folder").symlink_to(outside, target_is_directory=True)
    shutil.copytree(clean_results, folder / "site" / "raw")
    (folder / "site" / SITE_MARKER).touch()
    stray = task_file.parent / "notes.json"
    stray.write_text('{"note": 1}')
    (folder / ".partial").mkdir()
    (folder / ".partial" / "x.json").write_text("{")

    read: list[Path] = []
    original = results.read_json

    def spy(path: Path, **options: Any) -> Any:
        read.append(path)
        return original(path, **options)

    monkeypatch.setattr(results, "read_json", spy)

    def files_read(command: Callable[[], object]) -> set[Path]:
        read.clear()
        with contextlib.suppress(HarnessError):
            command()
        return set(read)

    expected = {task_file, stray}
    assert files_read(lambda: validate(folder)) == expected
    assert files_read(lambda: load_side(folder)) == expected
    assert files_read(lambda: submit(folder, tmp_path / "tree")) == expected
    assert files_read(lambda: collect([folder])) == expected
    refused = {task_file.parent / "Linked.json", folder / "linked-folder", stray}
    assert {problem.file for problem in validate(folder).problems} == refused
    with pytest.raises(HarnessError) as refusal:
        load_side(folder)
    assert all(str(path) in str(refusal.value) for path in refused)
