"""``harness run --executor ray``: (model, task group) jobs fanned out over a Ray cluster.

Tasks that read the same dataset at the same revision form one group, so the inputs they share
are encoded once, by one worker. A job carries its tasks resolved (custom YAML tasks read, each
``--data-dir`` applied, local paths absolute), so a worker never looks a name up again. Each job
asks Ray for the CPUs and GPUs its model needs and runs :func:`harness.app.runner.run_tasks` on
its group; result files are written by the workers into the one results folder (on storage
every worker sees) as each task finishes, and the embedding cache may live there too (its
writes are atomic renames, safe with many writers). Ray retries the job of a worker that dies;
the retry skips every task whose result file was already written, so a finished task never
runs twice and nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.app.plan import with_data_dirs
from harness.app.runner import (
    FAILED,
    RunSettings,
    TaskOutcome,
    failures_note,
    run_tasks,
)
from harness.app.table import format_table
from harness.core.errors import HarnessError
from harness.tasks.definition import TaskDefinition
from harness.tasks.registry import resolve_tasks

# A worker that dies is replaced and its job run again, at most this many times.
MAX_RETRIES = 3


@dataclass(frozen=True)
class Job:
    """One model on one group of tasks that share a dataset, the tasks resolved."""

    model: str
    tasks: tuple[TaskDefinition, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The group's task names."""
        return tuple(task.name for task in self.tasks)

    @property
    def label(self) -> str:
        """A short name for progress lines: the model and the group's first task."""
        more = f" (+{len(self.tasks) - 1})" if len(self.tasks) > 1 else ""
        return f"{self.model} / {self.names[0]}{more}"


def task_groups(tasks: Sequence[TaskDefinition]) -> list[list[TaskDefinition]]:
    """Tasks grouped by dataset and revision, in their first appearance's order."""
    groups: dict[tuple[str, str | None], list[TaskDefinition]] = {}
    for task in tasks:
        groups.setdefault((task.dataset.path, task.dataset.revision), []).append(task)
    return list(groups.values())


def plan_jobs(
    models: Sequence[str], task_specs: Sequence[str], data_dirs: dict[str, Path] | None = None
) -> list[Job]:
    """Every model on every task group: the jobs of a fan-out, each carrying its resolved tasks
    (those named in ``data_dirs`` reading that folder)."""
    tasks = with_data_dirs(resolve_tasks(task_specs), data_dirs or {})
    return [Job(model, tuple(group)) for model in models for group in task_groups(tasks)]


def jobs_table(jobs: Sequence[Job]) -> str:
    """Each job's tasks and inputs to encode (shared datasets counted once), with its share."""
    from harness.app.plan import plan

    inputs = [plan(job.tasks).unique_rows() for job in jobs]
    total = sum(inputs) or 1
    rows = [
        (job.model, ", ".join(job.names), f"{count:,}", f"{count / total:.1%}")
        for job, count in zip(jobs, inputs, strict=True)
    ]
    table = format_table(("model", "tasks", "inputs to encode", "share"), rows)
    return f"{table}\n\n{len(jobs)} jobs; {sum(inputs):,} inputs to encode in all."


JobRunner = Callable[[Job, RunSettings], list[TaskOutcome]]


def run_job(job: Job, settings: RunSettings) -> list[TaskOutcome]:
    """Run one job where it is scheduled, on the tasks it carries (``settings.data_dirs`` is
    recorded, not applied again); finished tasks are skipped, as in any run."""
    return run_tasks(job.model, job.tasks, settings).outcomes


@dataclass(frozen=True)
class FanoutReport:
    """What each job did, in the order the jobs finished."""

    finished: list[tuple[Job, list[TaskOutcome]]]

    @property
    def failed(self) -> list[TaskOutcome]:
        """The tasks that failed in any job, with their reasons."""
        return [o for _, outcomes in self.finished for o in outcomes if o.status == FAILED]

    def summary(self) -> str:
        """One row per task and split, across all jobs; then each failed task's reason."""
        rows = [
            (job.model, o.task, o.split, o.main_score, f"{o.seconds:.1f}", o.status)
            for job, outcomes in self.finished
            for o in outcomes
        ]
        rows.sort(key=lambda row: row[:3])
        headers = ("model", "task", "split", "main score", "seconds", "status")
        table = format_table(headers, rows)
        return table + failures_note(self.failed)


def run_on_ray(
    jobs: Sequence[Job],
    settings: RunSettings,
    *,
    address: str | None = None,
    gpus_per_job: float = 0.0,
    job_runner: JobRunner = run_job,
    max_retries: int = MAX_RETRIES,
) -> FanoutReport:
    """Submit every job to Ray (a cluster at ``address``, else a local one) and wait for all.

    Progress is printed as jobs finish. A task that fails is listed in its job's outcomes
    (``failed``, with its reason) and the job goes on; a job that raises (``--fail-fast``, or
    an error that is not the input's) fails the fan-out after the jobs already running have
    finished; their results stay written.
    """
    try:
        import ray
    except ImportError as error:
        raise HarnessError(
            "--executor ray needs Ray: pip install 'harness[ray]' (or ray==2.60.0)"
        ) from error
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)

    @ray.remote(num_cpus=1, num_gpus=gpus_per_job, max_retries=max_retries)
    def execute(job: Job) -> list[TaskOutcome]:
        return job_runner(job, settings)

    pending = {execute.remote(job): job for job in jobs}
    finished: list[tuple[Job, list[TaskOutcome]]] = []
    errors: list[str] = []
    while pending:
        [ready], _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(ready)
        try:
            finished.append((job, ray.get(ready)))
            print(f"[{len(finished) + len(errors)}/{len(jobs)}] done: {job.label}", flush=True)
        except Exception as error:  # a job's own error, reported after the others finish
            errors.append(f"{job.label}: {error}")
    if errors:
        raise HarnessError(
            f"{len(errors)} of {len(jobs)} job(s) failed (the others' results are written):\n"
            + "\n".join(errors)
        )
    return FanoutReport(finished)
