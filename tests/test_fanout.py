"""The Ray fan-out: task groups, results equal to sequential runs, and a worker killed partway."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.app.fanout import Job, plan_jobs, run_job, run_on_ray, task_groups
from harness.app.runner import RunSettings, TaskOutcome, run
from tasks.registry import resolve_tasks

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parent.parent
TASKS = ["DemoShapesT2IRetrieval", "DemoShapesZeroShot", "DemoShapesClustering"]


def settings(output: Path, cache: Path) -> RunSettings:
    return RunSettings(output=output, cache_dir=cache, num_workers=0, show_progress=False, limit=40)


def kill_once(job: Job, settings: RunSettings, *, marker: Path) -> list[TaskOutcome]:
    """In the first multi-task job to claim it: run the first task, then kill this worker."""
    if len(job.tasks) > 1:
        try:
            marker.with_suffix(".claimed").open("x").close()
        except FileExistsError:
            return run_job(job, settings)
        run(job.model, [job.tasks[0]], settings)
        marker.touch()
        os._exit(1)
    return run_job(job, settings)


def scores(output: Path) -> dict[tuple[str, str], float]:
    """Main scores by (model folder, task); each result file must appear once."""
    found: dict[tuple[str, str], float] = {}
    for path in output.rglob("*.json"):
        if path.name == "model_meta.json":
            continue
        key = (path.parents[1].name, path.stem)
        assert key not in found, f"two results for {key}"
        found[key] = json.loads(path.read_text())["scores"]["test"][0]["main_score"]
    return found


@pytest.fixture(scope="module")
def local_ray() -> None:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}},
    )
    yield
    ray.shutdown()


def test_tasks_sharing_a_dataset_form_one_group() -> None:
    tasks = resolve_tasks(["CIFAR10", "Winoground", "CIFAR10ZeroShot", "CIFAR10Clustering"])
    groups = [[task.name for task in group] for group in task_groups(tasks)]
    assert groups == [["CIFAR10", "CIFAR10ZeroShot", "CIFAR10Clustering"], ["Winoground"]]
    jobs = plan_jobs(["m1", "m2"], TASKS)
    assert [job.tasks for job in jobs] == [
        ("DemoShapesT2IRetrieval",),
        ("DemoShapesZeroShot", "DemoShapesClustering"),
    ] * 2


def test_fanout_equals_sequential_runs_even_when_a_worker_dies(
    local_ray: None, tiny_clip_dir: Path, tiny_siglip_dir: Path, tmp_path: Path
) -> None:
    models = [str(tiny_clip_dir), str(tiny_siglip_dir)]
    sequential = tmp_path / "sequential"
    for model in models:
        run(model, TASKS, settings(sequential, tmp_path / "cache-sequential"))

    marker = tmp_path / "killed"
    fanned = tmp_path / "fanned"
    report = run_on_ray(
        plan_jobs(models, TASKS),
        settings(fanned, tmp_path / "cache-fanned"),
        job_runner=partial(kill_once, marker=marker),
    )
    assert marker.exists(), "no worker was killed"
    assert scores(fanned) == scores(sequential)
    assert len(scores(fanned)) == len(models) * len(TASKS)
    # The retried job found its first task written before the kill, and did not redo it.
    [kept] = [o for _, outcomes in report.finished for o in outcomes if o.status == "exists"]
    assert kept.task == "DemoShapesZeroShot"
    assert _written_before(kept.path, marker)


def _written_before(path: Path, marker: Path) -> bool:
    return path.stat().st_mtime <= marker.stat().st_mtime


def test_cli_fans_out_over_ray(
    local_ray: None, tiny_clip_dir: Path, tiny_siglip_dir: Path, tmp_path: Path, capsys
) -> None:
    models = f"{tiny_clip_dir},{tiny_siglip_dir}"
    args = ["run", "--models", models, "--tasks", "DemoShapesZeroShot", "--executor", "ray"]
    args += ["--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--limit", "20", "--quiet", "--num-workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "[2/2] done:" in out and out.count("DemoShapesZeroShot  test") == 2
    assert len(scores(tmp_path / "out")) == 2
