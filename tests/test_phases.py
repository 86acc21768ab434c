"""Phases: each result records where each split's time went, as a description that no reuse or
comparison reads; the run's summary shows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.app.runner import PHASE_HEADERS, RunSettings, run
from harness.engine.phases import split_phases
from harness.engine.results import read_result
from tests.dataset_fixtures import colour_retrieval, retrieval_task_yaml

PARTS = ("load", "model_load", "decode", "encode", "score")


def settings(tmp_path: Path, **overrides: Any) -> RunSettings:
    values: dict[str, Any] = {
        "output": tmp_path / "results",
        "cache_dir": tmp_path / "cache",
        "batch_size": 3,
        "num_workers": 0,
        "show_progress": False,
    }
    return RunSettings(**{**values, **overrides})


@pytest.fixture()
def task(tmp_path: Path) -> str:
    data = colour_retrieval(tmp_path / "data", "t2i")
    return str(retrieval_task_yaml(tmp_path / "t2i.yaml", "ColourT2IRetrieval", data, "t2i"))


def test_each_split_records_phases_that_add_up(
    tiny_clip_dir: Path, task: str, tmp_path: Path
) -> None:
    cold = run(str(tiny_clip_dir), [task], settings(tmp_path))
    [outcome] = cold.outcomes
    data = json.loads(outcome.path.read_text())
    phases = data["harness"]["phases"]["test"]
    assert all(phases[part] >= 0 for part in PARTS)
    assert sum(phases[part] for part in PARTS) == pytest.approx(phases["total"], abs=1e-3)
    assert phases["total"] <= data["evaluation_time"] + 1e-3
    assert phases["encode"] > 0 and phases["decode"] > 0
    assert phases["items_encoded"] == data["harness"]["encoding"]["items_encoded"] > 0
    expected_rate = phases["items_encoded"] / phases["encode"]
    assert phases["items_per_second"] == pytest.approx(expected_rate, rel=1e-2)
    # Served from the cache: nothing encoded, no rate.
    warm = run(str(tiny_clip_dir), [task], settings(tmp_path, output=tmp_path / "warm"))
    again = warm.outcomes[0].phases
    assert again is not None and again.items_encoded == 0 and again.items_per_second is None
    assert again.encode == 0 and again.model_load == 0


def test_phases_are_no_part_of_reuse_and_old_files_without_them_are_reused(
    tiny_clip_dir: Path, task: str, tmp_path: Path
) -> None:
    [outcome] = run(str(tiny_clip_dir), [task], settings(tmp_path)).outcomes
    data = json.loads(outcome.path.read_text())
    del data["harness"]["phases"]
    outcome.path.write_text(json.dumps(data))
    assert read_result(outcome.path).harness.phases == {}
    [again] = run(str(tiny_clip_dir), [task], settings(tmp_path)).outcomes
    assert again.status == "exists" and again.phases is None
    assert "phases" not in json.loads(outcome.path.read_text())["harness"]


def test_summary_shows_the_phase_columns(tiny_clip_dir: Path, task: str, tmp_path: Path) -> None:
    report = run(str(tiny_clip_dir), [task], settings(tmp_path))
    header, _, row = report.summary().splitlines()[:3]
    assert all(name in header for name in PHASE_HEADERS)
    phases = report.outcomes[0].phases
    assert phases is not None
    assert f"{phases.encode:.1f}" in row.split() and f"{phases.load:.1f}" in row.split()


def test_scoring_is_the_rest_of_the_split_and_never_negative() -> None:
    times = {"decode": 1.0, "encode": 2.0, "model_load": 0.5}
    phases = split_phases(load=0.25, encoder_times=times, items_encoded=10, total=5.0)
    assert phases.score == 1.25 and phases.items_per_second == 5.0
    clock_skew = split_phases(load=0.25, encoder_times=times, items_encoded=0, total=3.7)
    assert clock_skew.score == 0.0 and clock_skew.items_per_second is None
