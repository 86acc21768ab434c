"""``harness run --dry-run``: what a run would do, before any model or dataset is loaded, and
the checks that refuse a run before any work.

Sizes are the rows of each task's eval splits as its entry declares them (``n_samples``, from
mteb's metadata), or for a local dataset the rows of its parquet files. Tasks that read the same
dataset at the same revision (CIFAR10's linear probe, zero-shot and clustering tasks, say) share
their inputs, which the embedding cache encodes once: the total counts each shared split once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from harness.app.table import format_table
from harness.core.errors import HarnessError
from harness.engine.results import result_file_name
from tasks.definition import TaskDefinition
from tasks.loading import dataset_revision

# The longest file name (in bytes) that common file systems (ext4, APFS, NTFS) accept.
MAX_FILE_NAME_BYTES = 255


@dataclass(frozen=True)
class PlannedTask:
    """One task of the plan: its rows per eval split (None when unknown) and its dataset."""

    name: str
    type: str
    dataset: str
    rows: dict[str, int] | None

    @property
    def total(self) -> int | None:
        """All rows of the task's eval splits."""
        return None if self.rows is None else sum(self.rows.values())


@dataclass(frozen=True)
class Plan:
    """Every task of a run, with the inputs counted per task and once per shared dataset."""

    tasks: list[PlannedTask]

    def shared_with(self, task: PlannedTask) -> list[str]:
        """The other tasks of the plan that read the same dataset and revision."""
        return [t.name for t in self.tasks if t.dataset == task.dataset and t.name != task.name]

    def total_rows(self) -> int:
        """Rows summed over the tasks, as a per-task cache would encode them."""
        return sum(task.total or 0 for task in self.tasks)

    def unique_rows(self) -> int:
        """Rows with each dataset split counted once, as the shared cache encodes them."""
        largest: dict[tuple[str, str], int] = {}
        for task in self.tasks:
            for split, rows in (task.rows or {}).items():
                key = (task.dataset, split)
                largest[key] = max(largest.get(key, 0), rows)
        return sum(largest.values())

    def report(self) -> str:
        """The table and totals that ``--dry-run`` prints."""
        rows = [
            (
                task.name,
                task.type,
                task.dataset,
                ", ".join(f"{s}={n}" for s, n in (task.rows or {}).items()) or "unknown",
                ", ".join(self.shared_with(task)) or "-",
            )
            for task in self.tasks
        ]
        headers = ("task", "type", "dataset@revision", "rows", "shares its inputs with")
        unknown = [task.name for task in self.tasks if task.rows is None]
        lines = [
            format_table(headers, rows),
            "",
            f"{len(self.tasks)} tasks; {self.total_rows():,} rows to score, "
            f"{self.unique_rows():,} inputs to encode with shared datasets counted once.",
        ]
        if unknown:
            lines.append(f"Sizes unknown for: {', '.join(unknown)}.")
        lines.append("Dry run: nothing was loaded, encoded or written.")
        return "\n".join(lines)


def plan(tasks: Sequence[TaskDefinition]) -> Plan:
    """The plan of a run over ``tasks``."""
    return Plan([_planned(task) for task in tasks])


def _planned(task: TaskDefinition) -> PlannedTask:
    revision = task.dataset.revision or ("local" if task.is_local else "unpinned")
    dataset = f"{task.dataset.path}@{revision[:12]}"
    if task.n_samples:
        rows: dict[str, int] | None = {
            s: task.n_samples[s] for s in task.eval_splits if s in task.n_samples
        }
    elif task.is_local:
        rows = {"all": _parquet_rows(Path(task.dataset.path))}
    else:
        rows = None
    return PlannedTask(task.name, task.type, dataset, rows)


def _parquet_rows(folder: Path) -> int:
    """Rows of every parquet file under a local dataset folder (read from file footers)."""
    return sum(pq.ParquetFile(path).metadata.num_rows for path in sorted(folder.rglob("*.parquet")))


def result_name_problems(tasks: Sequence[TaskDefinition]) -> list[str]:
    """Tasks whose result files would collide (one file name, or names equal but for case, as
    a case-insensitive file system sees them), and names too long for a file name."""
    by_file: dict[str, list[str]] = {}
    problems = []
    for task in tasks:
        name = result_file_name(task.name)
        if len(name.encode()) > MAX_FILE_NAME_BYTES:
            problems.append(
                f"task {task.name[:60]}...: its result file name would be {len(name.encode())} "
                f"bytes, over the {MAX_FILE_NAME_BYTES} a file system allows. Give the task a "
                "shorter name."
            )
        by_file.setdefault(name.casefold(), []).append(task.name)
    for names in by_file.values():
        if len(names) > 1:
            problems.append(
                f"tasks {' and '.join(repr(n) for n in names)} would write the same result file "
                f"({result_file_name(names[0])}). Rename one of them."
            )
    return problems


def check_result_names(tasks: Sequence[TaskDefinition]) -> None:
    """Refuse, before any work, a task list whose result files would collide or not fit."""
    problems = result_name_problems(tasks)
    if problems:
        raise HarnessError("refused before any work:\n  " + "\n  ".join(problems))


def modality_problem(task: TaskDefinition, model: str, modalities: Sequence[str]) -> str | None:
    """Why ``model`` (which embeds ``modalities``) cannot run ``task``; None when it can."""
    missing = sorted(task.input_modalities - set(modalities))
    if not missing:
        return None
    return (
        f"task {task.name} (category {task.category}) needs {' and '.join(missing)} inputs, "
        f"but model {model} embeds {' and '.join(modalities)} only. Leave the task out, or "
        f"run a model that embeds {' and '.join(missing)}."
    )


def preflight(
    model: str, tasks: Sequence[TaskDefinition], modalities: Sequence[str] | None
) -> list[str]:
    """Every problem a run of ``model`` on ``tasks`` would meet before scoring: colliding or
    too long result names, a category the model cannot embed (when ``modalities`` is known),
    and a dataset that is neither an existing local folder nor a pinned hub revision."""
    problems = result_name_problems(tasks)
    for task in tasks:
        if modalities is not None and (problem := modality_problem(task, model, modalities)):
            problems.append(problem)
        if not task.is_local:
            try:
                dataset_revision(task)
            except HarnessError as error:
                problems.append(str(error))
    return problems
