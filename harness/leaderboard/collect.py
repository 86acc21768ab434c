"""Results folders in, validated entries out; every file that cannot be used is listed, with why.

Every harness result gets the checks of ``harness validate``
(:func:`harness.engine.validation.validate`): links are never followed, and a file with any
problem (a forged or inconsistent score, a ``--limit`` run, another revision of the dataset, a
task setting or split not the built-in definition's, a duplicate, another fingerprint under the
same model revision) is a :class:`Skipped` entry with the reason, never a score. mteb's own
result files in the same folders are *external* entries (no fingerprint, interval or units),
ranked only when :func:`harness.engine.mteb_files.external_problems` finds nothing wrong. A
built-in task's type and eval splits come from its definition, and every score is
:func:`harness.engine.main_score.task_score` over them; tasks that are not built in are
collected apart and never ranked. Each revision of a model is its own row, and a model's
external results are a row apart from its harness results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from harness.core.errors import HarnessError
from harness.engine.main_score import task_score
from harness.engine.mteb_files import (
    ExternalModel,
    MtebResult,
    external_model,
    external_problems,
    read_mteb_result,
)
from harness.engine.records import ModelRecord
from harness.engine.results import ResultFile
from harness.engine.validation import MODEL_META, MTEB_CHECK, Validation, validate
from harness.scoring.bootstrap import UnitScores
from harness.tasks.definition import TaskDefinition


class ModelKey(NamedTuple):
    """A row of the leaderboard: a model revision's harness results, or its external ones."""

    name: str
    revision: str
    external: bool = False


@dataclass(frozen=True)
class Entry:
    """One usable result: a model revision's scores on one task, from a harness result or
    (``external``) an mteb result file."""

    model: str
    revision: str
    task: str
    task_type: str
    score: float | None
    result: ResultFile | MtebResult
    path: Path
    # An external result's model, as its model_meta.json or folders name it.
    external_model: ExternalModel | None = None

    @property
    def external(self) -> bool:
        """Whether the result is an mteb file (no fingerprint, interval or units)."""
        return isinstance(self.result, MtebResult)

    @property
    def key(self) -> ModelKey:
        """The leaderboard row this result belongs to."""
        return ModelKey(self.model, self.revision, self.external)

    @property
    def model_meta(self) -> ModelRecord:
        """The model's metadata as the run recorded it (an external one: as mteb did)."""
        if isinstance(self.result, ResultFile):
            return self.result.harness.model
        meta = self.external_model or ExternalModel(self.model, self.revision)
        return ModelRecord(
            name=meta.name,
            revision=meta.revision,
            modalities=list(meta.modalities),
            embed_dim=meta.embed_dim,
            n_parameters=meta.n_parameters,
        )

    def interval(self, split: str, subset: str = "default") -> Mapping[str, Any] | None:
        """The interval the run recorded for one split and subset (none for external ones)."""
        if isinstance(self.result, MtebResult):
            return None
        return self.result.harness.intervals.get(split, {}).get(subset)

    def units(self, split: str, subset: str = "default") -> UnitScores | None:
        """The per-unit scores the run stored for one split and subset (none for external)."""
        if isinstance(self.result, MtebResult):
            return None
        return self.result.unit_scores(split, subset)


@dataclass(frozen=True)
class Skipped:
    """A file left out of the site, and why."""

    path: Path
    reason: str


@dataclass
class Collection:
    """Everything read from the results folders: ranked entries (built-in tasks, harness and
    external), entries of custom tasks (shown apart), and every file left out."""

    entries: list[Entry] = field(default_factory=list)
    custom: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def skipped_files(self) -> int:
        """How many files were left out (a file may be skipped for several reasons)."""
        return len({skipped.path for skipped in self.skipped})

    def table(self) -> dict[ModelKey, dict[str, float | None]]:
        """``{row: {task: score}}`` of the ranked entries."""
        table: dict[ModelKey, dict[str, float | None]] = {}
        for entry in self.entries:
            table.setdefault(entry.key, {})[entry.task] = entry.score
        return table

    def task_types(self) -> dict[str, str]:
        """``{task: type}`` of every ranked task with a result."""
        return {entry.task: entry.task_type for entry in self.entries}


def _skipped(validation: Validation) -> list[Skipped]:
    """Every problem (but an mteb file's, read apart), and every parsed result left out
    because of its folder's metadata."""
    skipped = [
        Skipped(problem.file, f"{problem.message} (fix: {problem.fix})")
        for problem in validation.problems
        if problem.check != MTEB_CHECK
    ]
    flagged = {problem.file for problem in validation.problems}
    usable = {file for file, _ in validation.usable()}
    for file, _ in validation.results:
        if file not in usable and file not in flagged:
            reason = f"its folder's {MODEL_META} is not valid (listed above)"
            skipped.append(Skipped(file, reason))
    return skipped


def _harness_entry(path: Path, result: ResultFile, task: TaskDefinition | None) -> Entry:
    """A validated harness result's entry; a custom task's splits and type are its record's."""
    record = result.harness.task
    splits = task.eval_splits if task else record.eval_splits or []
    return Entry(
        model=str(result.harness.model.name),
        revision=str(result.harness.model.revision),
        task=result.task_name,
        task_type=task.type if task else record.type or "unknown",
        score=task_score(result.scores, splits),
        result=result,
        path=path,
    )


def _external_entry(path: Path, known: Mapping[str, TaskDefinition]) -> Entry | Skipped:
    """An mteb file's entry, or why it cannot be ranked beside harness results."""
    try:
        result = read_mteb_result(path)
        model = external_model(path)
    except HarnessError as error:
        return Skipped(path, str(error).removeprefix(f"{path}: "))
    task = known.get(result.task_name)
    problems = external_problems(result, task)
    if task is None or problems:
        fix = "pass mteb's own file of a built-in task, as published, or run the task"
        reason = f"an mteb result file ({result.layout}): {'; '.join(problems)} (fix: {fix})"
        return Skipped(path, reason)
    return Entry(
        model=model.name,
        revision=model.revision,
        task=task.name,
        task_type=task.type,
        score=task_score(result.scores, task.eval_splits),
        result=result,
        path=path,
        external_model=model,
    )


def _unique(entries: list[Entry]) -> Iterator[Entry | Skipped]:
    """External entries with no other file of the same model revision and task: a copy with
    the same scores is skipped; copies with different scores all are, for neither can be
    preferred."""
    groups: dict[tuple[ModelKey, str], list[Entry]] = {}
    for entry in entries:
        groups.setdefault((entry.key, entry.task), []).append(entry)
    for (key, task), group in groups.items():
        first = group[0]
        if len(group) == 1:
            yield first
            continue
        same = all(entry.result.scores == first.result.scores for entry in group[1:])
        if same:
            yield first
        for entry in group[1:] if same else group:
            other = first.path if entry is not first else group[1].path
            how = "with the same scores" if same else "with other scores"
            reason = (
                f"task {task} for {key.name} at {key.revision} appears twice ({how} in {other}) "
                "(fix: keep one result file per task and model revision)"
            )
            yield Skipped(entry.path, reason)


def collect(roots: Sequence[Path], exclude: Path | None = None) -> Collection:
    """Validate every result file under ``roots`` (``exclude``, the site being built, is not
    read) and collect the usable ones: harness results and mteb's files (external)."""
    from harness.tasks.registry import builtin_tasks

    known = builtin_tasks()
    validation = validate(list(roots), custom=True, exclude=exclude)
    collection = Collection(skipped=_skipped(validation))
    for path, result in validation.usable():
        task = known.get(result.task_name)
        entry = _harness_entry(path, result, task)
        (collection.entries if task else collection.custom).append(entry)
    external = [
        _external_entry(p.file, known) for p in validation.problems if p.check == MTEB_CHECK
    ]
    collection.skipped.extend(item for item in external if isinstance(item, Skipped))
    for item in _unique([item for item in external if isinstance(item, Entry)]):
        if isinstance(item, Entry):
            collection.entries.append(item)
        else:
            collection.skipped.append(item)
    order = attrgetter("model", "revision", "external", "task")
    collection.entries.sort(key=order)
    collection.custom.sort(key=order)
    return collection
