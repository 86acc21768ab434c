"""The leaderboard's plots: the payload's numbers, its safe embedding, the bundled plotly.js, and
both plots drawn by ``static/plots.js`` in Debian's chromium from a ``file://`` page."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.leaderboard.plots import (
    DATA_ID,
    PLOT_SCRIPTS,
    SERIES_NAMES,
    SIZE_PLOT_LABELLED,
    TYPE_PLOT_SHOWN,
    PlotRow,
    plot_markup,
    plot_payload,
)

STATIC = Path(__file__).resolve().parent.parent / "harness" / "leaderboard" / "static"
VENDOR = STATIC / "vendor"
HOSTILE = "</script><script>alert(1)</script>"
TAGGED = "<b>bold</b> &amp; <a href='https://example.org'>link</a>"  # plotly's label markup
TYPES = ["Retrieval", "STS"]


def _row(
    label: str, external: bool = False, n_parameters: int | None = 10**8, **fields: Any
) -> PlotRow:
    values: dict[str, Any] = {
        "mean": 0.6,
        "mean_low": 0.55,
        "mean_high": 0.66,
        "type_means": {"Retrieval": 0.5, "STS": 0.7},
        "type_intervals": {"Retrieval": (0.45, 0.52), "STS": (0.68, 0.75)},
    }
    values.update(fields)
    return PlotRow(label=label, external=external, n_parameters=n_parameters, **values)


EXTERNAL: dict[str, Any] = {"mean_low": None, "mean_high": None, "type_intervals": {}}
ROWS = [
    _row("ours"),
    _row("published", external=True, n_parameters=3 * 10**8, mean=0.65, **EXTERNAL),
    _row("no-size", n_parameters=None),
    _row("no-mean", external=True, mean=None, type_means={"STS": 0.4}, **EXTERNAL),
]


def test_size_plot_series_error_bars_and_left_out_count() -> None:
    size = plot_payload(ROWS, TYPES)["size"]
    ours, published = size["series"]
    assert (ours["name"], ours["external"], ours["labels"]) == (
        SERIES_NAMES[False],
        False,
        ["ours"],
    )
    assert (ours["x"], ours["y"], ours["low"], ours["high"]) == ([10**8], [0.6], [0.55], [0.66])
    assert ours["error_minus"] == [pytest.approx(0.6 - 0.55)]
    assert ours["error_plus"] == [pytest.approx(0.66 - 0.6)]
    assert (published["external"], published["labels"], published["x"]) == (
        True,
        ["published"],
        [3 * 10**8],
    )
    assert published["y"] == [0.65]
    assert published["error_minus"] == published["error_plus"] == [None]
    assert size["note"].startswith(
        "2 of 4 models shown; left out: 1 model without a parameter count and "
        "1 model without a mean over every task type."
    )
    assert size["empty"] is None
    assert size["label_points"] is True


def test_type_plot_bars_per_model_with_intervals() -> None:
    plot = plot_payload(ROWS, TYPES)["types"]
    assert plot["types"] == TYPES
    assert [series["name"] for series in plot["series"]] == [row.label for row in ROWS]
    ours, published, _, no_mean = plot["series"]
    assert ours["y"] == [0.5, 0.7]
    assert ours["error_minus"] == [pytest.approx(0.05), pytest.approx(0.02)]
    assert ours["error_plus"] == [pytest.approx(0.02), pytest.approx(0.05)]
    assert (published["external"], published["error_plus"]) == (True, [None, None])
    assert (no_mean["y"], no_mean["low"]) == ([None, 0.4], [None, None])
    assert all(series["shown"] for series in plot["series"])
    assert "in table order" not in plot["note"]


def test_type_plot_starts_with_the_first_models() -> None:
    rows = [_row(f"m{index}") for index in range(TYPE_PLOT_SHOWN + 2)]
    plot = plot_payload(rows, TYPES)["types"]
    assert [series["shown"] for series in plot["series"]] == [True] * TYPE_PLOT_SHOWN + [False] * 2
    assert f"first {TYPE_PLOT_SHOWN} of {TYPE_PLOT_SHOWN + 2} models" in plot["note"]


def test_size_plot_names_its_points_only_when_few() -> None:
    rows = [_row(f"m{index}") for index in range(SIZE_PLOT_LABELLED + 1)]
    assert plot_payload(rows[:-1], TYPES)["size"]["label_points"] is True
    assert plot_payload(rows, TYPES)["size"]["label_points"] is False


def test_interval_not_containing_the_value_gives_a_zero_bar_on_that_side() -> None:
    row = _row("skewed", mean=0.5, mean_low=0.52, mean_high=0.6)
    (series,) = plot_payload([row], TYPES)["size"]["series"]
    assert series["error_minus"] == [0.0]
    assert series["error_plus"] == [pytest.approx(0.1)]
    assert series["low"] == [0.52]


def test_nothing_to_plot_says_why() -> None:
    payload = plot_payload([_row("tiny", n_parameters=None, type_means={})], TYPES)
    assert payload["size"]["series"] == []
    assert payload["size"]["empty"] == "No model here has both a parameter count and a mean."
    assert payload["types"]["empty"] == "No model here has a score on any task type."
    assert plot_payload([], [])["size"]["note"].startswith("0 of 0 models shown.")


class _Scripts(HTMLParser):
    """The elements of a fragment and the text of its ``<script>`` elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def test_markup_embeds_a_hostile_name_as_data() -> None:
    payload = plot_payload([_row(HOSTILE), _row("a & b <c>", external=True, **EXTERNAL)], TYPES)
    markup = str(plot_markup(payload))
    parser = _Scripts()
    parser.feed(markup)
    assert [attrs for tag, attrs in parser.tags if tag == "script"] == [
        {"type": "application/json", "id": DATA_ID}
    ]
    plots = [attrs for tag, attrs in parser.tags if attrs.get("class") == "plot"]
    assert [(attrs["id"], attrs["data-kind"]) for attrs in plots] == [
        ("plot-size", "size"),
        ("plot-types", "types"),
    ]
    (data,) = parser.scripts
    assert not re.search(r"[<>&]", data)
    assert json.loads(data) == payload
    assert markup.count("<script") == 1
    assert "alert" not in markup.replace(data, "")


def test_markup_escapes_the_notes() -> None:
    payload = plot_payload([_row("x")], TYPES)
    payload["size"]["note"] = "<b>bold</b>"
    assert "&lt;b&gt;bold&lt;/b&gt;" in str(plot_markup(payload))


def test_vendored_plotly_matches_its_readme() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `plotly-basic.min.js`"))
    version, sha256 = re.search(r"\| (\d+\.\d+\.\d+) \|.*`([0-9a-f]{64})`", row).groups()  # type: ignore[union-attr]
    bundle = (VENDOR / "plotly-basic.min.js").read_bytes()
    assert hashlib.sha256(bundle).hexdigest() == sha256
    assert f"plotly.js (basic - minified) v{version}".encode() in bundle[:200]
    assert "MIT License" in (VENDOR / "LICENSE").read_text(encoding="utf-8")
    for script in PLOT_SCRIPTS:
        assert (STATIC.parent / script).is_file(), script


# --- in a browser ------------------------------------------------------------------------


def _page(folder: Path, payload: dict[str, Any]) -> str:
    """A standalone ``file://`` page with the plots and the scripts, as the site links them."""
    for script in PLOT_SCRIPTS:
        target = folder / script
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STATIC.parent / script, target)
    scripts = "".join(f'<script src="{script}" defer></script>' for script in PLOT_SCRIPTS)
    page = folder / "index.html"
    page.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8">{scripts}</head>'
        f"<body>{plot_markup(payload)}</body></html>",
        encoding="utf-8",
    )
    return page.as_uri()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed"
    )
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium; make test does it)"
        )
    with playwright_api.sync_playwright() as driver:
        instance = driver.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        yield instance
        instance.close()


def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    """The page at ``url`` once its plots are drawn, and its errors and dialogs so far."""
    tab = browser.new_page()
    problems: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error":
            problems.append(message.text)

    def dialog(opened: Any) -> None:
        problems.append(opened.message)
        opened.dismiss()

    tab.on("console", console)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("dialog", dialog)
    tab.goto(url)
    tab.wait_for_load_state("load")
    return tab, problems


def test_plots_drawn_from_file_url(browser: Any, tmp_path: Path) -> None:
    rows = [
        *ROWS,
        _row(HOSTILE, n_parameters=5 * 10**7, mean=0.7, mean_low=0.6, mean_high=0.8),
        _row(TAGGED, n_parameters=None),
    ]
    tab, problems = _open(browser, _page(tmp_path, plot_payload(rows, TYPES)))
    for kind in ("size", "types"):
        tab.locator(f"#plot-{kind} .main-svg").first.wait_for()
    assert tab.locator("#plot-size .scatterlayer .point").count() == 3
    assert tab.locator("#plot-size .xaxislayer-above .xtick").count() >= 2
    heights = tab.evaluate(
        "Array.from(document.querySelectorAll('#plot-types .barlayer .point path'),"
        " (bar) => bar.getBBox().height)"
    )
    assert sum(height > 0 for height in heights) == 11  # the 12th, no-mean's Retrieval, is null
    legend = tab.locator("#plot-types .legendtext").all_text_contents()
    assert legend == [row.label for row in rows]
    assert tab.locator("#plot-types .legend a").count() == 0
    # 4 harness models x 2 types and 1 harness point: the external rows have no interval.
    assert tab.locator("#plot-types .errorbar path.yerror").count() == 8
    assert tab.locator("#plot-size .errorbar path.yerror").count() == 2
    assert tab.locator("#plot-size .textpoint").all_text_contents() == [
        "ours",
        HOSTILE,
        "published",
    ]
    assert tab.locator(".modebar-btn[data-title^='Share']").count() == 0
    assert problems == []
    tab.close()


def test_empty_payload_shows_sentences(browser: Any, tmp_path: Path) -> None:
    tab, problems = _open(browser, _page(tmp_path, plot_payload([], TYPES)))
    sentences = tab.locator(".plot .plot-empty").all_inner_texts()
    assert sentences == [
        "No model here has both a parameter count and a mean.",
        "No model here has a score on any task type.",
    ]
    assert tab.locator(".main-svg").count() == 0
    assert problems == []
    tab.close()
