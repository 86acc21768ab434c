"""The results API (:func:`harness.leaderboard.frame.results_frame`) and `harness results`.

Harness results and mteb files (written by mteb's own ``TaskResult``) of the same tasks load into
one frame whose every score is checked against the files' JSON; the CSV and JSON exports read
back to the same frame; bad input exits 2 with its reason and no traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.app.cli import main
from harness.engine.validation import NOT_METRICS
from harness.leaderboard.frame import COLUMNS, results_frame
from harness.tasks.loading import dataset_revision
from harness.tasks.registry import builtin_tasks
from tests.leaderboard_fixtures import S1, T1, T2, result_payload, write_payload
from tests.mteb_fixtures import write_mteb_result

CUSTOM = "MyCustomTask"
PUBLISHED = "org/published-model"
# mteb's full subset of T1: ndcg_at_10 is the main metric; the others are in numeric order.
PUBLISHED_T1 = {
    "main_score": 0.92,
    "ndcg_at_10": 0.92,
    "ndcg_at_1": 0.7,
    "ndcg_at_3": 0.81,
    "recall_at_100": 1.0,
    "hf_subset": "default",
    "languages": ["eng-Latn"],
}


def _with_extras(payload: dict[str, Any]) -> dict[str, Any]:
    """T1's result with more metrics (a null and a nested one among them) and an interval."""
    entry = payload["scores"]["test"][0]
    entry.update(ndcg_at_3=0.85, ndcg_at_1=0.8, ap=None, scores_per_experiment=[{"a": 1.0}])
    interval = {"low": 0.85, "high": 0.95, "level": 0.95, "resamples": 1000}
    payload["harness"]["intervals"] = {"test": {"default": interval}}
    return payload


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Our results (two built-in tasks, a custom one and a broken file), and published ones."""
    root = tmp_path_factory.mktemp("frame")
    ours, published = root / "ours", root / "published"
    write_payload(ours, "alpha", _with_extras(result_payload("alpha", T1, 0.9)))
    write_payload(ours, "alpha", result_payload("alpha", S1, 0.3))
    write_payload(ours, "alpha", result_payload("alpha", CUSTOM, 0.5))
    (ours / "alpha" / "r1" / "Broken.json").write_text("{", encoding="utf-8")
    for task, scores in ((T1, [PUBLISHED_T1]), (T2, 0.5)):
        revision = dataset_revision(builtin_tasks()[task])
        write_mteb_result(
            published, PUBLISHED, "abc123", task, {"test": scores}, dataset_revision=revision
        )
    return ours, published


@pytest.fixture(scope="module")
def frame(folders: tuple[Path, Path]) -> pd.DataFrame:
    return results_frame(list(folders))


def _file_scores(folders: tuple[Path, Path]) -> dict[tuple[bool, str, str, str, str], float]:
    """``{(external, task, split, subset, metric): value}`` of every number (not a boolean) in
    every result file, read from its JSON (one model on each side)."""
    scores = {}
    for path in sorted(p for folder in folders for p in folder.rglob("*.json")):
        if path.name in ("model_meta.json", "Broken.json"):
            continue
        payload = json.loads(path.read_text())
        for split, entries in payload["scores"].items():
            for entry in entries:
                for metric, value in entry.items():
                    if metric in NOT_METRICS or type(value) not in (float, int):
                        continue
                    key = ("harness" not in payload, payload["task_name"], split, metric)
                    scores[(*key[:3], entry["hf_subset"], metric)] = float(value)
    return scores


def test_every_score_of_every_file_is_one_row(
    frame: pd.DataFrame, folders: tuple[Path, Path]
) -> None:
    assert list(frame.columns) == list(COLUMNS)
    rows = {
        (row.external, row.task, row.split, row.subset, row.metric): row.score
        for row in frame.itertuples()
    }
    assert len(rows) == len(frame)
    assert rows == _file_scores(folders)
    assert "main_score" not in set(frame.metric) and "ap" not in set(frame.metric)


def test_the_published_rows_are_what_mteb_itself_reads(
    frame: pd.DataFrame, folders: tuple[Path, Path]
) -> None:
    """Each mteb file through mteb's own loader: its metrics and ``get_score()`` are the rows'."""
    from mteb.results import TaskResult

    files = sorted(folders[1].rglob("Demo*.json"))
    assert len(files) == 2
    for path in files:
        result = TaskResult.from_disk(path)
        rows = frame[frame.external & (frame.task == result.task_name)]
        [main] = rows[rows.main].score
        assert main == result.get_score()
        expected = {
            (split, entry["hf_subset"], metric): value
            for split, entries in result.scores.items()
            for entry in entries
            for metric, value in entry.items()
            if metric not in (*NOT_METRICS, "mteb_version")
        }
        got = {(row.split, row.subset, row.metric): row.score for row in rows.itertuples()}
        assert got == expected


def test_rows_say_whose_and_what_they_are(frame: pd.DataFrame) -> None:
    main = frame[frame.main]
    described = zip(main.model, main.external, main.task, main.type, main.metric, strict=True)
    assert list(described) == [
        ("alpha", False, T1, "retrieval", "ndcg_at_10"),
        ("alpha", False, S1, "zero_shot_classification", "accuracy"),
        ("alpha", False, CUSTOM, "custom_type", "accuracy"),
        (PUBLISHED, True, T2, "retrieval", "ndcg_at_10"),
        (PUBLISHED, True, T1, "retrieval", "ndcg_at_10"),
    ]
    assert set(frame[frame.external].revision) == {"abc123"}
    assert frame.dtypes.to_dict() == {
        **{column: frame.dtypes["model"] for column in COLUMNS},
        **{"external": "bool", "main": "bool"},
        **{column: "float64" for column in ("score", "interval_low", "interval_high")},
    }


def test_intervals_sit_on_the_main_rows_of_harness_results(frame: pd.DataFrame) -> None:
    ours_t1 = frame[(frame.task == T1) & ~frame.external]
    main = ours_t1[ours_t1.main].iloc[0]
    assert (main.interval_low, main.interval_high) == (0.85, 0.95)
    others = pd.concat([ours_t1[~ours_t1.main], frame[frame.external]])
    assert others.interval_low.isna().all() and others.interval_high.isna().all()


def test_metrics_come_main_first_then_in_numeric_order(frame: pd.DataFrame) -> None:
    published = frame[(frame.task == T1) & frame.external]
    assert list(published.metric) == ["ndcg_at_10", "ndcg_at_1", "ndcg_at_3", "recall_at_100"]
    ours = frame[(frame.task == T1) & ~frame.external]
    assert list(ours.metric) == ["ndcg_at_10", "ndcg_at_1", "ndcg_at_3"]


def test_the_order_is_stable_and_skipped_files_are_listed(
    frame: pd.DataFrame, folders: tuple[Path, Path]
) -> None:
    again = results_frame(list(reversed(folders)))
    pd.testing.assert_frame_equal(again, frame)
    skipped = frame.attrs["skipped"]
    assert [Path(item["path"]).name for item in skipped] == ["Broken.json"]
    assert skipped[0]["reason"]


def test_csv_export_reads_back_to_the_frame(
    frame: pd.DataFrame, folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "scores.csv"
    args = ["results", "--results", str(folders[0]), "--results", str(folders[1])]
    assert main([*args, "--out", str(out)]) == 0
    _, err = capsys.readouterr()
    assert "Broken.json" in err and f"{len(frame)} rows written" in err
    pd.testing.assert_frame_equal(pd.read_csv(out), frame, check_dtype=False)
    assert main(args) == 0  # standard output: the same CSV, and nothing else
    assert capsys.readouterr().out == out.read_text()


def test_json_export_is_a_list_of_rows(
    frame: pd.DataFrame, folders: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "scores.json"
    args = ["results", "--results", str(folders[0]), "--results", str(folders[1])]
    assert main([*args, "--format", "json", "--out", str(out)]) == 0
    text = out.read_text()
    assert f'"model": "{PUBLISHED}"' in text and "NaN" not in text
    records = json.loads(text)
    assert records[0].keys() == set(COLUMNS)
    read = pd.DataFrame(records, columns=list(COLUMNS))
    pd.testing.assert_frame_equal(read, frame, check_dtype=False)
    nulls = [row for row in records if row["interval_low"] is None]
    assert len(nulls) == sum(math.isnan(value) for value in frame.interval_low)


def _missing_folder(root: Path) -> list[str]:
    return ["--results", str(root / "nowhere")]


def _empty_folder(root: Path) -> list[str]:
    (root / "empty").mkdir()
    return ["--results", str(root / "empty")]


def _only_broken_files(root: Path) -> list[str]:
    (root / "broken").mkdir()
    (root / "broken" / "Broken.json").write_text("{", encoding="utf-8")
    return ["--results", str(root / "broken")]


def _out_is_a_folder(root: Path) -> list[str]:
    write_payload(root / "ours", "alpha", result_payload("alpha", T1, 0.9))
    return ["--results", str(root / "ours"), "--out", str(root)]


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (_missing_folder, "does not exist"),
        (_empty_folder, "no result files"),
        (_only_broken_files, "no usable result under"),
        (_out_is_a_folder, "is a folder. Pass the path of a file to write"),
    ],
)
def test_bad_input_exits_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture, setup: Callable[[Path], list[str]], words: str
) -> None:
    assert main(["results", *setup(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert words in err and "Traceback" not in out + err
    assert out == ""
