"""Benchmarks by name: listing, running, validation of names, and the dry-run plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.app.cli import main
from harness.app.plan import plan
from harness.tasks.benchmarks import Benchmark, benchmark_task_names, builtin_benchmarks
from harness.tasks.registry import builtin_tasks, demo_tasks, resolve_tasks

BENCHMARKS = (
    "mieb-lite",
    "mieb",
    "mieb-img",
    "mieb-multilingual",
    "vidore-v1",
    "vidore-v2",
    "seadoc",
)


def test_every_benchmark_is_declared_and_fully_defined() -> None:
    assert set(BENCHMARKS) <= set(builtin_benchmarks())
    for name in BENCHMARKS:
        assert builtin_benchmarks()[name].missing_tasks() == []
    assert len(benchmark_task_names("mieb-lite")) == 51


def test_tasks_lists_a_benchmark_with_types_main_scores_and_sizes(
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["tasks", "--benchmark", "mieb-lite"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "51 tasks in mieb-lite."
    rows = {line.split()[0]: line.split() for line in lines[2:-2]}
    assert len(rows) == 51
    assert rows["CIFAR100ZeroShot"][1:4] == ["zero_shot_classification", "i2t", "accuracy"]
    assert "10000" in rows["CIFAR100ZeroShot"]


def test_benchmarks_command_lists_counts(capsys: pytest.CaptureFixture) -> None:
    assert main(["benchmarks"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in BENCHMARKS)
    assert any(line.split()[:3] == ["mieb-lite", "51", "51"] for line in out.splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--model", "demo-clip", "--benchmark", "mieb-lte"], "Did you mean: mieb-lite"),
        (["tasks", "--benchmark", "vidore"], "unknown benchmark 'vidore'"),
        (
            ["run", "--model", "demo-clip", "--tasks", "CIFAR10,CIFAR100ZeroShotCIFAR10Clustering"],
            "Did you mean",
        ),
        (["run", "--benchmark", "mieb-lite"], "with --tasks or --benchmark, or none of them"),
    ],
)
def test_bad_names_are_refused_before_anything_runs(
    args: list[str], message: str, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    assert main([*args, "--output", str(tmp_path)] if args[0] == "run" else args) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_benchmark_with_missing_tasks_is_refused() -> None:
    benchmark = Benchmark(name="partial", description="", tasks=("CIFAR10", "NoSuchTask"))
    assert benchmark.missing_tasks() == ["NoSuchTask"]


def test_dry_run_counts_shared_inputs_once(capsys: pytest.CaptureFixture) -> None:
    """CIFAR10's three tasks read one dataset: its test split is encoded once."""
    tasks = resolve_tasks(["CIFAR10", "CIFAR10ZeroShot", "CIFAR10Clustering", "Winoground"])
    planned = plan(tasks)
    assert planned.total_rows() == 10000 * 3 + 400
    assert planned.unique_rows() == 10000 + 400
    assert main(["run", "--model", "demo-clip", "--benchmark", "mieb-lite", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "51 tasks;" in out and "Dry run: no model was loaded" in out


def test_dry_run_of_the_demo_counts_local_rows() -> None:
    planned = plan(resolve_tasks(demo_tasks()))
    shared = next(t for t in planned.tasks if t.name == "DemoShapesZeroShot")
    assert planned.shared_with(shared) == ["DemoShapesClassification", "DemoShapesClustering"]
    audio = next(t for t in planned.tasks if t.name == "DemoAudioZeroShot")
    assert planned.shared_with(audio) == ["DemoAudioClassification", "DemoAudioClustering"]
    groups: dict[str, list[int]] = {}
    for task in planned.tasks:
        groups.setdefault(task.dataset, []).append(task.total or 0)
    # A shared split is encoded once: at the largest of its tasks' inputs.
    assert planned.unique_rows() == sum(max(group) for group in groups.values())
    assert planned.unique_rows() < planned.total_rows()
    assert all(task.total for task in planned.tasks)
    assert set(builtin_tasks()) >= {task.name for task in planned.tasks}
