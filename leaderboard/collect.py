"""Results folders in, validated entries out; every file that cannot be used is listed, with why.

A results folder holds ``<org__model>/<revision>/<Task>.json`` (mteb's layout). Each file is
read with :func:`harness.results.read_result`; a bad file becomes a :class:`Skipped` entry and
never stops the build. When two files give the same model and task, the newer one (by its
``date``) is kept and the other is listed as superseded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.results import SITE_MARKER, ResultFile, read_result
from leaderboard.aggregate import task_score

MODEL_META_FILE = "model_meta.json"
# Written into every built site, so a later build may replace it and a scan may skip it.


@dataclass(frozen=True)
class Entry:
    """One usable result: a model's scores on one task."""

    model: str
    task: str
    task_type: str
    score: float | None
    result: ResultFile
    path: Path

    @property
    def model_meta(self) -> dict[str, Any]:
        """The model's metadata as the run recorded it."""
        return self.result.harness.model


@dataclass(frozen=True)
class Skipped:
    """A file left out of the site, and why."""

    path: Path
    reason: str


@dataclass
class Collection:
    """Everything read from the results folders."""

    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def table(self) -> dict[str, dict[str, float | None]]:
        """``{model: {task: score}}``."""
        table: dict[str, dict[str, float | None]] = {}
        for entry in self.entries:
            table.setdefault(entry.model, {})[entry.task] = entry.score
        return table

    def task_types(self) -> dict[str, str]:
        """``{task: type}`` of every task with a result."""
        return {entry.task: entry.task_type for entry in self.entries}


def _entry(path: Path) -> Entry:
    """Read one result file into an entry (a :class:`HarnessError` when it is unusable)."""
    result = read_result(path)
    task = result.harness.task
    name = result.harness.model.get("name")
    if not isinstance(name, str) or not name:
        raise HarnessError(f"{path}: the harness block names no model")
    eval_splits = task.get("eval_splits")
    if not isinstance(eval_splits, list):
        eval_splits = []
    return Entry(
        model=name,
        task=result.task_name,
        task_type=str(task.get("type") or "unknown"),
        score=task_score(result.scores, eval_splits),
        result=result,
        path=path,
    )


def _result_files(root: Path, exclude: Path | None) -> list[Path]:
    """The ``<model>/<revision>/<Task>.json`` files under ``root``, outside built sites."""
    files = []
    for path in sorted(root.glob("*/*/*.json")):
        folder = path.parents[1]
        if path.name == MODEL_META_FILE or (folder / SITE_MARKER).exists():
            continue
        if exclude is not None and path.resolve().is_relative_to(exclude.resolve()):
            continue
        files.append(path)
    return files


def _when(entry: Entry) -> dt.datetime:
    """The result's date, read as UTC when it names no time zone."""
    date = entry.result.date
    return date if date.tzinfo is not None else date.replace(tzinfo=dt.UTC)


def _add(collection: Collection, seen: dict[tuple[str, str], Entry], entry: Entry) -> None:
    """Add ``entry``, keeping the newer of two results for the same model and task."""
    key = (entry.model, entry.task)
    previous = seen.get(key)
    if previous is None:
        seen[key] = entry
        return
    newer, older = (entry, previous) if _when(entry) > _when(previous) else (previous, entry)
    seen[key] = newer
    collection.skipped.append(Skipped(older.path, f"superseded by the newer {newer.path}"))


def collect(roots: Sequence[Path], exclude: Path | None = None) -> Collection:
    """Read every result file under ``roots``; ``exclude`` (the site being built) is skipped."""
    collection = Collection()
    seen: dict[tuple[str, str], Entry] = {}
    for root in roots:
        if not root.is_dir():
            raise HarnessError(f"results folder {root} does not exist or is not a folder")
        for path in _result_files(root, exclude):
            try:
                _add(collection, seen, _entry(path))
            except HarnessError as error:
                collection.skipped.append(Skipped(path, str(error)))
    collection.entries = sorted(seen.values(), key=lambda e: (e.model, e.task))
    return collection
