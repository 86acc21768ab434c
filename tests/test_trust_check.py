"""`harness check` never passes what it cannot judge (issue 13, item 11).

Each case exits 2 with its reason and no traceback: a non-finite or out-of-range ``--tolerance``
or ``--ci``, a result whose main score is not its metric's value, not its own units' score or
outside its own interval (on either side, under either judge), and a link inside a results
folder. The honest pair of files passes, so the cases fail for their fault alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.app.cli import main
from tests.leaderboard_fixtures import T1, result_payload, write_payload

Payload = dict[str, Any]


def _folder(root: Path, edit: Callable[[Payload], Any] | None = None) -> Path:
    """A results folder with the demo model's T1 result at 0.9, changed by ``edit``."""
    payload = result_payload("m", T1, 0.9)
    if edit is not None:
        edit(payload)
    write_payload(root, "m", payload)
    return root


def _check(
    new: Path, baseline: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    status = main(["check", "--results", str(new), "--baseline", str(baseline), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out + err


def _scores(main_score: float, metric: float) -> Callable[[Payload], None]:
    def edit(payload: Payload) -> None:
        payload["scores"]["test"][0].update(main_score=main_score, ndcg_at_10=metric)

    return edit


def _interval(payload: Payload) -> None:
    payload["harness"]["intervals"] = {
        "test": {"default": {"low": 0.5, "high": 0.6, "level": 0.95, "resamples": 1000}}
    }


def test_the_honest_pair_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _check(_folder(tmp_path / "new"), _folder(tmp_path / "old"), capsys)
    assert status == 0 and "1 pass" in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--tolerance", "nan"), "--tolerance must be a finite number"),
        (("--tolerance", "inf"), "--tolerance must be a finite number"),
        (("--tolerance", "-0.1"), "--tolerance must be a finite number, 0 or more"),
        (("--ci", "nan"), "--ci must be a level between 0 and 1"),
        (("--ci", "inf"), "--ci must be a level between 0 and 1"),
        (("--ci", "0"), "--ci must be a level between 0 and 1"),
        (("--ci", "1"), "--ci must be a level between 0 and 1"),
        (("--ci", "95"), "--ci must be a level between 0 and 1"),
    ],
)
def test_a_judge_that_is_not_finite_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], words: str
) -> None:
    status, out = _check(_folder(tmp_path / "new"), _folder(tmp_path / "old"), capsys, *args)
    assert status == 2 and words in out


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        # The case: a 0.43 drop written into the scores, the units untouched.
        (_scores(0.47, 0.47), "does not match 0.900000, the score recomputed from its own"),
        (_scores(0.47, 0.9), "is not the value of the metric it names"),
        (_interval, "lies outside its stored interval [0.500000, 0.600000]"),
    ],
    ids=["units", "metric", "interval"],
)
@pytest.mark.parametrize("side", ["new", "baseline"])
@pytest.mark.parametrize("judge", [(), ("--tolerance", "1.0")], ids=["ci", "tolerance"])
def test_a_result_inconsistent_in_itself_is_not_comparable(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[Payload], None],
    words: str,
    side: str,
    judge: tuple[str, ...],
) -> None:
    forged = _folder(tmp_path / side, edit)
    honest = _folder(tmp_path / "honest")
    new, baseline = (forged, honest) if side == "new" else (honest, forged)
    status, out = _check(new, baseline, capsys, *judge)
    assert status == 2
    assert "not comparable" in out and "pass" not in out
    assert f"the {side} result is inconsistent in itself" in out and words in out


def test_a_link_inside_a_results_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new"
    real = _folder(tmp_path / "real") / "m" / "r1" / f"{T1}.json"
    (new / "m" / "r1").mkdir(parents=True)
    (new / "m" / "r1" / f"{T1}.json").symlink_to(real)
    status, out = _check(new, _folder(tmp_path / "old"), capsys)
    assert status == 2 and "a symbolic link (not followed, not read)" in out


def test_verdicts_file_of_a_refused_check_says_not_comparable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdicts = tmp_path / "verdicts.json"
    forged = _folder(tmp_path / "new", _scores(0.47, 0.47))
    args = ("--json", str(verdicts))
    status, _ = _check(forged, _folder(tmp_path / "old"), capsys, *args)
    report = json.loads(verdicts.read_text())
    assert status == report["exit_code"] == 2
    assert [row["verdict"] for row in report["rows"]] == ["not comparable"]
