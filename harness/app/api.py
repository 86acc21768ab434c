"""The Python API: :func:`evaluate` runs a model on tasks and returns their whole results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from harness.app.plan import with_data_dirs
from harness.app.runner import RunSettings, run_tasks
from harness.core.adapter import Adapter, AdapterMeta
from harness.core.errors import HarnessError
from harness.engine.results import ResultFile
from harness.tasks.definition import TaskDefinition
from harness.tasks.registry import builtin_tasks, resolve_tasks

TaskSpec = str | Path | TaskDefinition
# The RunSettings fields a caller may set; the output folder has its own argument, and a
# failing task always raises.
SETTINGS = tuple(f.name for f in fields(RunSettings) if f.name not in ("output", "fail_fast"))
# What evaluate changes from a CLI run: no progress bars, no embedding cache (no file written).
_DEFAULTS = RunSettings(output=None, cache_dir=None, show_progress=False, fail_fast=True)


def evaluate(
    model: str | Path | Adapter,
    tasks: TaskSpec | Sequence[TaskSpec],
    *,
    output: str | Path | None = None,
    **settings: Any,
) -> list[ResultFile]:
    """Evaluate ``model`` on ``tasks`` and return one :class:`ResultFile` per task, in order.

    ``model`` is a registered name (``harness models``), a local model directory, a hub id, or
    any object with ``encode(items, *, role=None, instruction=None)`` and an ``AdapterMeta`` as
    ``meta``. ``tasks`` are built-in task names, task YAML files (``Path`` or a string ending
    in ``.yaml``) or ``TaskDefinition`` objects. Each result holds every metric of every split
    and subset (``scores``), the main scores (``main_scores()``), the bootstrap intervals
    (``harness.intervals``), the per-unit scores (``unit_scores(split, subset)``) and the model
    and run records, as ``harness run`` writes them (a metric that is undefined is NaN in a
    fresh result and None in one read back; ``model_dump(mode="json")`` gives the file's form).

    Files are written only under ``output`` (the layout of ``harness run --output``; a task
    whose stored result has this run's identity is then read back instead of recomputed).
    ``settings`` are those of ``harness run``: ``batch_size``, ``device``, ``dtype``,
    ``num_workers``, ``limit``, ``skip_bad_inputs``, ``overwrite``, ``data_dirs`` (task name
    to local dataset folder), ``model_options`` (``--model-args`` as a dict),
    ``cache_dir`` (an embedding cache; none by default, and the tasks of a call still share
    their inputs' vectors in memory) and ``show_progress`` (default False). The first task
    that fails raises its ``HarnessError``.

    Example::

        import harness

        results = harness.evaluate("demo-clip", ["DemoShapesT2IRetrieval"], limit=20)
        for result in results:
            print(result.task_name, result.main_scores(), result.harness.intervals)
    """
    run_settings = _settings(output, settings)
    definitions = with_data_dirs(_tasks(tasks), run_settings.data_dirs)
    return run_tasks(_model(model), definitions, run_settings).results


def _settings(output: str | Path | None, settings: Mapping[str, Any]) -> RunSettings:
    """The run settings of a call, checked."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise TypeError(f"evaluate() got unknown setting(s) {unknown}; known: {list(SETTINGS)}")
    chosen = replace(_DEFAULTS, output=None if output is None else Path(output), **settings)
    _check_count("batch_size", chosen.batch_size, least=1)
    _check_count("num_workers", chosen.num_workers, least=0)
    if chosen.limit is not None:
        _check_count("limit", chosen.limit, least=1)
    return replace(
        chosen,
        cache_dir=None if chosen.cache_dir is None else Path(chosen.cache_dir),
        data_dirs={task: Path(path) for task, path in chosen.data_dirs.items()},
        model_options=dict(chosen.model_options),
    )


def _check_count(name: str, value: object, *, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise HarnessError(
            f"evaluate(): {name} must be an integer of at least {least}, got {value!r}"
        )


def _model(model: str | Path | Adapter) -> str | Adapter:
    """A model name, directory or hub id as the runner takes it, or the adapter object."""
    if isinstance(model, str | Path):
        return str(model)
    if isinstance(model, Adapter) and isinstance(model.meta, AdapterMeta):
        return model
    raise HarnessError(
        f"evaluate(): model must be a registered name, a model directory, a hub id or an "
        f"object with encode(items, role=, instruction=) and an AdapterMeta as meta; got "
        f"{type(model).__name__}"
    )


def _tasks(tasks: TaskSpec | Sequence[TaskSpec]) -> list[TaskDefinition]:
    """The task definitions: a built-in name is taken by name (a file of that name in the
    current folder is not read), a path or ``.yaml`` string as a task file."""
    specs = [tasks] if isinstance(tasks, str | Path | TaskDefinition) else list(tasks)
    if not specs:
        raise HarnessError("evaluate(): no task given")
    known = builtin_tasks()
    definitions: list[TaskDefinition] = []
    for spec in specs:
        if isinstance(spec, TaskDefinition):
            definitions.append(spec)
        elif isinstance(spec, str) and spec in known:
            definitions.append(known[spec])
        elif isinstance(spec, str | Path):
            definitions.extend(resolve_tasks([str(spec)]))
        else:
            raise HarnessError(
                f"evaluate(): a task must be a name, a task file or a TaskDefinition; got "
                f"{type(spec).__name__}"
            )
    return definitions
