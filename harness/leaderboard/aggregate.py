"""Pure aggregation: per-task scores in, leaderboard tables out.

The numbers follow mteb's leaderboard (``mteb/benchmarks/_create_table.py``): a task's score is
the mean of its main score over the eval splits, a type's score the mean over its tasks, the
MIEB ordering the mean of the per-type means, and the rank a Borda count over tasks. Where mteb
hides an aggregate over an incomplete set (null), the leaderboard shows the mean of what exists
*marked* with its coverage, so it is never mistaken for a complete one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

# A model's per-task scores: ``{task: score}``; a missing task is absent or ``None``.
Scores = Mapping[str, float | None]
if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

# A row of the table: a model name, or on the site a ``harness.leaderboard.collect.ModelKey``; rows
# are ordered (ties of rank by row).
Row = TypeVar("Row", bound="SupportsRichComparison")


@dataclass(frozen=True)
class Aggregate:
    """A mean over ``present`` of ``total`` tasks; ``value`` is ``None`` when none is present."""

    value: float | None
    present: int
    total: int

    @property
    def complete(self) -> bool:
        """Whether every task of the set has a score."""
        return self.total > 0 and self.present == self.total


@dataclass(frozen=True)
class OverviewRow(Generic[Row]):
    """One model's line of the overview table."""

    model: Row
    borda_rank: int
    type_means: dict[str, Aggregate]
    mean_of_type_means: Aggregate
    mean_over_tasks: Aggregate


def mean(values: Sequence[float | None]) -> Aggregate:
    """The mean of the present values, with how many of ``len(values)`` were present."""
    present = [value for value in values if value is not None]
    value = sum(present) / len(present) if present else None
    return Aggregate(value, len(present), len(values))


def tasks_by_type(task_types: Mapping[str, str]) -> dict[str, list[str]]:
    """``{type: [tasks]}``, types and tasks in name order."""
    grouped: dict[str, list[str]] = {}
    for task in sorted(task_types):
        grouped.setdefault(task_types[task], []).append(task)
    return dict(sorted(grouped.items()))


def type_means(scores: Scores, task_types: Mapping[str, str]) -> dict[str, Aggregate]:
    """The mean score of each task type."""
    return {
        kind: mean([scores.get(task) for task in tasks])
        for kind, tasks in tasks_by_type(task_types).items()
    }


def mean_of_type_means(means: Mapping[str, Aggregate]) -> Aggregate:
    """MIEB's ordering: the mean of the per-type means, complete only when every type is."""
    value = mean([aggregate.value for aggregate in means.values()]).value
    present = sum(aggregate.present for aggregate in means.values())
    total = sum(aggregate.total for aggregate in means.values())
    return Aggregate(value, present, total)


def borda_ranks(table: Mapping[Row, Scores], tasks: Sequence[str]) -> dict[Row, int]:
    """mteb's Borda rank: per task, a model earns ``n - rank`` points (rank 1 = best, ties
    take the average rank, a missing task earns nothing, ``n`` = number of models); models
    are ranked by their total points, ties sharing the best rank (``method="min"``)."""
    count = len(table)
    points = dict.fromkeys(table, 0.0)
    for task in tasks:
        values = {m: score for m, s in table.items() if (score := s.get(task)) is not None}
        for model, value in values.items():
            better = sum(other > value for other in values.values())
            equal = sum(other == value for other in values.values())
            points[model] += count - (better + (equal + 1) / 2)
    return {
        model: 1 + sum(other > own for other in points.values()) for model, own in points.items()
    }


def overview(table: Mapping[Row, Scores], task_types: Mapping[str, str]) -> list[OverviewRow[Row]]:
    """One row per model with a score, in Borda order (ties by name)."""
    table = {m: s for m, s in table.items() if any(v is not None for v in s.values())}
    tasks = sorted(task_types)
    ranks = borda_ranks(table, tasks)
    rows = []
    for model, scores in table.items():
        means = type_means(scores, task_types)
        rows.append(
            OverviewRow(
                model=model,
                borda_rank=ranks[model],
                type_means=means,
                mean_of_type_means=mean_of_type_means(means),
                mean_over_tasks=mean([scores.get(task) for task in tasks]),
            )
        )
    return sorted(rows, key=lambda row: (row.borda_rank, row.model))
