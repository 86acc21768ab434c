"""The results API: results folders in, one pandas ``DataFrame`` of every score out.

>>> from pathlib import Path
>>> from harness.leaderboard.frame import results_frame
>>> frame = results_frame([Path("results"), Path("published/results")])
>>> frame[frame.main].pivot_table(index="model", columns="task", values="score")

Files are read as the leaderboard reads them (:func:`harness.leaderboard.collect.collect`): harness
results and mteb result files (``external`` rows), of built-in and custom tasks, each file
validated first. A file that cannot be used is not a row; it is listed, with why, in
``frame.attrs["skipped"]`` (``[{"path": ..., "reason": ...}]``).

One row per (model, revision, external, task, split, subset, metric) of every numeric metric a
subset records. A ``null`` metric (``ap`` of a multiclass task) or a nested one
(``scores_per_experiment``) is not a row, nor is the ``main_score`` key itself: the row of the
metric it names has ``main`` true and carries the main score's bootstrap interval at the level
the run stored (``interval_low``, ``interval_high``; NaN on every other row and on external
rows, which have none). When a subset lacks the metric its main score names (some older mteb
files), the main score is that metric's row. Rows are sorted by model, revision, external and
task, then come in the file's order of splits and subsets, each subset's main metric first and
the others in natural order (``ndcg_at_3`` before ``ndcg_at_10``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.engine.main_score import finite_number
from harness.engine.mteb_files import MtebResult
from harness.engine.validation import NOT_METRICS
from harness.leaderboard.collect import Entry, collect

COLUMNS = (
    "model",
    "revision",
    "external",
    "task",
    "type",
    "split",
    "subset",
    "metric",
    "score",
    "main",
    "interval_low",
    "interval_high",
)
_DTYPES = {
    "external": "bool",
    "score": "float64",
    "main": "bool",
    "interval_low": "float64",
    "interval_high": "float64",
}


def results_frame(paths: Sequence[Path]) -> pd.DataFrame:
    """Every usable score under ``paths`` as rows of :data:`COLUMNS` (see the module's text);
    the files left out are in ``frame.attrs["skipped"]``. A path that does not exist or holds
    no result file is a :class:`~harness.core.errors.HarnessError`."""
    collection = collect(list(paths))
    entries = sorted(
        [*collection.entries, *collection.custom],
        key=lambda entry: (entry.model, entry.revision, entry.external, entry.task),
    )
    rows = [row for entry in entries for row in _entry_rows(entry)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS)).astype(_DTYPES)
    frame.attrs["skipped"] = [
        {"path": str(skipped.path), "reason": skipped.reason} for skipped in collection.skipped
    ]
    return frame


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as plain Python values, NaN as ``None``: ready for ``json.dumps``."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _main_metric(entry: Entry) -> str:
    """The metric an entry's main score is: its task record's (harness results, validated
    against the built-in definition), or the built-in definition's (mteb files)."""
    if isinstance(entry.result, MtebResult):
        from harness.tasks.registry import builtin_tasks, task_type

        definition = builtin_tasks()[entry.task]
        return task_type(definition).main_score(definition)
    return str(entry.result.harness.task.main_score)


def _entry_rows(entry: Entry) -> Iterator[dict[str, Any]]:
    """The rows of one result file, split by split and subset in the file's order."""
    main = _main_metric(entry)
    for split, subsets in entry.result.scores.items():
        for scores in subsets:
            subset = str(scores.get("hf_subset", "default"))
            low, high = _interval(entry, split, subset)
            common = {
                "model": entry.model,
                "revision": entry.revision,
                "external": entry.external,
                "task": entry.task,
                "type": entry.task_type,
                "split": split,
                "subset": subset,
            }
            for metric, score in _metrics(scores, main):
                is_main = metric == main
                yield {
                    **common,
                    "metric": metric,
                    "score": score,
                    "main": is_main,
                    "interval_low": low if is_main else math.nan,
                    "interval_high": high if is_main else math.nan,
                }


def _metrics(scores: Mapping[str, Any], main: str) -> list[tuple[str, float]]:
    """``(metric, value)`` of every finite numeric metric, the main one first (its value taken
    from ``main_score`` when the subset lacks the key), the others in natural order."""
    values = {
        metric: number
        for metric, value in scores.items()
        if metric not in NOT_METRICS and (number := finite_number(value)) is not None
    }
    main_value = values.pop(main, finite_number(scores.get("main_score")))
    others = sorted(values.items(), key=lambda item: _natural(item[0]))
    return ([(main, main_value)] if main_value is not None else []) + others


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that puts ``recall_at_5`` before ``recall_at_10``."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)
    )


def _interval(entry: Entry, split: str, subset: str) -> tuple[float, float]:
    """The main score's stored interval, NaN bounds when there is none."""
    interval = entry.interval(split, subset)
    if interval is None:
        return math.nan, math.nan
    low, high = finite_number(interval.get("low")), finite_number(interval.get("high"))
    return (math.nan if low is None else low), (math.nan if high is None else high)
