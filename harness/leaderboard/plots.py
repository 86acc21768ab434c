"""The leaderboard's plots: score against model size, and a per-type comparison of models.

:func:`plot_payload` turns table rows into JSON-able series; :func:`plot_markup` writes the plot
containers and that payload as a ``<script type="application/json">`` block, which
``static/plots.js`` draws with the bundled plotly.js (``static/vendor/``, see its README). The
page loads :data:`PLOT_SCRIPTS` in order; nothing comes from a CDN, so the site works from
``file://``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

SIZE = "size"
TYPES = "types"
PLOT_TITLES = {SIZE: "Score vs. model size", TYPES: "Per-type comparison"}
DATA_ID = "plot-data"
PLOT_SCRIPTS: tuple[str, ...] = ("static/vendor/plotly-basic.min.js", "static/plots.js")
SERIES_NAMES = {False: "harness results", True: "external results (mteb files)"}
# The per-type plot starts with this many models (in table order); the legend toggles the rest.
TYPE_PLOT_SHOWN = 10
# Up to this many points, the size plot writes each model's name beside its point.
SIZE_PLOT_LABELLED = 12
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


@dataclass(frozen=True)
class PlotRow:
    """One model revision of a table, as the plots need it (intervals are ``(low, high)``)."""

    label: str
    external: bool
    n_parameters: int | None
    mean: float | None
    mean_low: float | None
    mean_high: float | None
    type_means: dict[str, float | None]
    type_intervals: dict[str, tuple[float, float] | None]


def _bars(
    values: Sequence[float | None], intervals: Sequence[tuple[float, float] | None]
) -> dict[str, list[float | None]]:
    """Values with their intervals and the error bars plotly draws (distances from the value).

    A bar is ``None`` where the value or its interval is missing. A bootstrap interval need not
    contain the point estimate; the bar on that side is then 0 (the hover text gives the bounds).
    """
    minus: list[float | None] = []
    plus: list[float | None] = []
    for value, interval in zip(values, intervals, strict=True):
        if value is None or interval is None:
            minus.append(None)
            plus.append(None)
        else:
            minus.append(max(value - interval[0], 0.0))
            plus.append(max(interval[1] - value, 0.0))
    return {
        "y": list(values),
        "low": [None if i is None else i[0] for i in intervals],
        "high": [None if i is None else i[1] for i in intervals],
        "error_minus": minus,
        "error_plus": plus,
    }


def _mean_interval(row: PlotRow) -> tuple[float, float] | None:
    if row.mean_low is None or row.mean_high is None:
        return None
    return (row.mean_low, row.mean_high)


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _size_plot(rows: Sequence[PlotRow]) -> dict[str, Any]:
    """One scatter series per origin (harness, external) of the models with a size and a mean."""
    sized = [row for row in rows if row.n_parameters is not None and row.n_parameters > 0]
    plotted = [row for row in sized if row.mean is not None]
    no_size, no_mean = len(rows) - len(sized), len(sized) - len(plotted)
    series = []
    for external in (False, True):
        group = [row for row in plotted if row.external is external]
        if group:
            series.append(
                {
                    "name": SERIES_NAMES[external],
                    "external": external,
                    "labels": [row.label for row in group],
                    "x": [row.n_parameters for row in group],
                    **_bars([row.mean for row in group], [_mean_interval(row) for row in group]),
                }
            )
    left_out = []
    if no_size:
        left_out.append(f"{_count(no_size, 'model')} without a parameter count")
    if no_mean:
        left_out.append(f"{_count(no_mean, 'model')} without a mean over every task type")
    note = f"{len(plotted)} of {_count(len(rows), 'model')} shown"
    note += f"; left out: {' and '.join(left_out)}." if left_out else "."
    note += " Error bars: the bootstrap interval of the mean (external results have none)."
    return {
        "x_title": "Parameters (log scale)",
        "y_title": "Mean (TaskType)",
        "series": series,
        "label_points": len(plotted) <= SIZE_PLOT_LABELLED,
        "note": note,
        "empty": None if plotted else "No model here has both a parameter count and a mean.",
    }


def _types_plot(rows: Sequence[PlotRow], types: Sequence[str]) -> dict[str, Any]:
    """One bar series per model, one group of bars per task type."""
    series = [
        {
            "name": row.label,
            "external": row.external,
            "shown": index < TYPE_PLOT_SHOWN,
            **_bars(
                [row.type_means.get(kind) for kind in types],
                [row.type_intervals.get(kind) for kind in types],
            ),
        }
        for index, row in enumerate(rows)
    ]
    note = "Mean score per task type; error bars: its bootstrap interval; hatched: external."
    if len(rows) > TYPE_PLOT_SHOWN:
        note += (
            f" The first {TYPE_PLOT_SHOWN} of {len(rows)} models in table order are drawn;"
            " click a name in the legend to add or remove a model."
        )
    has_bar = any(row.type_means.get(kind) is not None for row in rows for kind in types)
    return {
        "types": list(types),
        "y_title": "Mean score",
        "series": series,
        "note": note,
        "empty": None if has_bar else "No model here has a score on any task type.",
    }


def plot_payload(rows: Sequence[PlotRow], types: Sequence[str]) -> dict[str, Any]:
    """The JSON-able data of both plots, for ``rows`` in table order and ``types`` as columns."""
    return {SIZE: _size_plot(rows), TYPES: _types_plot(rows, types)}


def _embedded_json(payload: dict[str, Any]) -> str:
    """``payload`` as JSON that cannot end or open an HTML element (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(payload, allow_nan=False, ensure_ascii=False)
    return "".join(_JSON_ESCAPES.get(char, char) for char in text)


def plot_markup(payload: dict[str, Any]) -> Markup:
    """The plot containers, their captions and the payload block that ``plots.js`` reads."""
    figures = Markup("").join(
        Markup(
            '<figure class="plot-figure"><div class="plot" id="plot-{kind}" data-kind="{kind}">'
            "</div><figcaption><strong>{title}</strong>"
            " {note}</figcaption></figure>\n"
        ).format(kind=kind, title=title, note=payload.get(kind, {}).get("note") or "")
        for kind, title in PLOT_TITLES.items()
    )
    data = Markup('<script type="application/json" id="{id}">{json}</script>').format(
        id=DATA_ID, json=Markup(_embedded_json(payload))
    )
    return Markup('<section class="plots">\n{figures}{data}</section>').format(
        figures=figures, data=data
    )
