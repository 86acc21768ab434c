"""``harness run --dry-run``: what a run would do, before any model is loaded or anything
encoded, and the checks that refuse a run before any work.

Sizes are the inputs of each task's eval splits. For a local dataset they are counted on the
split as the task type loads it (queries and corpus documents, items, sampled train rows, label
prompts...); otherwise they are the rows its entry declares (``n_samples``, from mteb's
metadata). Tasks that read the same dataset at the same revision (CIFAR10's linear probe,
zero-shot and clustering tasks, say) share their inputs, which the embedding cache encodes
once: the unique total counts each shared split once, at its largest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.app.table import format_table
from harness.core.document_parts import embeddable_side
from harness.core.errors import HarnessError
from harness.engine.results import result_file_name
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import dataset_revision
from harness.tasks.registry import task_type
from harness.tasks.retrieval import Retrieval

# The longest file name (in bytes) that common file systems (ext4, APFS, NTFS) accept.
MAX_FILE_NAME_BYTES = 255


@dataclass(frozen=True)
class PlannedTask:
    """One task of the plan: its inputs per eval split, by kind (``queries``, ``corpus``,
    ``items``...) when counted on the loaded dataset, or as ``rows`` when declared; None when
    unknown (``why`` then says why, when its dataset failed to load)."""

    name: str
    type: str
    dataset: str
    inputs: dict[str, dict[str, int]] | None
    why: str = ""

    @property
    def rows(self) -> dict[str, int] | None:
        """All inputs of each eval split."""
        if self.inputs is None:
            return None
        return {split: sum(kinds.values()) for split, kinds in self.inputs.items()}

    @property
    def total(self) -> int | None:
        """All inputs of the task's eval splits."""
        return None if self.rows is None else sum(self.rows.values())

    def sizes(self) -> str:
        """The inputs per split, as the plan shows them."""
        if self.inputs is None:
            return "unknown"
        return "; ".join(
            f"{split}: " + ", ".join(f"{kind}={count:,}" for kind, count in kinds.items())
            if list(kinds) != ["rows"]
            else f"{split}={kinds['rows']:,}"
            for split, kinds in self.inputs.items()
        )


@dataclass(frozen=True)
class Plan:
    """Every task of a run, with the inputs counted per task and once per shared dataset."""

    tasks: list[PlannedTask]

    def shared_with(self, task: PlannedTask) -> list[str]:
        """The other tasks of the plan that read the same dataset and revision."""
        return [t.name for t in self.tasks if t.dataset == task.dataset and t.name != task.name]

    def total_rows(self) -> int:
        """Inputs summed over the tasks, as a per-task cache would encode them."""
        return sum(task.total or 0 for task in self.tasks)

    def unique_rows(self) -> int:
        """Inputs with each dataset split counted once, as the shared cache encodes them."""
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
                task.sizes(),
                ", ".join(self.shared_with(task)) or "-",
            )
            for task in self.tasks
        ]
        headers = ("task", "type", "dataset@revision", "inputs", "shares its inputs with")
        lines = [
            format_table(headers, rows),
            "",
            f"{len(self.tasks)} tasks; {self.total_rows():,} inputs to score, "
            f"{self.unique_rows():,} inputs to encode with shared datasets counted once.",
        ]
        unknown = [task for task in self.tasks if task.inputs is None]
        if unknown:
            named = [f"{task.name} ({task.why})" if task.why else task.name for task in unknown]
            lines.append(f"Sizes unknown for: {', '.join(named)}.")
        lines.append("Dry run: no model was loaded, and nothing was encoded or written.")
        return "\n".join(lines)


def plan(tasks: Sequence[TaskDefinition]) -> Plan:
    """The plan of a run over ``tasks``; local datasets are loaded to count their inputs."""
    return Plan([_planned(task) for task in tasks])


def _planned(task: TaskDefinition) -> PlannedTask:
    revision = task.dataset.revision or ("local" if task.is_local else "unpinned")
    dataset = f"{task.dataset.path}@{revision[:12]}"
    if task.is_local:
        try:
            inputs = {split: _loaded_inputs(task, split) for split in task.eval_splits}
        except HarnessError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            return PlannedTask(task.name, task.type, dataset, None, first_line)
        return PlannedTask(task.name, task.type, dataset, inputs)
    declared = {s: {"rows": task.n_samples[s]} for s in task.eval_splits if s in task.n_samples}
    return PlannedTask(task.name, task.type, dataset, declared or None)


def _loaded_inputs(task: TaskDefinition, split: str) -> dict[str, int]:
    """The inputs of ``split`` by kind, counted on the split as the task's type loads it (the
    loaded dataset then serves the run as well, see ``harness.tasks.datasets_memo``)."""
    return task_type(task).load(task, split).input_counts()


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
    """Why ``model`` (which embeds ``modalities``) cannot run ``task``; None when it can.

    A retrieval task whose documents are a page plus a text needs only the part the model
    embeds (``harness.core.document_parts``): a text-only model runs it on the texts."""
    document = task.sides.document
    if isinstance(task_type(task), Retrieval):
        document = tuple(embeddable_side(document, modalities))
    missing = sorted({*task.sides.query, *document} - set(modalities))
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


def data_dir_problems(tasks: list[TaskDefinition], data_dirs: dict[str, Path]) -> list[str]:
    """What is wrong with ``--data-dir``: tasks not being run, folders that do not exist."""
    problems = []
    unknown = sorted(set(data_dirs) - {task.name for task in tasks})
    if unknown:
        problems.append(f"--data-dir names task(s) that are not being run: {', '.join(unknown)}")
    for name, path in data_dirs.items():
        if not path.is_dir():
            problems.append(f"--data-dir {name}={path}: no such directory")
    return problems


def with_data_dirs(tasks: list[TaskDefinition], data_dirs: dict[str, Path]) -> list[TaskDefinition]:
    """The tasks, each named in ``data_dirs`` reading its dataset from that local directory."""
    problems = data_dir_problems(tasks, data_dirs)
    if problems:
        raise HarnessError("\n".join(problems))
    return [
        task.model_copy(
            update={
                "dataset": task.dataset.model_copy(
                    update={"path": str(data_dirs[task.name].resolve()), "revision": None}
                )
            }
        )
        if task.name in data_dirs
        else task
        for task in tasks
    ]
