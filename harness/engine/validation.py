"""Checks results before they are filed, ranked or compared: each problem names its file and fix.

A submission is valid when every result file matches the schema, names a built-in task, used
the task's dataset revision, its eval splits (no more, no fewer) and its resolved protocol, was
not cut short by ``--limit``, and records the harness version and the model's metadata (with
``model_meta.json`` beside it). Every main score must be a finite number within its metric's
range that equals the metric it names, match the score recomputed from the stored per-unit
scores, and lie inside its stored interval (:func:`score_problems`, which ``harness check``
shares). No task appears twice for the same model and revision, and one model revision has one
fingerprint. Results folders are read by one scan everywhere (:func:`scan_results`, through
:func:`load_results`, which ``harness check``, submission and the leaderboard share): symbolic
links are never followed, built leaderboard sites and hidden entries are passed over. An mteb
result file (no harness block) is one problem that says so: the leaderboard and ``harness
check`` read it as an external result (:mod:`harness.engine.mteb_files`).

The messages never quote a file's content beyond the names of its keys, so they may be shown
on a public page.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
from pydantic import ValidationError

import harness.engine.results as result_io
from harness.core.errors import HarnessError, UnknownNameError
from harness.engine.records import TaskRecord
from harness.engine.results import SITE_MARKER, ResultFile, read_json, schema_summary
from harness.tasks.definition import TaskDefinition

MODEL_META = "model_meta.json"
RERUN = "re-run the task with `harness run --model M --tasks TASK` and submit the new file"
# The one problem of an mteb result file (no harness block): it is read as an external result.
MTEB_CHECK = "mteb"
MTEB_MESSAGE = (
    "an mteb result file ({}): it has no harness block (no model fingerprint, run record, "
    "units or interval), so it cannot be validated or submitted as a harness result"
)
MTEB_FIX = (
    "read it as an external result with `harness leaderboard --results DIR` or `harness check "
    "--baseline DIR --tolerance X`; to submit, run the task with `harness run --model M --tasks "
    "TASK`"
)
# (lowest, highest) of a metric, by the last part of its name; any other metric lies in [0, 1].
SIGNED_METRICS = {"pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0), "ari": (-1.0, 1.0)}
# How far a stored main score may lie from the score recomputed from its stored units, or
# outside its interval: retrieval scores are rounded to 5 decimals (as mteb rounds them) and
# stored units to 6, so a genuine file differs by at most 5.5e-6.
SCORE_TOLERANCE = 1e-5
# The most a result file may hold: mteb's largest tasks have a few splits, about a hundred
# language subsets and some eighty metrics per subset.
MAX_SPLITS = 20
MAX_SUBSETS = 200
MAX_METRICS = 500
# Task-record fields that describe a task but do not change its numbers.
DESCRIPTIVE_FIELDS = ("name", "description", "reference", "n_samples", "chance_level")
# Keys of a subset's scores that are not metrics.
NOT_METRICS = ("main_score", "hf_subset", "languages")


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

    def usable(self) -> list[tuple[Path, ResultFile]]:
        """The results with no problem of their own nor of their folder's ``model_meta.json``."""
        flagged = {problem.file for problem in self.problems}
        return [
            (file, result)
            for file, result in self.results
            if file not in flagged and file.parent / MODEL_META not in flagged
        ]


@dataclass
class Scan:
    """The result files under a path, and what was refused without being read."""

    files: list[Path] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)


def metric_range(metric: str) -> tuple[float, float]:
    """The range a metric's values lie in: correlations may be negative."""
    return SIGNED_METRICS.get(metric.rsplit("_", 1)[-1], (0.0, 1.0))


def scan_results(path: Path, exclude: Path | None = None) -> Scan:
    """The ``*.json`` result files under ``path`` (or ``path`` itself when it is a file).

    Links are never followed: a linked file or folder inside ``path`` is refused, as is a
    ``*.json`` that is not a regular file. Hidden entries, ``model_meta.json``, built
    leaderboard sites and ``exclude`` are passed over.
    """
    if path.is_file():
        return Scan(files=[path])
    if not path.is_dir():
        raise HarnessError(f"{path} does not exist. Pass a results folder or a result file.")
    scan = Scan()
    skip = exclude.resolve() if exclude is not None else None
    folders = [path]
    while folders:
        folder = folders.pop()
        if (folder / SITE_MARKER).is_file() or (skip is not None and folder.resolve() == skip):
            continue
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            fix = "make the folder readable, or move it out of the results folder"
            scan.refused.append(Problem(folder, "scan", f"cannot be read ({error.strerror})", fix))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            problem = _scanned(Path(entry.path), entry, folders, scan.files)
            if problem is not None:
                scan.refused.append(problem)
    scan.files.sort()
    scan.refused.sort(key=lambda problem: problem.file)
    return scan


def _scanned(
    path: Path, entry: os.DirEntry[str], folders: list[Path], files: list[Path]
) -> Problem | None:
    """Queue a folder, take a result file, or say why the entry is refused (a linked
    ``model_meta.json`` is its folder's check)."""
    if entry.name == MODEL_META:
        return None
    if entry.is_symlink():
        fix = "copy the real files into the results folder; links are never followed"
        return Problem(path, "link", "a symbolic link (not followed, not read)", fix)
    if entry.is_dir(follow_symlinks=False):
        folders.append(path)
    elif path.suffix == ".json":
        if not stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode):
            fix = "keep only regular result files in the results folder"
            return Problem(path, "scan", "not a regular file (not read)", fix)
        files.append(path)
    return None


def load_results(paths: Path | Sequence[Path], exclude: Path | None = None) -> Validation:
    """Every result file under ``paths`` (:func:`scan_results`), parsed: the results, and a
    problem for each entry refused by the scan or file that is not a result. No other check."""
    roots = [paths] if isinstance(paths, Path) else list(paths)
    scans = [scan_results(root, exclude) for root in roots]
    if not any(scan.files or scan.refused for scan in scans):
        raise HarnessError(f"no result files (*.json) under {', '.join(map(str, roots))}")
    loaded = Validation()
    for scan in scans:
        loaded.problems.extend(scan.refused)
        for file in scan.files:
            result = _load(file)
            if isinstance(result, Problem):
                loaded.problems.append(result)
            else:
                loaded.results.append((file, result))
    return loaded


def validate(
    paths: Path | Sequence[Path], *, custom: bool = False, exclude: Path | None = None
) -> Validation:
    """Run every check on the results under ``paths`` (:func:`load_results`).

    With ``custom``, a task that is not built in is no problem: its file gets the checks that
    need no definition (the leaderboard shows such tasks apart). ``exclude`` is not scanned.
    """
    from harness.tasks.registry import builtin_tasks

    validation = load_results(paths, exclude)
    known = builtin_tasks()
    for file, result in validation.results:
        validation.problems.extend(_check_result(file, result, known, custom))
    validation.problems.extend(_check_model_meta(validation.results))
    validation.problems.extend(_check_duplicates(validation.results))
    validation.problems.extend(_check_fingerprints(validation.results))
    return validation


def _load(file: Path) -> ResultFile | Problem:
    """The parsed result, or why it cannot be used (an mteb file: its one problem)."""
    from harness.engine.mteb_files import min_version, mteb_layout

    try:  # a harness file never holds a bare NaN: it is parsed once, strictly
        payload = result_io.read_json(file)
    except HarnessError as error:
        problem = Problem(file, "json", str(error).removeprefix(f"{file}: "), RERUN)
        try:  # mteb writes an undefined metric as a bare NaN
            payload = result_io.read_json(file, nan_as_null=True)
        except HarnessError:
            return problem
        if mteb_layout(payload) is None:
            return problem
    layout = mteb_layout(payload) if isinstance(payload, dict) else None
    if layout is not None:
        version = min_version(payload.get("mteb_version"))
        shown = f"mteb {'.'.join(map(str, version))}" if version else "mteb version unknown"
        return Problem(file, MTEB_CHECK, MTEB_MESSAGE.format(f"{layout}, {shown}"), MTEB_FIX)
    try:
        return ResultFile.model_validate(payload)
    except ValidationError as error:
        return Problem(file, "schema", schema_summary(error), RERUN)


def _rerun(result: ResultFile) -> str:
    """The command that makes a fresh result for this file's model and task."""
    model = result.harness.model.name or "MODEL"
    return f"re-run the task, `harness run --model {model} --tasks {result.task_name} --overwrite`"


def protocol_record(record: TaskRecord) -> dict[str, Any]:
    """A task record's written fields less the descriptive ones and its dataset's location:
    what fixes its numbers. A dataset's location may move (a local copy, another checkout); its
    revision pins it."""
    kept = {k: v for k, v in record.written().items() if k not in DESCRIPTIVE_FIELDS}
    dataset = dict(kept.get("dataset") or {})
    dataset.pop("path", None)
    kept["dataset"] = dataset
    return kept


def _check_result(
    file: Path, result: ResultFile, known: dict[str, TaskDefinition], custom: bool
) -> Iterator[Problem]:
    """The per-file checks; a built-in task's splits, protocol and main score are its
    definition's, never the file's."""
    yield from _check_entries(file, result)
    yield from _check_provenance(file, result)
    task = known.get(result.task_name)
    if task is None:
        if not custom:
            unknown = UnknownNameError("task", result.task_name, known)
            fix = (
                "use a built-in task's exact name (see `harness tasks`); custom tasks are not "
                "ranked"
            )
            yield Problem(file, "task", str(unknown), fix)
            return
        splits = result.harness.task.eval_splits
        metric = result.harness.task.main_score
        if splits is None or metric is None:
            message = "the task record lacks its eval splits or main score (harness.task)"
            yield Problem(file, "schema", message, _rerun(result))
            return
        yield from _check_splits(file, result, splits)
        yield from _check_scores(file, result, [s for s in splits if s in result.scores], metric)
        return
    from harness.tasks.registry import task_record

    expected = TaskRecord.model_validate(task_record(task))
    yield from _check_revision(file, result, task)
    yield from _check_protocol(file, result, task.name, expected)
    yield from _check_splits(file, result, task.eval_splits)
    splits = [split for split in task.eval_splits if split in result.scores]
    metric = str(expected.main_score)
    yield from _check_scores(file, result, splits, metric, units_required=True)


def _check_entries(file: Path, result: ResultFile) -> Iterator[Problem]:
    """mteb's shape of a split: a non-empty list of subsets with ``hf_subset`` and languages
    (the sizes are :func:`score_problems`'s to check)."""
    if len(result.scores) > MAX_SPLITS:
        return
    for split, entries in result.scores.items():
        if not entries:
            yield Problem(file, "schema", f"split {split!r} has no scores", _rerun(result))
        if len(entries) > MAX_SUBSETS:
            continue
        for entry in entries:
            if not isinstance(entry.get("hf_subset"), str) or not isinstance(
                entry.get("languages"), list
            ):
                message = f"split {split!r}: a subset lacks `hf_subset` or `languages` (mteb's)"
                yield Problem(file, "schema", message, _rerun(result))


def _check_provenance(file: Path, result: ResultFile) -> Iterator[Problem]:
    """The harness version and the model's name, revision and fingerprint are recorded, and
    the run was not cut short by ``--limit``."""
    if not result.harness.harness_version.strip():
        yield Problem(file, "provenance", "the harness version is empty", _rerun(result))
    model = result.harness.model
    recorded = {"name": model.name, "revision": model.revision, "fingerprint": model.fingerprint}
    missing = [key for key, value in recorded.items() if not value]
    if missing:
        message = f"the model metadata lacks {', '.join(missing)} (harness.model)"
        yield Problem(file, "provenance", message, _rerun(result))
    limit = result.harness.run_settings.limit
    if limit is None and result.harness.identity is not None:
        limit = result.harness.identity.limit
    if limit is not None:
        message = (
            f"made by a `--limit {str(limit)[:20]}` run, which scores a subset of the queries: "
            "never valid for submission, never ranked"
        )
        yield Problem(file, "limit", message, f"{_rerun(result)}, without --limit")


def _check_revision(file: Path, result: ResultFile, task: TaskDefinition) -> list[Problem]:
    """The dataset revision is the definition's (for a local dataset: its content hash)."""
    from harness.tasks.loading import dataset_revision

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


def _check_protocol(file: Path, result: ResultFile, name: str, record: TaskRecord) -> list[Problem]:
    """The recorded task (type, data, splits, main score, prompts, protocol constants) is the
    built-in definition's ``record``."""
    expected = protocol_record(record)
    recorded = protocol_record(result.harness.task)
    changed = sorted(
        k for k in expected.keys() | recorded.keys() if expected.get(k) != recorded.get(k)
    )
    if not changed:
        return []
    message = (
        f"the recorded task settings differ from built-in task {name}'s in: "
        f"{', '.join(key[:40] for key in changed[:10])}"
    )
    fix = f"{_rerun(result)}, with the built-in definition (no custom YAML of that name)"
    return [Problem(file, "protocol", message, fix)]


def _check_splits(file: Path, result: ResultFile, eval_splits: Sequence[str]) -> list[Problem]:
    """The scores hold exactly the eval splits: none missing, none extra."""
    missing = [split for split in eval_splits if split not in result.scores]
    extra = [split[:40] for split in result.scores if split not in eval_splits]
    if not missing and not extra:
        return []
    parts = [f"eval split(s) {', '.join(missing)} missing"] if missing else []
    parts += [f"split(s) {', '.join(extra)} not evaluated by the task (refused)"] if extra else []
    message = f"{'; '.join(parts)} (task {result.task_name} evaluates on {', '.join(eval_splits)})"
    return [Problem(file, "splits", message, _rerun(result))]


def _check_scores(
    file: Path,
    result: ResultFile,
    splits: Sequence[str],
    metric: str,
    *,
    units_required: bool = False,
) -> Iterator[Problem]:
    """:func:`score_problems` on ``splits`` as problems; with ``units_required``, every subset
    must carry the units its score is recomputed from."""
    for message in score_problems(result, metric, splits, units_required=units_required):
        yield Problem(file, "main_score", message, _rerun(result))


def score_problems(
    result: ResultFile,
    metric: str,
    splits: Sequence[str] | None = None,
    *,
    units_required: bool = False,
) -> list[str]:
    """Why the main scores of ``splits`` (default: all) cannot be trusted; empty when they can.

    Each subset's main score must be a finite number within ``metric``'s range, equal the
    metric it names, match the score recomputed from its stored units within
    :data:`SCORE_TOLERANCE` (when units are stored; ``units_required`` demands them), and lie
    inside its stored interval, which lies within the metric's range. No metric may be a
    boolean or non-finite. Shared by validation and ``harness check``.
    """
    problems: list[str] = []
    if len(result.scores) > MAX_SPLITS:
        return [f"{len(result.scores)} splits; a result file holds at most {MAX_SPLITS}"]
    for split in result.scores if splits is None else splits:
        entries = result.scores.get(split, [])
        if len(entries) > MAX_SUBSETS:
            problems.append(f"split {split!r} has {len(entries)} subsets; at most {MAX_SUBSETS}")
            continue
        seen: set[str] = set()
        for entry in entries:
            subset = str(entry.get("hf_subset", "default"))
            where = f"split {split[:40]!r}, subset {subset[:40]!r}"
            if subset in seen:
                problems.append(f"{where} appears twice")
                continue
            seen.add(subset)
            problem = _entry_problem(result, split, subset, entry, metric, units_required)
            if problem:
                problems.append(f"{where}: {problem}")
    return problems


def _entry_problem(
    result: ResultFile,
    split: str,
    subset: str,
    entry: Mapping[str, Any],
    metric: str,
    units_required: bool,
) -> str:
    """The first reason one subset's main score cannot be trusted ('' when it can)."""
    low, high = metric_range(metric)
    value = entry.get("main_score")
    if not _is_number(value) or not math.isfinite(value):
        shown = value if value is None else type(value).__name__
        return f"main score ({metric}) is {shown!r}, not a finite number"
    if not low <= value <= high:
        return f"main score {metric} = {value} is outside [{low:g}, {high:g}]"
    if len(entry) > MAX_METRICS:
        return f"{len(entry)} metrics; at most {MAX_METRICS}"
    bad = sorted(
        str(key)[:40]
        for key, item in entry.items()
        if key not in NOT_METRICS and not _metric_value(item)
    )
    if bad:
        return f"metric(s) {', '.join(bad[:5])} are not finite numbers (nor null)"
    named = entry.get(metric)
    if named != value:
        return f"main score {value} is not the value of the metric it names, {metric} ({named})"
    return _units_problem(result, split, subset, value, units_required) or _interval_problem(
        result, split, subset, value, (low, high)
    )


def _units_problem(
    result: ResultFile, split: str, subset: str, value: float, required: bool
) -> str:
    """Why the stored units do not give back the main score ('' when they do)."""
    try:
        units = result.unit_scores(split, subset)
        if units is None:
            return (
                "no per-unit scores are stored to recompute the main score from" if required else ""
            )
        columns = units.columns
        if any(not _finite_numeric(values) for values in columns.values()):
            return "the stored per-unit scores are not finite numbers"
        if any(name in ("labels", "clusters") for name in columns) and not all(
            np.issubdtype(values.dtype, np.integer)
            and values.min() >= 0
            and values.max() < len(units)
            for values in columns.values()
        ):
            return "the stored labels and clusters are not small whole numbers"
        recomputed = units.score()
    except (HarnessError, ValueError, TypeError, IndexError, OverflowError):
        return "the stored per-unit scores are malformed"
    if not math.isfinite(recomputed) or abs(recomputed - value) > SCORE_TOLERANCE:
        return (
            f"main score {value} does not match {recomputed:.6f}, the score recomputed from "
            "its own per-unit scores"
        )
    return ""


def _interval_problem(
    result: ResultFile, split: str, subset: str, value: float, bounds: tuple[float, float]
) -> str:
    """Why the stored interval cannot be the main score's ('' when it can, or none is stored)."""
    interval = result.harness.intervals.get(split, {}).get(subset)
    if interval is None:
        return ""
    low, high = interval.get("low"), interval.get("high")
    if not (_is_number(low) and _is_number(high) and math.isfinite(low) and math.isfinite(high)):
        return "the stored interval's bounds are not finite numbers"
    if not bounds[0] - SCORE_TOLERANCE <= low <= high <= bounds[1] + SCORE_TOLERANCE:
        shown = f"[{low:.6f}, {high:.6f}]"
        return f"the stored interval {shown} is not within [{bounds[0]:g}, {bounds[1]:g}]"
    if not low - SCORE_TOLERANCE <= value <= high + SCORE_TOLERANCE:
        return f"main score {value} lies outside its stored interval [{low:.6f}, {high:.6f}]"
    return ""


def _metric_value(value: Any) -> bool:
    """A finite number or null, or lists and objects of them (mteb's per-experiment scores)."""
    if isinstance(value, list):
        return all(_metric_value(item) for item in value)
    if isinstance(value, dict):
        return all(_metric_value(item) for item in value.values())
    return value is None or (_is_number(value) and math.isfinite(value))


def _finite_numeric(values: np.ndarray) -> bool:
    """Whether an array holds numbers only (no booleans, objects or strings), all finite."""
    numeric = np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
    return bool(numeric and values.size and np.isfinite(values).all())


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_model_meta(results: list[tuple[Path, ResultFile]]) -> Iterator[Problem]:
    """Each folder of results has a valid ``model_meta.json`` naming the results' model."""
    folders: dict[Path, list[ResultFile]] = {}
    for file, result in results:
        folders.setdefault(file.parent, []).append(result)
    fix = "keep the model_meta.json that `harness run` writes beside the task files"
    for folder, folder_results in sorted(folders.items()):
        meta_file = folder / MODEL_META
        if meta_file.is_symlink():
            message = "model_meta.json is a symbolic link (not followed, not read)"
            yield Problem(meta_file, "model_meta", message, fix)
            continue
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
        model = result.harness.model
        recorded = (model.name, model.revision)
        if recorded != (meta["name"], meta["revision"]):
            message = (
                f"{result.task_name} was made by {recorded[0]!r} at {recorded[1]!r}, but "
                f"model_meta.json names {meta['name']!r} at {meta['revision']!r}"
            )
            yield Problem(meta_file, "model_meta", message, "keep one model's results per folder")
            return
        if model.fingerprint is not None and model.fingerprint != fingerprint:
            message = (
                f"{result.task_name} was made with another model fingerprint than model_meta.json's"
            )
            yield Problem(meta_file, "model_meta", message, "keep one model's results per folder")
            return


def _model_key(result: ResultFile) -> tuple[str, str]:
    return str(result.harness.model.name), str(result.harness.model.revision)


def _check_duplicates(results: list[tuple[Path, ResultFile]]) -> Iterator[Problem]:
    """No task appears twice for the same model and revision: a copy with the same scores is
    flagged; copies with different scores are all flagged, for neither can be preferred."""
    groups: dict[tuple[str, str, str], list[tuple[Path, ResultFile]]] = {}
    for file, result in results:
        groups.setdefault((*_model_key(result), result.task_name), []).append((file, result))
    fix = "keep one result file per task and model revision"
    for (name, revision, task), group in groups.items():
        if len(group) < 2:
            continue
        (first, kept), rest = group[0], group[1:]
        same = all(result.scores == kept.scores for _, result in rest)
        flagged = rest if same else group
        for file, _ in flagged:
            other = first if file != first else rest[0][0]
            how = "with the same scores" if same else "with other scores"
            message = f"task {task} for {name} at {revision} appears twice ({how} in {other})"
            yield Problem(file, "duplicate", message, fix)


def _check_fingerprints(results: list[tuple[Path, ResultFile]]) -> Iterator[Problem]:
    """One model revision, one fingerprint: results of the same name and revision made with
    other settings (dtype, prompts, pooling) are not the same model and are all flagged."""
    groups: dict[tuple[str, str], list[tuple[Path, ResultFile]]] = {}
    for file, result in results:
        groups.setdefault(_model_key(result), []).append((file, result))
    for (name, revision), group in groups.items():
        fingerprints = {str(result.harness.model.fingerprint) for _, result in group}
        if len(fingerprints) < 2:
            continue
        message = (
            f"{name} at {revision} has results made with {len(fingerprints)} different "
            "model fingerprints (other dtype, prompts or options)"
        )
        fix = "keep the results of one model configuration per name and revision"
        for file, _ in group:
            yield Problem(file, "fingerprint", message, fix)
