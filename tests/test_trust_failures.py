"""Issue 13, item 6: a failing task does not lose the others; --fail-fast stops at the first;
an interrupt stops at once; --dry-run lists every problem before anything runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from harness.app.cli import main
from harness.app.fanout import FanoutReport, Job
from harness.app.runner import FAILED, RunSettings, TaskOutcome, run
from harness.core.adapter import AdapterMeta, Role
from harness.model_adapters.registry import load_adapter, model_modalities
from tests.dataset_fixtures import colour_retrieval, result_files, retrieval_task_yaml, run_cli

MINILM = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Task files: two good t2i tasks, one asking for a split its data lacks, one t2t task,
    and one whose dataset folder does not exist."""
    root = tmp_path_factory.mktemp("failures")
    t2i, t2t = colour_retrieval(root / "t2i"), colour_retrieval(root / "t2t", "t2t")
    return {
        "GoodA": retrieval_task_yaml(root / "a.yaml", "GoodA", t2i),
        "Bad": retrieval_task_yaml(root / "bad.yaml", "Bad", t2i, eval_splits=["validation"]),
        "GoodB": retrieval_task_yaml(root / "b.yaml", "GoodB", t2i),
        "Text": retrieval_task_yaml(root / "text.yaml", "Text", t2t, "t2t"),
        "Nowhere": retrieval_task_yaml(
            root / "nowhere.yaml", "Nowhere", t2i, dataset={"path": "./nowhere"}
        ),
    }


def specs(tasks: dict[str, Path], *names: str) -> str:
    return ",".join(str(tasks[name]) for name in names)


def written(workdir: Path) -> set[str]:
    """The task names whose result files a run wrote."""
    return set(result_files(workdir)) - {"model_meta"}


def outputs(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """stdout and stderr, after checking that neither holds a traceback."""
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return captured.out, captured.err


def test_a_failing_task_is_listed_and_the_others_still_run(
    tasks: dict[str, Path], tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(tiny_clip_dir, specs(tasks, "GoodA", "Bad", "GoodB"), tmp_path)
    out, err = outputs(capsys)
    assert code == 2
    assert written(tmp_path) == {"GoodA", "GoodB"}
    [row] = [line.split() for line in out.splitlines() if line.startswith("Bad ")]
    assert row[:3] == ["Bad", "validation", "-"] and row[4] == "failed"
    assert "1 task(s) failed:\n  Bad: task Bad: dataset " in out
    assert "has no split 'validation' in config 'qrels' (it has test)" in out
    assert "harness: error: task Bad: dataset " in err
    assert "harness: 1 task(s) failed; the others' results are written" in err
    # The finished tasks are skipped on the rerun; the failed one fails again, as clearly.
    assert run_cli(tiny_clip_dir, specs(tasks, "GoodA", "Bad", "GoodB"), tmp_path) == 2
    out, _ = outputs(capsys)
    assert out.count(" exists") == 2 and "1 task(s) failed" in out


def test_fail_fast_stops_at_the_first_failure(
    tasks: dict[str, Path], tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(tiny_clip_dir, specs(tasks, "GoodA", "Bad", "GoodB"), tmp_path, "--fail-fast")
    _, err = outputs(capsys)
    assert code == 2
    assert written(tmp_path) == {"GoodA"}
    assert "harness: error: task Bad: dataset " in err
    assert "has no split 'validation'" in err


class InterruptingAdapter:
    """An adapter whose first call is interrupted, as by Ctrl-C."""

    def __init__(self, meta: AdapterMeta) -> None:
        self.meta = meta

    def encode(
        self, items: Sequence[dict], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        raise KeyboardInterrupt


def test_an_interrupt_stops_the_run_at_once(
    tasks: dict[str, Path], tiny_clip_dir: Path, tmp_path: Path
) -> None:
    adapter = InterruptingAdapter(load_adapter(str(tiny_clip_dir)).meta)
    settings = RunSettings(output=tmp_path, cache_dir=None, num_workers=0, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        run(adapter, [str(tasks["GoodA"]), str(tasks["GoodB"])], settings)
    assert not list(tmp_path.rglob("Good*.json"))


def test_a_task_the_model_cannot_embed_fails_and_the_others_run(
    tasks: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(MINILM, specs(tasks, "GoodA", "Text"), tmp_path)
    out, _ = outputs(capsys)
    assert code == 2
    assert written(tmp_path) == {"Text"}
    assert f"GoodA: task GoodA (category t2i) needs image inputs, but model {MINILM}" in out
    assert "embeds text only" in out


def test_dry_run_lists_every_problem_and_runs_nothing(
    tasks: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = specs(tasks, "GoodA", "Nowhere", "Text")
    args = ["run", "--model", MINILM, "--tasks", spec, "--output", str(tmp_path / "out")]
    code = main([*args, "--dry-run", "--data-dir", f"Text={tmp_path / 'missing'}"])
    out, err = outputs(capsys)
    assert code == 2
    assert "3 problem(s) would stop this run:" in err
    assert "task GoodA (category t2i) needs image inputs, but model all-MiniLM-L6-v2" in err
    assert "task Nowhere: dataset.path ./nowhere: no such directory" in err
    assert f"--data-dir Text={tmp_path / 'missing'}: no such directory" in err
    assert "GoodA" in out and "Text" in out  # the plan of what could be read is still shown
    assert not (tmp_path / "out").exists()
    assert main(["run", "--model", MINILM, "--tasks", specs(tasks, "Text"), "--dry-run"]) == 0


def test_dry_run_refuses_tasks_that_share_a_result_file(
    tasks: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clash = retrieval_task_yaml(tmp_path / "text.yaml", "text", tmp_path, "t2t")
    code = main(["run", "--model", MINILM, "--tasks", f"{tasks['Text']},{clash}", "--dry-run"])
    _, err = outputs(capsys)
    assert code == 2
    assert "tasks 'Text' and 'text' would write the same result file (Text.json)" in err


@pytest.mark.parametrize("model", ["clip", MINILM])
def test_modalities_known_without_loading_match_the_loaded_adapter(
    model: str, tiny_clip_dir: Path
) -> None:
    name = str(tiny_clip_dir) if model == "clip" else model
    assert model_modalities(name) == load_adapter(name).meta.modalities


def test_fanned_out_failures_are_listed_with_their_reason(tmp_path: Path) -> None:
    job = Job("m", ("A", "B"))
    done = TaskOutcome("A", "test", 0.5, 1.0, "done", tmp_path / "A.json")
    failed = TaskOutcome("B", "test", None, 0.1, FAILED, tmp_path / "B.json", "task B: no split")
    report = FanoutReport([(job, [done, failed])])
    assert report.failed == [failed]
    assert report.summary().endswith("1 task(s) failed:\n  B: task B: no split")
