"""Orchestration: resolve tasks and model, evaluate each task, write one result file per task."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness.cache import EmbeddingCache, default_cache_dir
from harness.distributed import Shards
from harness.encoding import Encoder
from harness.errors import HarnessError
from harness.results import (
    HarnessBlock,
    ResultFile,
    ensure_writable,
    environment,
    harness_version,
    interval_payload,
    model_folder,
    model_meta_payload,
    mteb_version,
    read_result,
    result_path,
    units_payload,
    write_json_atomic,
    write_result,
)
from harness.scoring.bootstrap import bootstrap_interval
from harness.table import format_table
from model_adapters.base import Adapter
from model_adapters.registry import load_adapter
from tasks.definition import TaskDefinition
from tasks.loading import dataset_revision
from tasks.registry import resolve_tasks, task_type


@dataclass(frozen=True)
class RunSettings:
    """Everything about a run that is not the model or the task list."""

    output: Path = Path("results")
    batch_size: int = 32
    device: str = "cpu"
    dtype: str = "float32"
    num_workers: int = 2
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    overwrite: bool = False
    limit: int | None = None
    skip_bad_inputs: bool = False
    show_progress: bool = True
    data_dirs: dict[str, Path] = field(default_factory=dict)

    def recorded(self) -> dict[str, object]:
        """The settings that shape the numbers, as stored in each result file."""
        data = asdict(self)
        for name in ("output", "overwrite", "show_progress"):
            data.pop(name)
        data["cache"] = self.cache_dir is not None
        data.pop("cache_dir")
        data["data_dirs"] = {task: str(path) for task, path in self.data_dirs.items()}
        return data


@dataclass(frozen=True)
class TaskOutcome:
    """One row of the summary: a split of a task, computed now or found on disk."""

    task: str
    split: str
    main_score: float | None
    seconds: float
    status: str
    path: Path


@dataclass
class RunReport:
    """What a run did."""

    model_folder: Path
    outcomes: list[TaskOutcome]
    encoder: Encoder | None

    def summary(self) -> str:
        """The table printed at the end of a run."""
        rows = [
            (o.task, o.split, o.main_score, f"{o.seconds:.1f}", o.status) for o in self.outcomes
        ]
        return format_table(("task", "split", "main score", "seconds", "status"), rows)


def run(
    model: str | Adapter,
    task_specs: Sequence[str],
    settings: RunSettings | None = None,
    shards: Shards | None = None,
) -> RunReport:
    """Evaluate ``model`` on each task; finished tasks are skipped unless ``overwrite``.

    With ``shards`` (a torchrun group) every rank runs this in lockstep and shares the encoding;
    rank 0 alone writes files.
    """
    settings = settings or RunSettings()
    writes = shards is None or shards.is_main
    tasks = with_data_dirs(resolve_tasks(task_specs), settings.data_dirs)
    ensure_writable(settings.output)
    adapter = (
        load_adapter(model, device=settings.device, dtype=settings.dtype)
        if isinstance(model, str)
        else model
    )
    folder = model_folder(settings.output, adapter.meta)
    if writes:
        write_json_atomic(folder / "model_meta.json", model_meta_payload(adapter.meta))
    encoder = Encoder(
        adapter,
        cache=EmbeddingCache(settings.cache_dir) if settings.cache_dir else None,
        device=settings.device,
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        skip_bad_inputs=settings.skip_bad_inputs,
        show_progress=settings.show_progress and writes,
        shards=shards,
    )
    outcomes: list[TaskOutcome] = []
    for task in tasks:
        path = result_path(settings.output, adapter.meta, task.name)
        if path.exists() and not settings.overwrite:
            outcomes.extend(_existing(path))
            continue
        outcomes.extend(_evaluate(task, encoder, settings, path, writes=writes))
    return RunReport(folder, outcomes, encoder)


def with_data_dirs(tasks: list[TaskDefinition], data_dirs: dict[str, Path]) -> list[TaskDefinition]:
    """The tasks, each named in ``data_dirs`` reading its dataset from that local directory."""
    unknown = sorted(set(data_dirs) - {task.name for task in tasks})
    if unknown:
        raise HarnessError(f"--data-dir names task(s) that are not being run: {', '.join(unknown)}")
    for name, path in data_dirs.items():
        if not path.is_dir():
            raise HarnessError(f"--data-dir {name}={path}: no such directory")
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


def _existing(path: Path) -> list[TaskOutcome]:
    result = read_result(path)
    return [
        TaskOutcome(result.task_name, split, score, result.evaluation_time, "exists", path)
        for split, score in result.main_scores().items()
    ]


def _evaluate(
    task: TaskDefinition, encoder: Encoder, settings: RunSettings, path: Path, *, writes: bool
) -> list[TaskOutcome]:
    kind = task_type(task)
    kind.check_adapter(task, encoder.adapter.meta.similarity)
    revision = dataset_revision(task)
    start = time.perf_counter()
    scores, skipped, seconds, intervals, units = {}, {}, {}, {}, {}
    stats_before = replace(encoder.stats)
    for split in task.eval_splits:
        split_start = time.perf_counter()
        outcome = kind.evaluate(task, encoder, split=split, limit=settings.limit)
        scores[split] = outcome.subsets
        if outcome.skipped_inputs:
            skipped[split] = outcome.skipped_inputs
        for subset, unit_scores in outcome.units.items():
            interval = bootstrap_interval(unit_scores)
            intervals.setdefault(split, {})[subset] = interval_payload(interval, unit_scores)
            units.setdefault(split, {})[subset] = units_payload(unit_scores)
        seconds[split] = time.perf_counter() - split_start
    task_record = task.model_dump(mode="json")
    task_record["protocol"] = kind.protocol(task).model_dump(mode="json")
    task_record["main_score"] = kind.main_score(task)
    result = ResultFile(
        task_name=task.name,
        dataset_revision=revision,
        mteb_version=mteb_version(),
        scores=scores,
        evaluation_time=time.perf_counter() - start,
        date=dt.datetime.now(dt.UTC),
        harness=HarnessBlock(
            harness_version=harness_version(),
            model=encoder.adapter.meta.to_dict(),
            task=task_record,
            run_settings=settings.recorded(),
            environment=environment(),
            encoding=encoder.stats.since(stats_before),
            skipped_inputs=skipped,
            intervals=intervals,
            units=units,
        ),
    )
    if writes:
        write_result(path, result)
    return [
        TaskOutcome(task.name, split, score, seconds[split], "done", path)
        for split, score in result.main_scores().items()
    ]
