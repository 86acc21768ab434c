"""Significance in the ranks: bootstrap intervals of each model's Borda rank and means.

A result file stores, per split and subset, the per-unit scores its main score is a statistic
of (:mod:`harness.scoring.bootstrap`). Here every task's units are resampled ``resamples``
times, by the method of the result's own interval (the percentile bootstrap for ``mean`` and
``spearman``, half-sampling recentred on the score for the clustering statistics), every
model's task score is recomputed on each resample (the mean over eval splits of the split
score: the ``default`` subset's, else the mean over subsets), and from those task scores the
board's numbers, by the rules of :mod:`harness.leaderboard.aggregate`: the type means, the
mean of the type means, the mean over tasks, and the Borda points and rank.

- **Paired.** Models that scored the same units of a (task, split, subset) (the same
  resampling method, ``ids_digest`` and number of units) are scored on the *same* resamples,
  so a difference between them is a paired comparison. Unit sets of different tasks, or that
  are not the same units, are resampled independently (each from its own seed, derived from
  ``seed`` and the set: :func:`unit_set_seed`).
- **Fixed scores.** A task without stored units (an external mteb row, a file of an older
  harness, a split or subset without units) keeps its score in every resample.
- **Intervals** are the central ``level`` percentiles of the resampled values, widened to hold
  the observed value (as the result files' own intervals are). A resample in which a recomputed
  score is not finite (Spearman's rho of tied values) is left out for every model.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.core.errors import HarnessError
from harness.leaderboard.aggregate import tasks_by_type
from harness.leaderboard.collect import Entry, ModelKey
from harness.scoring.bootstrap import UnitScores, unit_counts

Bounds = tuple[float, float]
# A set of units resampled together: task, split, subset, method, ids digest, number of units.
UnitSet = tuple[str, str, str, str, str, int]
# Resample indices scored at once: bounds a unit set's index and count matrices at 32 MB each.
_CELLS = 4_000_000


@dataclass(frozen=True)
class Spread:
    """One model's bootstrap intervals (at the level asked for) on one board.

    ``tied_with`` holds the models whose difference in Borda points from this one is not
    significant: the percentile interval of that difference over the resamples contains 0.
    The mean intervals are ``None`` when none of the model's tasks has stored units (nothing
    varies); a type's interval is ``None`` when none of the model's tasks of that type has.
    """

    rank_low: int
    rank_high: int
    mean_low: float | None
    mean_high: float | None
    task_mean_low: float | None
    task_mean_high: float | None
    type_intervals: dict[str, Bounds | None]
    tied_with: tuple[ModelKey, ...]


@dataclass(frozen=True)
class _Part:
    """One (split, subset) of a model's task: its resampled statistic, times ``weight``, is a
    term of the task score (weight: 1 / splits / subsets scored in the split)."""

    model: int
    task: int
    weight: float
    units: UnitScores


@dataclass(frozen=True)
class _Board:
    """Per-resample (rows, models) arrays of the board's numbers."""

    type_means: dict[str, np.ndarray]
    mean: np.ndarray
    task_mean: np.ndarray
    points: np.ndarray
    ranks: np.ndarray


def unit_set_seed(seed: int, task: str, split: str, subset: str, units: UnitScores) -> int:
    """The seed of the resamples of one set of units: the same for every model that scored
    these units of this (task, split, subset), so that those models are paired."""
    text = "\x1f".join(
        [str(seed), task, split, subset, units.method, units.ids_digest, str(len(units))]
    )
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def spreads(
    entries: Sequence[Entry],
    task_types: Mapping[str, str],
    *,
    resamples: int = 1000,
    seed: int = 42,
    level: float = 0.95,
) -> dict[ModelKey, Spread]:
    """The :class:`Spread` of every model with a score on a task of ``task_types`` (the board's
    tasks, ``{task: type}``): the rows of :func:`harness.leaderboard.aggregate.overview` on the same
    scores, ranked among each other as it ranks them. Deterministic for a given ``seed``."""
    if resamples < 1:
        raise HarnessError(f"resamples must be at least 1, got {resamples} (fix: ask for 1000)")
    if not 0 < level < 1:
        raise HarnessError(f"the interval level must be between 0 and 1, got {level} (fix: 0.95)")
    rows = _rows(entries, task_types)
    if not rows:
        return {}
    models, tasks = sorted(rows), sorted(task_types)
    observed = np.full((len(models), len(tasks)), np.nan)
    groups: dict[UnitSet, list[_Part]] = {}
    for m, model in enumerate(models):
        for t, task in enumerate(tasks):
            entry = rows[model].get(task)
            if entry is None or entry.score is None:
                continue
            observed[m, t] = entry.score
            for key, part in _parts(entry, m, t):
                groups.setdefault(key, []).append(part)
    present = ~np.isnan(observed)
    varying = np.zeros_like(present)
    for parts in groups.values():
        for part in parts:
            varying[part.model, part.task] = True
    types = {
        kind: [tasks.index(task) for task in names]
        for kind, names in tasks_by_type(task_types).items()
    }
    resampled = _resampled(groups, observed, varying, resamples, seed)
    board, point = _board(resampled, present, types), _board(observed[None], present, types)
    return {
        model: _spread(board, point, m, varying[m], types, models, level)
        for m, model in enumerate(models)
    }


def _rows(
    entries: Sequence[Entry], task_types: Mapping[str, str]
) -> dict[ModelKey, dict[str, Entry]]:
    """``{model: {task: entry}}`` of the board's tasks, for models with at least one score
    (the rows of :func:`harness.leaderboard.aggregate.overview`)."""
    rows: dict[ModelKey, dict[str, Entry]] = {}
    for entry in entries:
        if entry.task in task_types:
            rows.setdefault(entry.key, {})[entry.task] = entry
    return {
        model: row
        for model, row in rows.items()
        if any(entry.score is not None for entry in row.values())
    }


def _scored_subsets(subsets: Sequence[Mapping[str, object]]) -> list[str]:
    """The subsets a split's score is taken from (``split_score``): ``default``, else all."""
    names = [str(subset.get("hf_subset", "default")) for subset in subsets]
    return ["default"] if "default" in names else names


def _parts(entry: Entry, m: int, t: int) -> list[tuple[UnitSet, _Part]]:
    """The resampled terms of the entry's task score with the key of their unit set; none
    when a split or subset that the score is taken from has no stored units."""
    splits = list(entry.result.scores)
    parts: list[tuple[UnitSet, _Part]] = []
    for split in splits:
        subsets = _scored_subsets(entry.result.scores[split])
        for subset in subsets:
            units = entry.units(split, subset)
            if units is None:
                return []
            key = (entry.task, split, subset, units.method, units.ids_digest, len(units))
            parts.append((key, _Part(m, t, 1 / len(splits) / len(subsets), units)))
    return parts


def _resampled(
    groups: Mapping[UnitSet, list[_Part]],
    observed: np.ndarray,
    varying: np.ndarray,
    resamples: int,
    seed: int,
) -> np.ndarray:
    """(resamples, models, tasks) task scores: fixed scores as observed, the others summed
    from their parts' resampled statistics; resamples with a non-finite score left out."""
    scores = np.repeat(np.where(varying, 0.0, observed)[None], resamples, axis=0)
    for (task, split, subset, *_), parts in groups.items():
        first = parts[0].units
        blocks = first.resample_indices(resamples, unit_set_seed(seed, task, split, subset, first))
        for part, values in zip(parts, _group_scores(parts, blocks).T, strict=True):
            values = part.units.on_score_scale(part.units.score(), values)
            scores[:, part.model, part.task] += part.weight * values
    finite = np.isfinite(scores[:, varying]).all(axis=1)
    return scores[finite] if finite.any() else observed[None]


def _group_scores(parts: Sequence[_Part], blocks: Iterable[np.ndarray]) -> np.ndarray:
    """(resamples, parts): each part's statistic on every resample of its unit set; the
    ``mean`` statistics of several parts at once, as a count matrix times the stacked values
    (a single one is cheaper by its own statistic)."""
    means = [i for i, part in enumerate(parts) if part.units.statistic == "mean"]
    means = means if len(means) > 1 else []
    others = [i for i in range(len(parts)) if i not in means]
    if means:
        stacked = np.stack([parts[i].units.columns["values"] for i in means], axis=1)
    n_units = len(parts[0].units)
    scores = []
    for index in _joined(blocks):
        chunk = np.empty((len(index), len(parts)))
        if means:
            counts = unit_counts(index, n_units)
            chunk[:, means] = counts @ stacked / counts.sum(axis=1, keepdims=True)
        for i in others:
            chunk[:, i] = parts[i].units.resampled_scores([index])
        scores.append(chunk)
    return np.concatenate(scores)


def _joined(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Consecutive blocks of resample indices joined into about ``_CELLS`` indices each (few
    large products multiply faster than many small ones)."""
    pending: list[np.ndarray] = []
    for block in blocks:
        pending.append(block)
        if sum(part.size for part in pending) >= _CELLS:
            yield np.concatenate(pending)
            pending = []
    if pending:
        yield np.concatenate(pending)


def _board(scores: np.ndarray, present: np.ndarray, types: Mapping[str, list[int]]) -> _Board:
    """The board's numbers on each row of (rows, models, tasks) task scores, by the rules of
    :mod:`harness.leaderboard.aggregate` (a missing task counts in no mean and earns no points)."""
    filled = np.where(present, scores, 0.0)

    def mean_over(columns: list[int]) -> np.ndarray:
        count = present[:, columns].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return filled[:, :, columns].sum(axis=2) / count

    type_means = {kind: mean_over(columns) for kind, columns in types.items()}
    by_type = np.stack(list(type_means.values()), axis=2)
    present_types = ~np.isnan(by_type)
    mean = np.where(present_types, by_type, 0.0).sum(axis=2) / present_types.sum(axis=2)
    n_rows, n_models, n_tasks = scores.shape
    points = np.zeros((n_rows, n_models))
    for task in range(n_tasks):
        who = np.flatnonzero(present[:, task])
        if len(who):
            points[:, who] += n_models - _descending_ranks(scores[:, who, task])[1]
    ranks = _descending_ranks(points)[0].astype(int)
    return _Board(type_means, mean, mean_over(list(range(n_tasks))), points, ranks)


def _descending_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rank of each value within its row of (rows, k) values, 1 for the highest, equal
    values taking their least rank and, second, their average rank."""
    n_rows, k = values.shape
    order = np.argsort(-values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    position = np.broadcast_to(np.arange(k), (n_rows, k))
    starts = np.ones((n_rows, k), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones((n_rows, k), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, position, k)[:, ::-1], axis=1)[:, ::-1]
    least, average = np.empty((n_rows, k)), np.empty((n_rows, k))
    np.put_along_axis(least, order, first + 1.0, axis=1)
    np.put_along_axis(average, order, (first + last) / 2 + 1.0, axis=1)
    return least, average


def _bounds(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` percentiles of each column of (rows, columns) samples."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    return low, high


def _holding(samples: np.ndarray, point: float, level: float) -> Bounds:
    """The percentile interval of one column of samples, widened to hold ``point``."""
    low, high = _bounds(samples[:, None], level)
    return min(float(low[0]), point), max(float(high[0]), point)


def _spread(
    board: _Board,
    point: _Board,
    m: int,
    varying: np.ndarray,
    types: Mapping[str, list[int]],
    models: Sequence[ModelKey],
    level: float,
) -> Spread:
    """Model ``m``'s intervals from the resampled ``board`` and the observed ``point``."""
    rank = int(point.ranks[0, m])
    low, high = _holding(board.ranks[:, m].astype(float), rank, level)
    mean = task_mean = None
    if varying.any():
        mean = _holding(board.mean[:, m], float(point.mean[0, m]), level)
        task_mean = _holding(board.task_mean[:, m], float(point.task_mean[0, m]), level)
    type_intervals: dict[str, Bounds | None] = {}
    for kind, columns in types.items():
        observed = float(point.type_means[kind][0, m])
        varies = varying[columns].any()
        type_intervals[kind] = (
            _holding(board.type_means[kind][:, m], observed, level) if varies else None
        )
    tie_low, tie_high = _bounds(board.points - board.points[:, [m]], level)
    tied = (tie_low <= 0) & (tie_high >= 0)
    return Spread(
        rank_low=math.floor(low),
        rank_high=math.ceil(high),
        mean_low=mean[0] if mean else None,
        mean_high=mean[1] if mean else None,
        task_mean_low=task_mean[0] if task_mean else None,
        task_mean_high=task_mean[1] if task_mean else None,
        type_intervals=type_intervals,
        tied_with=tuple(model for j, model in enumerate(models) if tied[j] and j != m),
    )
