"""The facts and tables of the task pages: what a task is, and every metric of every result,
the main metric first and highlighted, the others in natural order (``ndcg_at_1``, ``_at_3``,
``_at_5``, ``_at_10``, ``_at_100``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.engine.records import TaskRecord
from harness.engine.results import ResultFile
from harness.leaderboard.collect import Entry
from harness.leaderboard.tables import (
    MISSING,
    Cell,
    Column,
    Row,
    Table,
    interval_cell,
    is_number,
    model_cell,
    score_cell,
    text_cell,
)
from harness.tasks.definition import TaskDefinition


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting embedded numbers in numeric order: ``at_5`` before ``at_10``."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part
    )


def _number(value: Any) -> float | None:
    """A finite metric value, else ``None`` (shown as missing; an mteb file may hold NaN)."""
    return float(value) if is_number(value) else None


def _recorded(record: TaskRecord, entries: Sequence[Entry]) -> TaskRecord:
    """The task record of the first harness result of the task, else the definition's."""
    for entry in entries:
        if isinstance(entry.result, ResultFile):
            return entry.result.harness.task
    return record


def _scored_units(entries: Sequence[Entry]) -> dict[str, int]:
    """``{split: units}`` a harness result scored (queries, items, pairs), where it stored them."""
    for entry in entries:
        if isinstance(entry.result, ResultFile):
            units = {split: entry.units(split) for split in entry.result.scores}
            return {split: len(unit) for split, unit in units.items() if unit is not None}
    return {}


def _dataset_path(definition: TaskDefinition) -> str:
    """A hub dataset's id; a local folder by its name only (no path of the building machine)."""
    if definition.is_local:
        return f"local folder {Path(definition.dataset.path).name}"
    return definition.dataset.path


def task_facts(
    definition: TaskDefinition, record: TaskRecord, revision: str, entries: Sequence[Entry]
) -> list[tuple[str, str]]:
    """The task page's facts: type, description, dataset, samples, chance level, main metric.

    Sample counts and chance levels are a harness result's record of them where one ran the
    task (they are counted on the data), else the definition's.
    """
    recorded = _recorded(record, entries)
    samples = recorded.n_samples or record.n_samples
    counted = "" if samples else " scored"
    samples = samples or _scored_units(entries)
    chance = recorded.chance_level or record.chance_level or {}
    return [
        ("Type", definition.type),
        ("Description", definition.description or MISSING),
        ("Dataset", _dataset_path(definition)),
        ("Dataset revision", revision),
        (
            "Samples",
            ", ".join(f"{split}: {n:,}{counted}" for split, n in samples.items()) or MISSING,
        ),
        ("Chance level", ", ".join(f"{split}: {v:.4f}" for split, v in chance.items()) or MISSING),
        ("Main metric", record.main_score or MISSING),
        ("Eval splits", ", ".join(definition.eval_splits)),
    ]


def split_table(
    name: str,
    split: str,
    main: str,
    entries: Sequence[Entry],
    links: Callable[[Entry], tuple[str, str | None]],
) -> Table:
    """Every result's metrics on one split, a row per subset: the main metric first.

    ``links`` gives an entry's model page (or ``None``) and its raw JSON copy.
    """
    subsets = [(e, s) for e in entries for s in e.result.scores.get(split, [])]
    metrics = {k for _, s in subsets for k, v in s.items() if _number(v) is not None}
    others = sorted(metrics - {"main_score", main}, key=natural_key)
    columns = [
        Column("Model", "text", css="sticky model"),
        Column("Revision", "text"),
        Column("Subset", "text"),
        Column(f"{main} (main)", css="main", title="the task's main metric"),
        Column("95% interval"),
        *(Column(metric) for metric in others),
        Column("Raw JSON", None),
    ]
    rows = []
    for entry, scores in subsets:
        subset = scores.get("hf_subset", "default")
        raw, model_href = links(entry)
        cells = [
            model_cell(entry.model, entry.external, model_href),
            text_cell(entry.revision),
            text_cell(subset),
            score_cell(_number(scores.get("main_score")), "main"),
            interval_cell(entry.interval(split, subset)),
            *(score_cell(_number(scores.get(metric))) for metric in others),
            Cell("JSON", raw, "", href=raw),
        ]
        rows.append(Row(cells, css="external" if entry.external else ""))
    return Table(name, columns, rows)
