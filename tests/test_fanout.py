"""The Ray fan-out: task groups, results equal to sequential runs, and a worker killed partway."""

from __future__ import annotations

import json
import os
import shutil
from functools import partial
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.app.fanout import Job, plan_jobs, run_job, run_on_ray, task_groups
from harness.app.runner import RunSettings, TaskOutcome, run, run_tasks
from harness.tasks.registry import builtin_tasks, resolve_tasks
from tests.dataset_fixtures import colour_retrieval, retrieval_task_yaml

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
        run_tasks(job.model, job.tasks[:1], settings)
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
    assert [job.names for job in jobs] == [
        ("DemoShapesT2IRetrieval",),
        ("DemoShapesZeroShot", "DemoShapesClustering"),
    ] * 2


def test_jobs_carry_resolved_tasks_with_their_data_dirs(tmp_path: Path) -> None:
    """A custom YAML task and a --data-dir are resolved when planning: a worker looks nothing up,
    and a task reading another folder is grouped by that folder."""
    custom = retrieval_task_yaml(tmp_path / "c.yaml", "Colours", colour_retrieval(tmp_path / "d"))
    copy = tmp_path / "clustering"
    copy.mkdir()
    jobs = plan_jobs(["m"], [str(custom), *TASKS], {"DemoShapesClustering": copy})
    assert [job.names for job in jobs] == [
        ("Colours",),
        ("DemoShapesT2IRetrieval",),
        ("DemoShapesZeroShot",),
        ("DemoShapesClustering",),
    ]
    by_name = {task.name: task for job in jobs for task in job.tasks}
    assert by_name["Colours"].dataset.path == str((tmp_path / "d").resolve())
    assert by_name["DemoShapesClustering"].dataset.path == str(copy.resolve())
    assert by_name["DemoShapesZeroShot"] == builtin_tasks()["DemoShapesZeroShot"]


def comparable(output: Path) -> dict[str, dict]:
    """Each result file under ``output`` by its path there, less what differs between two runs
    of the same thing (when it ran, how long it took)."""
    files = {}
    for path in output.rglob("*.json"):
        payload = json.loads(path.read_text())
        for key in ("date", "evaluation_time"):
            payload.pop(key, None)
        payload.get("harness", {}).pop("phases", None)
        files[str(path.relative_to(output))] = payload
    return files


def test_ray_runs_custom_yaml_tasks_and_data_dirs_as_in_process(
    local_ray: None, tiny_clip_dir: Path, tmp_path: Path
) -> None:
    """A custom YAML task (no worker knows its name) and a --data-dir (which no job but one
    runs) fan out and write the in-process run's result files."""
    custom = retrieval_task_yaml(tmp_path / "c.yaml", "Colours", colour_retrieval(tmp_path / "d"))
    copy = tmp_path / "shapes"
    shutil.copytree(builtin_tasks()["DemoShapesT2IRetrieval"].dataset.path, copy)
    specs = [str(custom), "DemoShapesT2IRetrieval", "DemoShapesZeroShot"]
    data_dirs = {"DemoShapesT2IRetrieval": copy}
    in_process = tmp_path / "in-process"
    run(
        str(tiny_clip_dir),
        specs,
        RunSettings(
            output=in_process,
            cache_dir=None,
            num_workers=0,
            show_progress=False,
            limit=20,
            data_dirs=data_dirs,
        ),
    )
    args = ["run", "--model", str(tiny_clip_dir), "--tasks", ",".join(specs), "--executor", "ray"]
    args += ["--data-dir", f"DemoShapesT2IRetrieval={copy}", "--output", str(tmp_path / "ray")]
    assert main([*args, "--no-cache", "--limit", "20", "--quiet", "--num-workers", "0"]) == 0
    fanned = comparable(tmp_path / "ray")
    assert len(fanned) == 4  # three tasks and model_meta.json
    assert fanned == comparable(in_process)
    [t2i] = [v for k, v in fanned.items() if k.endswith("DemoShapesT2IRetrieval.json")]
    assert t2i["dataset_revision"].startswith("local-")
    assert t2i["harness"]["run_settings"]["data_dirs"] == {"DemoShapesT2IRetrieval": str(copy)}


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
