"""One board of the site: a benchmark's tasks, the models that ran them, their Borda ranks with
bootstrap intervals and ties, and the tables and plot data of its pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError, UnknownNameError
from harness.engine.records import ModelRecord
from harness.leaderboard.aggregate import Aggregate, OverviewRow, overview, tasks_by_type
from harness.leaderboard.collect import Entry, ModelKey
from harness.leaderboard.plots import PlotRow
from harness.leaderboard.significance import Spread, spreads
from harness.leaderboard.tables import (
    TIE_MARK,
    Cell,
    Column,
    Row,
    bounds_cell,
    mean_cell,
    model_cell,
    params_text,
    score_cell,
    text_cell,
)

# How the site shows an interval computed for it (the significance module's defaults).
LEVEL = 0.95
RESAMPLES = 1000


@dataclass(frozen=True)
class Benchmark:
    """A named task list: its tasks (with their types) are the columns, results or not."""

    name: str
    task_types: dict[str, str]

    @classmethod
    def from_file(cls, path: Path, known: Mapping[str, str]) -> Benchmark:
        """A task list file: one task name per line, ``#`` comments; ``known`` gives types."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise HarnessError(f"cannot read benchmark file {path}: {error}") from error
        names = [line.split("#")[0].strip() for line in lines]
        names = [name for name in names if name]
        if not names:
            raise HarnessError(f"benchmark file {path} names no task (one task name per line)")
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UnknownNameError(
                "task", unknown[0], known, hint=f"(in benchmark file {path}; see `harness tasks`)"
            )
        return cls(path.stem, {name: known[name] for name in names})


def count(value: int | None) -> int | None:
    """A positive whole number from the metadata, else ``None``."""
    return value if value is not None and value > 0 else None


def first_meta(results: Mapping[str, Entry]) -> ModelRecord:
    """A model revision's metadata, as its first result recorded it."""
    return next(iter(results.values())).model_meta


def model_label(key: ModelKey) -> str:
    """``name (revision)``, and ``[mteb]`` for an external row."""
    return f"{key.name} ({key.revision}){' [mteb]' if key.external else ''}"


def _interval_title(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f"{LEVEL:.0%} bootstrap interval: [{low:.4f}, {high:.4f}]"


class Board:
    """The ranking of one benchmark (or, without one, of every ranked task with a result)."""

    def __init__(self, benchmark: Benchmark | None, entries: Sequence[Entry]) -> None:
        self.benchmark = benchmark
        known = {entry.task: entry.task_type for entry in entries}
        self.task_types = benchmark.task_types if benchmark else dict(sorted(known.items()))
        self.entries = [entry for entry in entries if entry.task in self.task_types]
        self.table: dict[ModelKey, dict[str, float | None]] = {}
        self.by_model: dict[ModelKey, dict[str, Entry]] = {}
        for entry in self.entries:
            self.table.setdefault(entry.key, {})[entry.task] = entry.score
            self.by_model.setdefault(entry.key, {})[entry.task] = entry
        self.rows: list[OverviewRow[ModelKey]] = overview(self.table, self.task_types)
        self.types = tasks_by_type(self.task_types)
        ranked = [entry for entry in self.entries if entry.key in {r.model for r in self.rows}]
        self.spreads: dict[ModelKey, Spread] = (
            spreads(ranked, self.task_types, resamples=RESAMPLES, level=LEVEL) if ranked else {}
        )

    @property
    def title(self) -> str:
        """The board's heading (and its tab's label)."""
        return f"Leaderboard: {self.benchmark.name}" if self.benchmark else "Leaderboard"

    @property
    def tab(self) -> str:
        """The label of the board's tab."""
        return self.benchmark.name if self.benchmark else "All tasks"

    def meta(self, model: ModelKey) -> ModelRecord:
        """The metadata the model revision's first result recorded."""
        return first_meta(self.by_model[model])

    def rank_text(self, model: ModelKey) -> str | None:
        """The model's Borda rank on this board with its interval, if it is on it."""
        rank = next((row.borda_rank for row in self.rows if row.model == model), None)
        return None if rank is None else self._rank_cell(rank, self.spreads.get(model)).text

    def empty_reason(self, covered: Sequence[str]) -> str:
        """Why no model is on the board: which tasks it has, and which the results cover."""
        read = ", ".join(covered) if covered else "no built-in task"
        if self.benchmark is None:
            return f"No result of a built-in task was read; the results read cover: {read}."
        return (
            f"No result of any of the {len(self.task_types)} tasks of {self.benchmark.name}; "
            f"the results read cover: {read}."
        )

    def modalities(self) -> list[str]:
        """Every modality of a model on the board, for the filter."""
        return sorted({m for row in self.rows for m in self.meta(row.model).modalities})

    def overview_columns(
        self, type_href: Mapping[str, str], task_href: Mapping[str, str]
    ) -> list[Column]:
        """The overview's columns: rank, model facts, means, per-type means, per-task scores."""
        return [
            Column(
                "Rank (Borda)",
                "rank",
                css="sticky rank",
                title="Borda rank [its bootstrap interval]",
            ),
            Column(TIE_MARK, "text", css="sticky tie", title="tied: not significantly different"),
            Column("Model", "text", css="sticky model"),
            Column("Revision", "text"),
            Column("Parameters"),
            Column("Embedding dim"),
            Column("Modalities", "text"),
            Column("Mean (TaskType)"),
            Column(f"{LEVEL:.0%} interval", title="bootstrap interval of Mean (TaskType)"),
            Column("Mean (Task)"),
            *(
                Column(kind, href=type_href[kind], group="Mean per task type")
                for kind in self.types
            ),
            *(
                Column(task, href=task_href[task], group=kind)
                for kind, tasks in self.types.items()
                for task in tasks
            ),
        ]

    def overview_row(self, row: OverviewRow[ModelKey], model_href: str) -> Row:
        """One model's line of the overview."""
        key, meta, spread = row.model, self.meta(row.model), self.spreads.get(row.model)
        params, dim = count(meta.n_parameters), count(meta.embed_dim)
        scores = self.table[key]
        mean_ci = (spread.mean_low, spread.mean_high) if spread else (None, None)
        task_ci = (spread.task_mean_low, spread.task_mean_high) if spread else (None, None)
        type_ci = spread.type_intervals if spread else {}
        cells = [
            self._rank_cell(row.borda_rank, spread),
            self._tie_cell(spread),
            model_cell(key.name, key.external, model_href),
            text_cell(key.revision),
            text_cell(params_text(params), params, params, css="num"),
            text_cell(dim, css="num"),
            text_cell(", ".join(meta.modalities) or None),
            _mean(row.mean_of_type_means, *mean_ci),
            bounds_cell(*mean_ci, f"{LEVEL:.0%} bootstrap interval of Mean (TaskType)"),
            _mean(row.mean_over_tasks, *task_ci),
            *(
                _mean(row.type_means[kind], *(type_ci.get(kind) or (None, None)))
                for kind in self.types
            ),
            *(score_cell(scores.get(task)) for tasks in self.types.values() for task in tasks),
        ]
        data = {
            "name": key.name,
            "revision": key.revision,
            "modalities": " ".join(meta.modalities),
            "params": str(params or ""),
        }
        return Row(cells, data, "external" if key.external else "")

    @staticmethod
    def _rank_cell(rank: int, spread: Spread | None) -> Cell:
        if spread is None:
            return Cell(str(rank), rank, str(rank), "num sticky rank")
        low, high = spread.rank_low, spread.rank_high
        title = f"{LEVEL:.0%} bootstrap interval of the rank: {low} to {high}"
        value = {"rank": rank, "interval": [low, high]}
        return Cell(f"{rank} [{low}–{high}]", value, str(rank), "num sticky rank", title)

    @staticmethod
    def _tie_cell(spread: Spread | None) -> Cell:
        tied = [model_label(key) for key in spread.tied_with] if spread else []
        if not tied:
            return Cell("", [], "", "sticky tie")
        title = "not significantly different from: " + "; ".join(tied)
        return Cell(TIE_MARK, tied, "1", "sticky tie", title)

    def plot_rows(self) -> list[PlotRow]:
        """The plots' data: a point or bar per model, with the intervals computed for it."""
        names = [row.model.name for row in self.rows]
        plot_rows = []
        for row in self.rows:
            key, spread = row.model, self.spreads.get(row.model)
            label = key.name if names.count(key.name) == 1 else f"{key.name} ({key.revision})"
            label += " (mteb)" if key.external and names.count(key.name) > 1 else ""
            plot_rows.append(
                PlotRow(
                    label=label,
                    external=key.external,
                    n_parameters=count(self.meta(key).n_parameters),
                    mean=_complete(row.mean_of_type_means),
                    mean_low=spread.mean_low if spread else None,
                    mean_high=spread.mean_high if spread else None,
                    type_means={kind: _complete(row.type_means[kind]) for kind in self.types},
                    type_intervals=dict(spread.type_intervals) if spread else {},
                )
            )
        return plot_rows


def _complete(aggregate: Aggregate) -> float | None:
    """A mean the plots may show: one over an incomplete set is not comparable, so none."""
    return aggregate.value if aggregate.complete else None


def _mean(aggregate: Aggregate, low: float | None, high: float | None) -> Cell:
    """A mean cell whose title gives its bootstrap interval where one was computed."""
    return mean_cell(aggregate, _interval_title(low, high))
