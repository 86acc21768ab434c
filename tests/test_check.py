"""`harness check`: the three verdicts (pass, regression, not comparable) on real demo runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.app.check import REGRESSION, CheckSettings, check
from harness.app.cli import main
from harness.app.runner import RunSettings, run
from harness.core.adapter import Role
from harness.model_adapters.registry import load_adapter

# Text-to-image retrieval ranks images for text queries; the other two never encode text.
TASKS = ["DemoShapesT2IRetrieval", "DemoShapesI2IRetrieval", "DemoShapesClustering"]
TEXT_TASK = "DemoShapesT2IRetrieval"


class TextNoise:
    """The demo model with Gaussian noise added to its text vectors (a degraded model)."""

    def __init__(self, adapter: Any, scale: float) -> None:
        self.adapter, self.scale = adapter, scale
        options = {**adapter.meta.options, "text_noise": scale}
        self.meta = replace(adapter.meta, name="demo-clip-text-noise", options=options)

    def encode(
        self, items: Sequence[dict], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        vectors = self.adapter.encode(items, role=role, instruction=instruction)
        texts = np.array([item.get("image") is None for item in items])
        seed = sum(len(item.get("text") or "") for item in items)
        noise = np.random.default_rng(seed).normal(0, self.scale, vectors.shape)
        # Noise in proportion to each vector's norm, about scale x the norm in all.
        noise *= np.linalg.norm(vectors, axis=1, keepdims=True) / np.sqrt(vectors.shape[1])
        return (vectors + noise * texts[:, None]).astype(np.float32)


def settings(root: Path) -> RunSettings:
    return RunSettings(
        output=root / "results",
        cache_dir=root.parent / "cache",
        num_workers=0,
        show_progress=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Result folders: a baseline, a rerun (scored again from the shared embedding cache),
    and a run of the text-noised model."""
    root = tmp_path_factory.mktemp("check")
    adapter = load_adapter("demo-clip")
    baseline = run(adapter, TASKS, settings(root / "baseline")).model_folder
    rerun = run(adapter, TASKS, settings(root / "rerun")).model_folder
    noisy = run(TextNoise(adapter, 1.0), TASKS, settings(root / "noisy")).model_folder
    return {"baseline": baseline, "rerun": rerun, "noisy": noisy}


def check_cli(new: Path, baseline: Path, *args: str) -> int:
    return main(["check", "--results", str(new), "--baseline", str(baseline), *args])


def edited_copy(folder: Path, target: Path, task: str, edit: Any) -> Path:
    """A copy of a model's result folder with one task's result JSON edited."""
    shutil.copytree(folder, target)
    path = target / f"{task}.json"
    payload = json.loads(path.read_text())
    edit(payload)
    path.write_text(json.dumps(payload))
    return target


def test_identical_rerun_passes(runs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    assert check_cli(runs["rerun"], runs["baseline"]) == 0
    table = capsys.readouterr().out
    assert "REGRESSION" not in table and "not comparable" not in table
    assert f"{len(TASKS)} pass" in table
    report = check(runs["rerun"], runs["baseline"])
    assert {row.method for row in report.rows} == {"paired bootstrap"}
    assert all(row.delta == 0 and row.p_value == 1 for row in report.rows)


def test_noisy_text_vectors_are_flagged_on_the_text_task(
    runs: dict[str, Path], capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    verdicts = tmp_path / "verdicts.json"
    assert check_cli(runs["noisy"], runs["baseline"], "--json", str(verdicts)) == 1
    table = capsys.readouterr().out
    print(table)
    rows = json.loads(verdicts.read_text())["rows"]
    assert {row["task"] for row in rows if row["verdict"] == REGRESSION} == {TEXT_TASK}
    for row in rows:
        if row["task"] == TEXT_TASK:
            assert row["delta"] < 0 and row["high"] < 0 and row["p_value"] < 0.01
        else:
            assert row["delta"] == 0 and row["verdict"] == "pass"
    assert json.loads(verdicts.read_text())["exit_code"] == 1


def test_tolerance_mode_judges_by_the_absolute_drop(runs: dict[str, Path]) -> None:
    noisy = check(runs["noisy"], runs["baseline"], CheckSettings(tolerance=1.0))
    assert noisy.exit_code == 0
    strict = check(runs["noisy"], runs["baseline"], CheckSettings(tolerance=0.0))
    assert {row.task for row in strict.rows if row.verdict == REGRESSION} == {TEXT_TASK}


def test_combined_intervals_when_per_unit_scores_are_absent(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """Without units the two runs' stored intervals are combined: a wider, unpaired test."""

    def drop_units(payload: dict[str, Any]) -> None:
        payload["harness"]["units"] = {}

    task = "DemoShapesT2IRetrieval"
    baseline = edited_copy(runs["baseline"], tmp_path / "baseline", task, drop_units)
    noisy = edited_copy(runs["noisy"], tmp_path / "noisy", task, drop_units)
    report = check(noisy, baseline, CheckSettings(tasks=(task,)))
    [row] = report.rows
    assert row.method == "combined intervals" and row.p_value is None
    assert row.low < row.delta < row.high
    paired = check(runs["noisy"], runs["baseline"], CheckSettings(tasks=(task,))).rows[0]
    assert paired.high - paired.low < row.high - row.low


def test_changed_dataset_revision_is_not_comparable(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def new_revision(payload: dict[str, Any]) -> None:
        payload["dataset_revision"] = "0123456789abcdef"

    changed = edited_copy(runs["rerun"], tmp_path / "rerun", "DemoShapesI2IRetrieval", new_revision)
    assert check_cli(changed, runs["baseline"]) == 2
    out = capsys.readouterr().out
    assert "DemoShapesI2IRetrieval" in out and "dataset revision differs" in out


def test_changed_protocol_is_not_comparable(runs: dict[str, Path], tmp_path: Path) -> None:
    def other_k(payload: dict[str, Any]) -> None:
        payload["harness"]["task"]["protocol"]["k_values"] = [1, 5]

    changed = edited_copy(runs["rerun"], tmp_path / "rerun", "DemoShapesT2IRetrieval", other_k)
    report = check(changed, runs["baseline"])
    assert report.exit_code == 2
    [row] = [row for row in report.rows if row.task == "DemoShapesT2IRetrieval"]
    assert "protocol" in row.note


def test_missing_task_is_not_comparable(runs: dict[str, Path], tmp_path: Path) -> None:
    partial = shutil.copytree(runs["rerun"], tmp_path / "rerun")
    (partial / "DemoShapesClustering.json").unlink()
    report = check(partial, runs["baseline"])
    assert report.exit_code == 2
    [row] = [row for row in report.rows if row.task == "DemoShapesClustering"]
    assert row.note == "missing from the new results"
    assert (
        check(partial, runs["baseline"], CheckSettings(tasks=("DemoShapesT2IRetrieval",))).exit_code
        == 0
    )


def test_no_interval_cannot_pass_under_ci(runs: dict[str, Path], tmp_path: Path) -> None:
    def drop_statistics(payload: dict[str, Any]) -> None:
        payload["harness"]["units"] = {}
        payload["harness"]["intervals"] = {}

    task = "DemoShapesI2IRetrieval"
    bare = edited_copy(runs["rerun"], tmp_path / "rerun", task, drop_statistics)
    assert check(bare, runs["baseline"], CheckSettings(tasks=(task,))).exit_code == 2
    assert check(bare, runs["baseline"], CheckSettings(tasks=(task,), tolerance=0.0)).exit_code == 0


def test_all_metrics_lists_the_other_metrics(runs: dict[str, Path]) -> None:
    report = check(runs["noisy"], runs["baseline"], CheckSettings(all_metrics=True))
    metrics = {row.metric for row in report.rows if row.task == "DemoShapesT2IRetrieval"}
    assert {"ndcg_at_10", "map_at_10", "recall_at_1"} <= metrics
    others = [row for row in report.rows if row.task == TEXT_TASK and row.metric != "ndcg_at_10"]
    assert others and {row.verdict for row in others} == {"-"}
    assert "metric" in report.table().splitlines()[0]


def test_bad_levels_are_refused(runs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    assert check_cli(runs["rerun"], runs["baseline"], "--ci", "95") == 2
    assert "--ci must be a level between 0 and 1" in capsys.readouterr().err
