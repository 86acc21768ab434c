"""Checks a results folder before it may join the leaderboard: each problem names its file and fix.

A submission is valid when every result file matches the schema, names a built-in task, used
the task's dataset revision and eval splits, has a finite main score in its metric's range,
records the harness version and the model's metadata (with ``model_meta.json`` beside it), and
no task appears twice for the same model and revision.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import HarnessError, UnknownNameError
from harness.results import SITE_MARKER, ResultFile, read_json, read_result
from tasks.definition import TaskDefinition

MODEL_META = "model_meta.json"
RERUN = "re-run the task with `harness run --model M --tasks TASK` and submit the new file"
# (lowest, highest) of a metric, by the last part of its name; any other metric lies in [0, 1].
SIGNED_METRICS = {"pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0), "ari": (-1.0, 1.0)}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, with what to do about it."""

    file: Path
    check: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}\n    fix: {self.fix}"


@dataclass
class Validation:
    """The result files that were read, and every problem found."""

    results: list[tuple[Path, ResultFile]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems


def metric_range(metric: str) -> tuple[float, float]:
    """The range a metric's values lie in: correlations may be negative."""
    return SIGNED_METRICS.get(metric.rsplit("_", 1)[-1], (0.0, 1.0))


def result_paths(path: Path) -> list[Path]:
    """The result files under a folder (or the file itself); model metadata files excluded."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise HarnessError(f"{path} does not exist. Pass a results folder or a result file.")
    sites = {marker.parent for marker in path.rglob(SITE_MARKER)}
    paths = sorted(
        p
        for p in path.rglob("*.json")
        if p.name != MODEL_META
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
        and not sites.intersection(p.parents)
    )
    if not paths:
        raise HarnessError(f"no result files (*.json) under {path}")
    return paths


def validate(path: Path) -> Validation:
    """Run every check on the results at ``path``."""
    from tasks.registry import builtin_tasks

    known = builtin_tasks()
    validation = Validation()
    for file in result_paths(path):
        loaded = _load(file)
        if isinstance(loaded, Problem):
            validation.problems.append(loaded)
            continue
        validation.results.append((file, loaded))
        validation.problems.extend(_check_result(file, loaded, known))
    validation.problems.extend(_check_model_meta(validation.results))
    validation.problems.extend(_check_duplicates(validation.results))
    return validation


def _load(file: Path) -> ResultFile | Problem:
    """The parsed result, or why it cannot be used."""
    try:
        return read_result(file)
    except HarnessError as error:
        message = str(error).removeprefix(f"{file}: ")
        cause = error.__cause__
        if isinstance(cause, ValidationError):
            if any(e["loc"] == ("harness",) and e["type"] == "missing" for e in cause.errors()):
                return Problem(
                    file,
                    "provenance",
                    "no `harness` block: the harness version and model metadata are not recorded",
                    RERUN,
                )
            return Problem(file, "schema", _schema_summary(cause), RERUN)
        return Problem(file, "json", message, RERUN)


def _rerun(result: ResultFile) -> str:
    """The command that makes a fresh result for this file's model and task."""
    model = result.harness.model.get("name") or "MODEL"
    return f"re-run the task, `harness run --model {model} --tasks {result.task_name} --overwrite`"


def _schema_summary(error: ValidationError) -> str:
    """The first few schema errors, one line."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()[:5]
    ]
    return "does not match the result schema (" + "; ".join(parts) + ")"


def _check_result(
    file: Path, result: ResultFile, known: dict[str, TaskDefinition]
) -> Iterator[Problem]:
    """The per-file checks; those against the task definition need a known task."""
    yield from _check_entries(file, result)
    yield from _check_provenance(file, result)
    task = known.get(result.task_name)
    if task is None:
        unknown = UnknownNameError("task", result.task_name, known)
        fix = "use a built-in task's exact name (see `harness tasks`); custom tasks are not ranked"
        yield Problem(file, "task", str(unknown), fix)
        return
    yield from _check_revision(file, result, task)
    yield from _check_splits(file, result, task)
    yield from _check_main_scores(file, result, task)


def _check_entries(file: Path, result: ResultFile) -> Iterator[Problem]:
    """mteb's shape of a split: a non-empty list of subsets with ``hf_subset`` and languages."""
    for split, entries in result.scores.items():
        if not entries:
            yield Problem(file, "schema", f"split {split!r} has no scores", _rerun(result))
        for entry in entries:
            if not isinstance(entry.get("hf_subset"), str) or not isinstance(
                entry.get("languages"), list
            ):
                message = f"split {split!r}: a subset lacks `hf_subset` or `languages` (mteb's)"
                yield Problem(file, "schema", message, _rerun(result))


def _check_provenance(file: Path, result: ResultFile) -> Iterator[Problem]:
    """The harness version and the model's name, revision and fingerprint are recorded."""
    if not result.harness.harness_version.strip():
        yield Problem(file, "provenance", "the harness version is empty", _rerun(result))
    missing = [
        key
        for key in ("name", "revision", "fingerprint")
        if not isinstance(result.harness.model.get(key), str) or not result.harness.model[key]
    ]
    if missing:
        message = f"the model metadata lacks {', '.join(missing)} (harness.model)"
        yield Problem(file, "provenance", message, _rerun(result))


def _check_revision(file: Path, result: ResultFile, task: TaskDefinition) -> list[Problem]:
    """The dataset revision is the definition's (for a local dataset: its content hash)."""
    from tasks.loading import dataset_revision

    try:
        expected = dataset_revision(task)
    except HarnessError as error:
        message = f"cannot check the dataset revision: {error}"
        return [Problem(file, "revision", message, _rerun(result))]
    if result.dataset_revision == expected:
        return []
    message = (
        f"dataset revision {result.dataset_revision!r} does not match task "
        f"{task.name}'s {expected!r}"
    )
    fix = f"{_rerun(result)}, without --data-dir (on the task's own dataset)"
    return [Problem(file, "revision", message, fix)]


def _check_splits(file: Path, result: ResultFile, task: TaskDefinition) -> list[Problem]:
    """Every eval split of the definition has scores."""
    missing = [split for split in task.eval_splits if split not in result.scores]
    if not missing:
        return []
    message = f"eval split(s) {', '.join(missing)} missing (task {task.name} evaluates on "
    message += f"{', '.join(task.eval_splits)})"
    return [Problem(file, "splits", message, _rerun(result))]


def _check_main_scores(file: Path, result: ResultFile, task: TaskDefinition) -> Iterator[Problem]:
    """Each subset's main score is a finite number within its metric's range."""
    from tasks.registry import task_type

    metric = task_type(task).main_score(task)
    low, high = metric_range(metric)
    for split, entries in result.scores.items():
        for entry in entries:
            where = f"split {split!r}, subset {entry.get('hf_subset')!r}"
            value = entry.get("main_score")
            if not _is_number(value) or not math.isfinite(value):
                message = f"{where}: main score ({metric}) is {value!r}, not a finite number"
                yield Problem(file, "main_score", message, _rerun(result))
            elif not low <= value <= high:
                message = f"{where}: main score {metric} = {value} is outside [{low:g}, {high:g}]"
                yield Problem(file, "main_score", message, _rerun(result))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_model_meta(results: list[tuple[Path, ResultFile]]) -> Iterator[Problem]:
    """Each folder of results has a valid ``model_meta.json`` naming the results' model."""
    folders: dict[Path, list[ResultFile]] = {}
    for file, result in results:
        folders.setdefault(file.parent, []).append(result)
    fix = "keep the model_meta.json that `harness run` writes beside the task files"
    for folder, folder_results in sorted(folders.items()):
        meta_file = folder / MODEL_META
        if not meta_file.is_file():
            yield Problem(meta_file, "model_meta", "model_meta.json is missing", fix)
            continue
        try:
            meta = read_json(meta_file)
        except HarnessError as error:
            message = str(error).removeprefix(f"{meta_file}: ")
            yield Problem(meta_file, "model_meta", message, fix)
            continue
        yield from _check_meta_fields(meta_file, meta, folder_results, fix)


def _check_meta_fields(
    meta_file: Path, meta: Any, results: list[ResultFile], fix: str
) -> Iterator[Problem]:
    """mteb's ModelMeta name and revision plus the harness fingerprint, matching the results."""
    if not isinstance(meta, dict):
        yield Problem(meta_file, "model_meta", "model_meta.json is not a JSON object", fix)
        return
    block = meta.get("harness")
    fingerprint = block.get("fingerprint") if isinstance(block, dict) else None
    if not all(isinstance(meta.get(key), str) for key in ("name", "revision")) or not fingerprint:
        message = "model_meta.json lacks the model's name, revision or harness.fingerprint"
        yield Problem(meta_file, "model_meta", message, fix)
        return
    for result in results:
        recorded = (result.harness.model.get("name"), result.harness.model.get("revision"))
        if recorded != (meta["name"], meta["revision"]):
            message = (
                f"{result.task_name} was made by {recorded[0]!r} at {recorded[1]!r}, but "
                f"model_meta.json names {meta['name']!r} at {meta['revision']!r}"
            )
            yield Problem(meta_file, "model_meta", message, "keep one model's results per folder")


def _check_duplicates(results: list[tuple[Path, ResultFile]]) -> Iterator[Problem]:
    """No task appears twice for the same model and revision."""
    first: dict[tuple[str, str, str], Path] = {}
    for file, result in results:
        model = result.harness.model
        key = (str(model.get("name")), str(model.get("revision")), result.task_name)
        if key in first:
            message = (
                f"task {result.task_name} for {key[0]} at {key[1]} appears twice "
                f"(also in {first[key]})"
            )
            yield Problem(file, "duplicate", message, "keep one result file per task and model")
        else:
            first[key] = file
