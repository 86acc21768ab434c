"""`harness check --baseline <mteb results> --tolerance X`: a run of ours against a published
result, written by mteb's own ``TaskResult``.

The new side is the demo model's T1 at 0.9 (a valid harness result); each case changes the
published file or the settings and checks the verdict, the exit status and the table's words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.app.check import MTEB_METHOD, NEEDS_TOLERANCE, CheckSettings, check
from harness.app.cli import main
from harness.tasks.loading import dataset_revision
from harness.tasks.registry import builtin_tasks
from tests.leaderboard_fixtures import T1, T2, result_payload, write_payload
from tests.mteb_fixtures import write_mteb_result

PUBLISHED = "org/published-model"
NEW_SCORE = 0.9


def _subset(main_score: float, **metrics: float) -> dict[str, Any]:
    return {"main_score": main_score, "hf_subset": "default", "languages": ["eng-Latn"], **metrics}


def _published(root: Path, scores: Any, task: str = T1, **options: Any) -> Path:
    """A results folder holding mteb's file of ``task`` with ``scores`` ({split: ...})."""
    revision = options.pop("dataset_revision", dataset_revision(builtin_tasks()[task]))
    write_mteb_result(root, PUBLISHED, "abc123", task, scores, dataset_revision=revision, **options)
    return root


def _ours(root: Path, *tasks: str, limit: int | None = None) -> Path:
    """Our results of the demo model: each task at :data:`NEW_SCORE`."""
    for task in tasks or (T1,):
        payload = result_payload("demo", task, NEW_SCORE)
        payload["harness"]["run_settings"]["limit"] = limit
        write_payload(root, "demo", payload)
    return root


def _check(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, list[dict[str, Any]]]:
    """Exit status, printed table and verdict rows of checking our T1 against ``baseline``."""
    verdicts = tmp_path / "verdicts.json"
    new = tmp_path / "new" if (tmp_path / "new").is_dir() else _ours(tmp_path / "new")
    argv = ["check", "--results", str(new), "--baseline", str(baseline), *args]
    status = main([*argv, "--json", str(verdicts)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    rows = json.loads(verdicts.read_text())["rows"] if verdicts.is_file() else []
    return status, out + err, rows


@pytest.mark.parametrize(
    ("published", "tolerance", "status", "verdict"),
    [
        (0.905, "0.01", 0, "pass"),
        (0.95, "0.01", 1, "REGRESSION"),
        (0.8, "0.01", 0, "improved"),
        (0.9, "0", 0, "pass"),
    ],
)
def test_tolerance_judges_the_change_from_the_published_score(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    published: float,
    tolerance: str,
    status: int,
    verdict: str,
) -> None:
    baseline = _published(tmp_path / "old", {"test": published})
    code, table, rows = _check(tmp_path, baseline, capsys, "--tolerance", tolerance)
    assert code == status
    [row] = rows
    assert row["verdict"] == verdict and row["external"] is True
    assert row["baseline"] == published and row["new"] == NEW_SCORE
    assert row["delta"] == pytest.approx(NEW_SCORE - published, abs=1e-12)
    assert row["method"] == f"tolerance {float(tolerance)}; {MTEB_METHOD}"
    assert row["low"] is None and row["p_value"] is None
    assert table.count(MTEB_METHOD) == 1
    assert f"tolerance {float(tolerance)}; {MTEB_METHOD}" in table.split("Notes:")[1]


def test_without_tolerance_an_mteb_baseline_is_not_comparable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = _published(tmp_path / "old", {"test": 0.9})
    code, table, rows = _check(tmp_path, baseline, capsys)
    assert code == 2
    assert [row["verdict"] for row in rows] == ["not comparable"]
    assert rows[0]["note"] == NEEDS_TOLERANCE and NEEDS_TOLERANCE in table
    assert MTEB_METHOD not in table


@pytest.mark.parametrize(
    ("scores", "options", "words"),
    [
        ({"test": 0.9}, {"dataset_revision": "another-revision"}, "dataset revision differs"),
        (
            {"test": [_subset(0.9, ndcg_at_10=0.8)]},
            {},
            "main_score 0.900000 is not its ndcg_at_10 0.800000: it names another main metric",
        ),
        (
            {"test": [_subset(0.9, map_at_10=0.9)]},
            {},
            "has no ndcg_at_10 (the new result's main metric)",
        ),
        ({"validation": 0.9}, {}, "split test is missing from the mteb baseline"),
    ],
    ids=["revision", "other-main-metric", "no-main-metric", "no-split"],
)
def test_what_a_published_result_cannot_be_compared_on(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scores: dict[str, Any],
    options: dict[str, Any],
    words: str,
) -> None:
    baseline = _published(tmp_path / "old", scores, **options)
    code, table, rows = _check(tmp_path, baseline, capsys, "--tolerance", "1")
    assert code == 2
    assert [row["verdict"] for row in rows] == ["not comparable"]
    assert words in rows[0]["note"] and words in table
    assert "pass" not in table


def test_a_limit_run_is_not_compared_with_a_published_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ours(tmp_path / "new", limit=10)
    baseline = _published(tmp_path / "old", {"test": 0.9})
    code, table, _ = _check(tmp_path, baseline, capsys, "--tolerance", "1")
    assert code == 2 and "the new result is a --limit 10 run" in table


def test_a_file_without_dataset_revision_is_compared_and_says_so(tmp_path: Path) -> None:
    path = _published(tmp_path / "old", {"test": 0.9}) / "org__published-model/abc123"
    payload = json.loads((path / f"{T1}.json").read_text())
    payload["dataset_revision"] = None
    (path / f"{T1}.json").write_text(json.dumps(payload))
    report = check(_ours(tmp_path / "new"), tmp_path / "old", CheckSettings(tolerance=0.01))
    assert report.exit_code == 0
    assert [row.note for row in report.rows] == [
        "the mteb file records no dataset revision (not checked)"
    ]


def test_a_mixed_baseline_judges_each_task_its_own_way(tmp_path: Path) -> None:
    """T1's baseline is published, T2's is a harness result of another model with units."""
    baseline = _published(tmp_path / "old", {"test": 0.9})
    write_payload(baseline, "other", result_payload("other", T2, NEW_SCORE))
    new = _ours(tmp_path / "new", T1, T2)
    report = check(new, baseline, CheckSettings(tolerance=0.01))
    assert report.exit_code == 0
    methods = {row.task: (row.method, row.external, row.verdict) for row in report.rows}
    assert methods == {
        T1: (f"tolerance 0.01; {MTEB_METHOD}", True, "pass"),
        T2: ("tolerance 0.01", False, "pass"),
    }
    under_ci = check(new, baseline)
    verdicts = {row.task: (row.verdict, row.method) for row in under_ci.rows}
    assert verdicts[T1] == ("not comparable", "") and verdicts[T2] == ("pass", "paired bootstrap")


def test_all_metrics_compares_the_published_metrics_too(tmp_path: Path) -> None:
    scores = {"test": [_subset(0.9, ndcg_at_10=0.9, ndcg_at_1=0.95, map_at_10=0.7)]}
    baseline = _published(tmp_path / "old", scores)
    new = _ours(tmp_path / "new")
    path = new / "demo" / "r1" / f"{T1}.json"
    payload = json.loads(path.read_text())
    payload["scores"]["test"][0].update(ndcg_at_1=0.8, map_at_10=0.75)
    path.write_text(json.dumps(payload))
    settings = CheckSettings(tolerance=0.1, all_metrics=True)
    rows = {row.metric: row for row in check(new, baseline, settings).rows}
    assert set(rows) == {"ndcg_at_10", "ndcg_at_1", "map_at_10"}
    assert all(row.external for row in rows.values())
    assert rows["ndcg_at_1"].verdict == "REGRESSION"
    assert rows["ndcg_at_1"].delta == pytest.approx(-0.15)
    assert rows["map_at_10"].verdict == "pass"


def test_an_mteb_file_on_the_new_side_is_refused_with_its_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = _published(tmp_path / "published", {"test": 0.9})
    argv = ["--results", str(published), "--baseline", str(_ours(tmp_path / "ours"))]
    assert main(["check", *argv, "--tolerance", "1"]) == 2
    out, err = capsys.readouterr()
    assert "an mteb result file" in err and "Traceback" not in out + err
