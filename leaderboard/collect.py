"""Results folders in, validated entries out; every file that cannot be used is listed, with why.

Every file gets the checks of ``harness validate`` (:func:`harness.engine.validation.validate`):
links are never followed, and a file with any problem (a forged or inconsistent score, a ``--limit``
run, another revision of the dataset, a task setting or split not the built-in definition's, a
duplicate, another fingerprint under the same model revision) is a :class:`Skipped` entry with the
reason, never a score. A built-in task's type and eval splits come from its definition; tasks that
are not built in are collected apart and never ranked. Each revision of a model is its own row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from harness.engine.main_score import task_score
from harness.engine.records import ModelRecord
from harness.engine.results import ResultFile
from harness.engine.validation import MODEL_META, Validation, validate

# A row of the leaderboard: a model's name and revision.
ModelKey = tuple[str, str]


@dataclass(frozen=True)
class Entry:
    """One usable result: a model revision's scores on one task."""

    model: str
    revision: str
    task: str
    task_type: str
    score: float | None
    result: ResultFile
    path: Path

    @property
    def key(self) -> ModelKey:
        """The leaderboard row this result belongs to."""
        return (self.model, self.revision)

    @property
    def model_meta(self) -> ModelRecord:
        """The model's metadata as the run recorded it."""
        return self.result.harness.model


@dataclass(frozen=True)
class Skipped:
    """A file left out of the site, and why."""

    path: Path
    reason: str


@dataclass
class Collection:
    """Everything read from the results folders: ranked entries (built-in tasks), entries of
    custom tasks (shown apart), and every file left out."""

    entries: list[Entry] = field(default_factory=list)
    custom: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def skipped_files(self) -> int:
        """How many files were left out (a file may be skipped for several reasons)."""
        return len({skipped.path for skipped in self.skipped})

    def table(self) -> dict[ModelKey, dict[str, float | None]]:
        """``{(model, revision): {task: score}}`` of the ranked entries."""
        table: dict[ModelKey, dict[str, float | None]] = {}
        for entry in self.entries:
            table.setdefault(entry.key, {})[entry.task] = entry.score
        return table

    def task_types(self) -> dict[str, str]:
        """``{task: type}`` of every ranked task with a result."""
        return {entry.task: entry.task_type for entry in self.entries}


def _skipped(validation: Validation) -> list[Skipped]:
    """Every problem, and every parsed result left out because of its folder's metadata."""
    skipped = [
        Skipped(problem.file, f"{problem.message} (fix: {problem.fix})")
        for problem in validation.problems
    ]
    flagged = {problem.file for problem in validation.problems}
    usable = {file for file, _ in validation.usable()}
    for file, _ in validation.results:
        if file not in usable and file not in flagged:
            reason = f"its folder's {MODEL_META} is not valid (listed above)"
            skipped.append(Skipped(file, reason))
    return skipped


def collect(roots: Sequence[Path], exclude: Path | None = None) -> Collection:
    """Validate every result file under ``roots`` (``exclude``, the site being built, is not
    read) and collect the usable ones."""
    from tasks.registry import builtin_tasks

    known = builtin_tasks()
    validation = validate(list(roots), custom=True, exclude=exclude)
    collection = Collection(skipped=_skipped(validation))
    for path, result in validation.usable():
        task = known.get(result.task_name)
        record = result.harness.task
        splits = task.eval_splits if task else record.eval_splits or []
        entry = Entry(
            model=str(result.harness.model.name),
            revision=str(result.harness.model.revision),
            task=result.task_name,
            task_type=task.type if task else record.type or "unknown",
            score=task_score(result.scores, splits),
            result=result,
            path=path,
        )
        (collection.entries if task else collection.custom).append(entry)
    order = attrgetter("model", "revision", "task")
    collection.entries.sort(key=order)
    collection.custom.sort(key=order)
    return collection
