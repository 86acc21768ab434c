"""Orchestration: resolve tasks and model, evaluate each task, write one result file per task."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.app.plan import check_result_names, modality_problem, with_data_dirs
from harness.app.table import format_table
from harness.core.adapter import Adapter
from harness.core.errors import HarnessError
from harness.core.frame_store import frame_store
from harness.engine.cache import EmbeddingCache, default_cache_dir
from harness.engine.distributed import Shards
from harness.engine.encoding import BatchEncoder, degenerate_warnings
from harness.engine.identity import identity_differences, run_identity
from harness.engine.lazy_model import ModelRecords, model_adapter
from harness.engine.phases import split_phases
from harness.engine.records import (
    IdentityRecord,
    ModelRecord,
    PhasesRecord,
    SettingsRecord,
    TaskRecord,
)
from harness.engine.results import (
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
from harness.model_adapters.registry import load_adapter, model_load_key
from harness.scoring.bootstrap import bootstrap_interval
from harness.tasks.base import TaskType
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import dataset_revision
from harness.tasks.registry import resolve_tasks, task_record, task_type


@dataclass(frozen=True)
class RunSettings:
    """Everything about a run that is not the model or the task list.

    ``output`` None writes no file and reuses no stored result. ``model_options`` (the CLI's
    ``--model-args``) are merged over a model's registered options when it loads by name; the
    adapter records them, so they reach its fingerprint, cache keys and result files.
    """

    output: Path | None = Path("results")
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
    # Stop at the first task that fails, instead of going on with the others.
    fail_fast: bool = False
    model_options: Mapping[str, Any] = field(default_factory=dict)

    def recorded(self) -> SettingsRecord:
        """The settings that shape the numbers, as stored in each result file."""
        return SettingsRecord(
            batch_size=self.batch_size,
            device=self.device,
            dtype=self.dtype,
            num_workers=self.num_workers,
            limit=self.limit,
            skip_bad_inputs=self.skip_bad_inputs,
            data_dirs={task: str(path) for task, path in self.data_dirs.items()},
            cache=self.cache_dir is not None,
        )


# The status of a task that failed; the run went on with the others.
FAILED = "failed"


@dataclass(frozen=True)
class TaskOutcome:
    """One row of the summary: a split of a task, computed now or found on disk; or a task
    that failed (``status`` ``failed``, all its eval splits in ``split``, and the error's
    message as ``reason``)."""

    task: str
    split: str
    main_score: float | None
    seconds: float
    status: str
    # The result file (None when the run writes none).
    path: Path | None
    reason: str = ""
    # What the result file warns of (all-zero or constant vectors), shown under the summary.
    warnings: tuple[str, ...] = ()
    # The task's whole result, the same for each of its splits (None for a failed task).
    result: ResultFile | None = field(default=None, repr=False, compare=False)

    @property
    def phases(self) -> PhasesRecord | None:
        """Where the split's time went, as its result records it (None when it does not)."""
        return None if self.result is None else self.result.harness.phases.get(self.split)


@dataclass
class RunReport:
    """What a run did (``model_folder`` None when it wrote no file)."""

    model_folder: Path | None
    outcomes: list[TaskOutcome]
    encoder: BatchEncoder | None

    @property
    def failed(self) -> list[TaskOutcome]:
        """The tasks that failed, with their reasons."""
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def results(self) -> list[ResultFile]:
        """Each task's result (computed now or found on disk), in task order."""
        found = {id(o.result): o.result for o in self.outcomes if o.result is not None}
        return list(found.values())

    def summary(self) -> str:
        """The table printed at the end of a run, then each task's warnings, then each failed
        task with its reason."""
        rows = [
            (o.task, o.split, o.main_score, f"{o.seconds:.1f}", o.status, *_phase_cells(o.phases))
            for o in self.outcomes
        ]
        table = format_table(
            ("task", "split", "main score", "seconds", "status", *PHASE_HEADERS), rows
        )
        return table + warnings_note(self.outcomes) + failures_note(self.outcomes)


# The summary's columns of a split's phases (seconds, then items encoded per second).
PHASE_HEADERS = ("load s", "model s", "decode s", "encode s", "score s", "items/s")


def _phase_cells(phases: PhasesRecord | None) -> tuple[str, ...]:
    """A split's phases as summary cells ("-" each when its result records none)."""
    if phases is None:
        return ("-",) * len(PHASE_HEADERS)
    seconds = (phases.load, phases.model_load, phases.decode, phases.encode, phases.score)
    rate = "-" if phases.items_per_second is None else f"{phases.items_per_second:.1f}"
    return (*(f"{value:.1f}" for value in seconds), rate)


def warnings_note(outcomes: Sequence[TaskOutcome]) -> str:
    """The lines under a summary that give each task's warnings, once per task."""
    lines = dict.fromkeys(f"  {o.task}: {warning}" for o in outcomes for warning in o.warnings)
    return "\n\nwarnings:\n" + "\n".join(lines) if lines else ""


def failures_note(outcomes: Sequence[TaskOutcome]) -> str:
    """The lines under a summary that name each failed task and its one-line reason."""
    failed = [o for o in outcomes if o.status == FAILED]
    if not failed:
        return ""
    lines = [f"  {o.task}: {o.reason.splitlines()[0]}" for o in failed]
    return f"\n\n{len(failed)} task(s) failed:\n" + "\n".join(lines)


def run(
    model: str | Adapter,
    task_specs: Sequence[str],
    settings: RunSettings | None = None,
    shards: Shards | None = None,
) -> RunReport:
    """Evaluate ``model`` on each task named in ``task_specs`` (names or YAML files), each named
    in ``settings.data_dirs`` reading that folder: :func:`run_tasks` on the resolved tasks."""
    settings = settings or RunSettings()
    tasks = with_data_dirs(resolve_tasks(task_specs), settings.data_dirs)
    return run_tasks(model, tasks, settings, shards)


def run_tasks(
    model: str | Adapter,
    tasks: Sequence[TaskDefinition],
    settings: RunSettings,
    shards: Shards | None = None,
) -> RunReport:
    """Evaluate ``model`` on each resolved task (its ``--data-dir`` already applied, as a Ray job
    carries them). A task whose result file holds the same run identity is skipped (unless
    ``overwrite``); one whose identity differs is recomputed.

    A task that fails with a ``HarnessError`` is reported (status ``failed``, with its reason)
    and the run goes on with the others, unless ``settings.fail_fast``. With ``shards`` (a
    torchrun group) every rank runs this in lockstep and shares the encoding; rank 0 alone
    writes files, and the first failure stops every rank (a fault met by one rank alone, in
    its share of the images, would otherwise leave the others waiting for it).
    """
    main_rank = shards is None or shards.is_main
    writes = main_rank and settings.output is not None
    check_result_names(tasks)
    if settings.output is not None:
        ensure_writable(settings.output)
    with _library_bars(shown=settings.show_progress):
        adapter = _adapter(model, settings)
        folder = None if settings.output is None else model_folder(settings.output, adapter.meta)
        if writes and folder is not None:
            write_json_atomic(folder / "model_meta.json", model_meta_payload(adapter.meta))
        encoder = BatchEncoder(
            adapter,
            cache=EmbeddingCache(settings.cache_dir) if settings.cache_dir else None,
            device=settings.device,
            batch_size=settings.batch_size,
            num_workers=settings.num_workers,
            skip_bad_inputs=settings.skip_bad_inputs,
            show_progress=settings.show_progress and main_rank,
            shards=shards,
        )
        outcomes: list[TaskOutcome] = []
        with _frames_kept(tasks, settings):
            for task in tasks:
                outcomes.extend(_run_or_report(task, encoder, settings, shards, writes=writes))
    return RunReport(folder, outcomes, encoder)


def _adapter(model: str | Adapter, settings: RunSettings) -> Adapter:
    """The model by name with the run's model options, or the adapter given. With an
    embedding cache, a model whose metadata a former run recorded there loads on its first
    cache miss (``harness.engine.lazy_model``): a run served wholly from the cache never loads
    it."""
    if not isinstance(model, str):
        if settings.model_options:
            raise HarnessError(
                f"model options {sorted(settings.model_options)} apply to a model loaded by "
                f"name; {model.meta.name} is an adapter object already built: build it with "
                "those settings instead"
            )
        return model

    def load() -> Adapter:
        return load_adapter(
            model, device=settings.device, dtype=settings.dtype, options=settings.model_options
        )

    if settings.cache_dir is None:
        return load()
    try:
        key = model_load_key(
            model, device=settings.device, dtype=settings.dtype, options=settings.model_options
        )
    except HarnessError:  # not a model the registry can key: loading it says why
        return load()
    return model_adapter(load, key, ModelRecords(settings.cache_dir))


@contextmanager
def _library_bars(*, shown: bool) -> Iterator[None]:
    """The progress bars of datasets, transformers and the hub (loading a split or weights),
    turned off for the block unless ``shown``, then put back as they were."""
    if shown:
        yield
        return
    import datasets
    import huggingface_hub.utils as hub

    datasets_bars = datasets.is_progress_bar_enabled()
    hub_bars_off = hub.are_progress_bars_disabled()
    # transformers takes the hub's setting when imported; it is imported here only if it was
    # already (a run served from the cache never imports it).
    transformers_bars = (
        _transformers_logging().is_progress_bar_enabled()
        if _has_transformers()
        else not hub_bars_off
    )
    datasets.disable_progress_bars()
    hub.disable_progress_bars()
    if _has_transformers():
        _transformers_logging().disable_progress_bar()
    try:
        yield
    finally:
        if datasets_bars:
            datasets.enable_progress_bars()
        if _has_transformers() and transformers_bars:
            _transformers_logging().enable_progress_bar()
        if hub_bars_off:
            hub.disable_progress_bars()
        else:
            hub.enable_progress_bars()


def _has_transformers() -> bool:
    return "transformers" in sys.modules


def _transformers_logging() -> Any:
    """transformers' logging module (imported already: see :func:`_has_transformers`)."""
    import transformers.utils.logging

    return transformers.utils.logging


def _frames_kept(
    tasks: Sequence[TaskDefinition], settings: RunSettings
) -> AbstractContextManager[Any]:
    """The run's frame store when a task has video inputs (each clip is then decoded once,
    however many tasks share it), kept beside the embedding cache."""
    if not any("video" in task.input_modalities for task in tasks):
        return nullcontext()
    return frame_store(settings.cache_dir)


def _run_or_report(
    task: TaskDefinition,
    encoder: BatchEncoder,
    settings: RunSettings,
    shards: Shards | None,
    *,
    writes: bool,
) -> list[TaskOutcome]:
    """One task's outcomes; a ``HarnessError`` becomes a failed outcome unless it must stop
    the run."""
    meta = encoder.adapter.meta
    path = None if settings.output is None else result_path(settings.output, meta, task.name)
    start = time.perf_counter()
    try:
        return _run_task(task, encoder, settings, path, writes=writes)
    except HarnessError as error:
        if settings.fail_fast or shards is not None:
            raise
        seconds = time.perf_counter() - start
        splits = ",".join(task.eval_splits)
        reason = str(error).strip() or repr(error)
        return [TaskOutcome(task.name, splits, None, seconds, FAILED, path, reason)]


def _run_task(
    task: TaskDefinition,
    encoder: BatchEncoder,
    settings: RunSettings,
    path: Path | None,
    *,
    writes: bool,
) -> list[TaskOutcome]:
    """One task: its stored result when that has this run's identity, else a fresh one."""
    meta = encoder.adapter.meta
    problem = modality_problem(task, meta.name, meta.modalities)
    if problem:
        raise HarnessError(problem)
    kind = task_type(task)
    kind.check_adapter(task, meta.similarity)
    revision = dataset_revision(task)
    record = task_record(task)
    identity = run_identity(
        task=record,
        dataset_revision=revision,
        local_dataset=task.is_local,
        model=meta.to_dict(),
        limit=settings.limit,
        skip_bad_inputs=settings.skip_bad_inputs,
        modality_options=meta.options_for(task.input_modalities),
    )
    status = "done"
    if path is not None and path.exists() and not settings.overwrite:
        stored, why = _stored_result(path, identity)
        if stored is not None:
            return _existing(stored, path)
        status = f"recomputed ({why})"
    prepared = _Prepared(task, kind, record, revision, identity)
    return _evaluate(prepared, encoder, settings, path, writes=writes, status=status)


@dataclass(frozen=True)
class _Prepared:
    """A task ready to evaluate: its type, the record and identity its result will carry."""

    task: TaskDefinition
    kind: TaskType
    record: dict[str, Any]
    revision: str
    identity: dict[str, Any]


def _stored_result(path: Path, identity: dict[str, Any]) -> tuple[ResultFile | None, str]:
    """The stored result when it has ``identity``; else None and why it is recomputed."""
    try:
        stored = read_result(path)
    except HarnessError:
        return None, "the stored file is unreadable"
    if stored.harness.identity is None:
        return None, "the stored file records no run identity"
    changed = identity_differences(stored.harness.identity.written(), identity)
    if not changed:
        return stored, ""
    more = f"; +{len(changed) - 2} more" if len(changed) > 2 else ""
    return None, "; ".join(changed[:2]) + more


def _existing(result: ResultFile, path: Path) -> list[TaskOutcome]:
    return [
        TaskOutcome(
            result.task_name,
            split,
            score,
            result.evaluation_time,
            "exists",
            path,
            warnings=tuple(result.harness.warnings),
            result=result,
        )
        for split, score in result.main_scores().items()
    ]


def _evaluate(
    prepared: _Prepared,
    encoder: BatchEncoder,
    settings: RunSettings,
    path: Path | None,
    *,
    writes: bool,
    status: str,
) -> list[TaskOutcome]:
    task, kind = prepared.task, prepared.kind
    start = time.perf_counter()
    scores, skipped, seconds = {}, {}, {}
    # split -> subset -> the stored interval, and the units it was resampled from
    intervals: dict[str, dict[str, dict[str, Any]]] = {}
    units: dict[str, dict[str, dict[str, Any]]] = {}
    chance: dict[str, float] = {}  # split -> the main score's chance level, where defined
    phases: dict[str, PhasesRecord] = {}
    stats_before = replace(encoder.stats)
    for split in task.eval_splits:
        split_start = time.perf_counter()
        split_stats, split_times = replace(encoder.stats), replace(encoder.times)
        loaded = kind.load(task, split, settings.limit)
        load_seconds = time.perf_counter() - split_start
        outcome = kind.score(task, loaded, encoder)
        scores[split] = outcome.subsets
        if outcome.skipped_inputs:
            skipped[split] = outcome.skipped_inputs
        level = outcome.split_chance()
        if level is not None:
            chance[split] = level
        for subset, unit_scores in outcome.units.items():
            interval = bootstrap_interval(unit_scores)
            intervals.setdefault(split, {})[subset] = interval_payload(interval, unit_scores)
            units.setdefault(split, {})[subset] = units_payload(unit_scores)
        seconds[split] = time.perf_counter() - split_start
        phases[split] = split_phases(
            load=load_seconds,
            encoder_times=encoder.times.since(split_times),
            items_encoded=encoder.stats.since(split_stats)["items_encoded"],
            total=seconds[split],
        )
    encoding = encoder.stats.since(stats_before)
    result = ResultFile(
        task_name=task.name,
        dataset_revision=prepared.revision,
        mteb_version=mteb_version(),
        scores=scores,
        evaluation_time=time.perf_counter() - start,
        date=dt.datetime.now(dt.UTC),
        harness=HarnessBlock(
            harness_version=harness_version(),
            model=ModelRecord.of(encoder.adapter.meta),
            task=TaskRecord.model_validate(
                {**prepared.record, "chance_level": chance} if chance else prepared.record
            ),
            run_settings=settings.recorded(),
            environment=environment(task.input_modalities),
            encoding=encoding,
            warnings=degenerate_warnings(encoding, encoder.adapter.meta.name),
            skipped_inputs=skipped,
            intervals=intervals,
            units=units,
            identity=IdentityRecord.model_validate(prepared.identity),
            phases=phases,
        ),
    )
    if writes and path is not None:
        write_result(path, result)
    return [
        TaskOutcome(
            task.name,
            split,
            score,
            seconds[split],
            status,
            path,
            warnings=tuple(result.harness.warnings),
            result=result,
        )
        for split, score in result.main_scores().items()
    ]
