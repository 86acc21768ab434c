"""The tables of the site as data: columns and cells that the templates render and the
downloads write, so a page and its CSV/JSON download always show the same values.

A :class:`Cell` carries its text as shown (the CSV value), its value at full precision (the JSON
value) and the key the browser sorts on. Nothing here is HTML: the templates escape every string.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard

from harness.leaderboard.aggregate import Aggregate

MISSING = "—"
PARTIAL_MARK = "†"
TIE_MARK = "≈"
# The mark of a row read from a published mteb result file.
EXTERNAL_BADGE = "mteb"


@dataclass(frozen=True)
class Column:
    """A column header; ``sort`` (``num``, ``text`` or ``rank``) makes it sort on click,
    ``group`` names the header above it (the task type of a per-task column)."""

    label: str
    sort: str | None = "num"
    href: str | None = None
    group: str = ""
    css: str = ""
    title: str = ""


@dataclass(frozen=True)
class Cell:
    """One cell: ``text`` as shown, ``value`` for the JSON download, ``key`` to sort on."""

    text: str
    value: Any = None
    key: str = ""
    css: str = ""
    title: str = ""
    href: str | None = None
    badge: str = ""
    partial: bool = False


@dataclass
class Row:
    """A table row; ``data`` becomes ``data-*`` attributes (the overview's filters read them)."""

    cells: list[Cell]
    data: dict[str, str] = field(default_factory=dict)
    css: str = ""


@dataclass
class Table:
    """A table of a page; ``name`` is its download's name (unique within the site)."""

    name: str
    columns: list[Column]
    rows: list[Row]
    ident: str = ""
    caption: str = ""
    downloads: dict[str, str] = field(default_factory=dict)

    @property
    def grouped(self) -> bool:
        """Whether any column sits under a group header."""
        return any(column.group for column in self.columns)

    def groups(self) -> list[tuple[str, int]]:
        """The group header row: ``(label, span)`` runs over the columns."""
        runs: list[tuple[str, int]] = []
        for column in self.columns:
            if runs and runs[-1][0] == column.group:
                runs[-1] = (column.group, runs[-1][1] + 1)
            else:
                runs.append((column.group, 1))
        return runs


def is_number(value: Any) -> TypeGuard[float]:
    """Whether ``value`` is a finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def score_cell(value: float | None, css: str = "") -> Cell:
    """A score to four decimals; missing when ``None``."""
    if value is None:
        return Cell(MISSING, None, "", f"missing {css}".strip(), "no result")
    return Cell(f"{value:.4f}", value, repr(value), f"num {css}".strip())


def mean_cell(aggregate: Aggregate, interval: str = "") -> Cell:
    """A mean (``interval``: its title); one over an incomplete set is marked and sorts after
    complete ones."""
    value = aggregate.value
    if value is None or aggregate.complete:
        return (
            replace(score_cell(value), title=interval) if value is not None else score_cell(value)
        )
    note = f"incomplete: mean over {aggregate.present} of {aggregate.total} tasks"
    return Cell(
        f"{value:.4f}{PARTIAL_MARK}",
        value,
        repr(value),
        "num partial",
        f"{note}; {interval}" if interval else note,
        partial=True,
    )


def interval_cell(interval: Mapping[str, Any] | None) -> Cell:
    """A recorded bootstrap interval, ``[low, high]``, sorted by its width."""
    low, high = (interval or {}).get("low"), (interval or {}).get("high")
    if not (is_number(low) and is_number(high)):
        return Cell(MISSING, None, "", "missing", "no interval recorded")
    level = (interval or {}).get("level")
    resamples = (interval or {}).get("resamples")
    title = f"{level:.0%} bootstrap interval over {resamples} resamples" if is_number(level) else ""
    return Cell(f"[{low:.4f}, {high:.4f}]", [low, high], repr(high - low), "num interval", title)


def bounds_cell(low: float | None, high: float | None, title: str) -> Cell:
    """An interval computed for the site (``None`` bounds: nothing varies), by its width."""
    if low is None or high is None:
        return Cell(MISSING, None, "", "missing", "no interval: no stored per-unit scores")
    return Cell(f"[{low:.4f}, {high:.4f}]", [low, high], repr(high - low), "num interval", title)


def text_cell(text: Any, key: Any = None, value: Any = None, **extra: Any) -> Cell:
    """A cell showing ``text`` (missing when ``None``), sorted by ``key`` and downloaded as
    ``value`` (both default to ``text``)."""
    key = text if key is None else key
    shown = MISSING if text is None else str(text)
    return Cell(shown, text if value is None else value, "" if key is None else str(key), **extra)


def model_cell(name: str, external: bool, href: str | None) -> Cell:
    """A model's name, linking to its page (if any), with the badge of an external result."""
    return Cell(name, name, name, "sticky model", href=href, badge=EXTERNAL_BADGE * external)


def params_text(count: int | None) -> str | None:
    """A parameter count for people: 4.7K, 0.05M, 86.2M, 1.20B (never a misleading 0.0M)."""
    if count is None:
        return None
    if count < 10**4:
        return f"{count / 1e3:.1f}K"
    if count < 10**6:
        return f"{count / 1e6:.2f}M"
    if count < 10**9:
        return f"{count / 1e6:.1f}M"
    return f"{count / 1e9:.2f}B"
