"""The built site in a real browser: Debian's chromium, driven headless by playwright.

One site is built from harness results and, for the same tasks, mteb result files written by
mteb's own ``TaskResult`` code, with two benchmark boards. It is served on 127.0.0.1 by
``http.server`` in a thread; every request the browser makes is recorded and must stay there.
Screenshots go to ``$HARNESS_SCREENSHOTS`` when set, else to the test's temporary folder.
Skipped, with the reason, when chromium or playwright is missing (``make test`` installs both).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.leaderboard.board import Benchmark
from harness.leaderboard.site import build_site, page_name
from harness.tasks.loading import dataset_revision
from harness.tasks.registry import builtin_tasks
from tests.leaderboard_fixtures import HOSTILE, S1, T1, T2, TYPES, write_table
from tests.mteb_fixtures import write_mteb_result

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium; make test does it)",
        allow_module_level=True,
    )
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LONG = "org/a-published-model-with-a-name-long-enough-to-wrap-in-a-narrow-column-v2"
# Published results of the same tasks (mteb wants an organisation in a model's name).
PUBLISHED = {
    ("org/alpha", 86_192_640): {T1: 0.88, T2: 0.52, S1: 0.31},
    (LONG, 46_785): {T1: 0.6, T2: 0.6, S1: 0.6},
}
# Borda points over the three tasks (5 models): LONG 8, HOSTILE 7.5, org/alpha 7, alpha 6.5.
BORDA_ORDER = [LONG + " [mteb]", HOSTILE, "org/alpha [mteb]", "alpha", "small"]
BOARDS = [
    Benchmark("demo-shapes", dict(TYPES)),
    Benchmark("retrieval", {task: kind for task, kind in TYPES.items() if kind == "retrieval"}),
]


def _write_published(root: Path) -> Path:
    """The mteb result files of :data:`PUBLISHED`, as mteb writes them."""
    definitions = builtin_tasks()
    for (model, size), scores in PUBLISHED.items():
        for task, score in scores.items():
            revision = dataset_revision(definitions[task])
            write_mteb_result(
                root, model, "r1", task, {"test": score},
                dataset_revision=revision, n_parameters=size, embed_dim=32,
            )  # fmt: skip
    return root


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """No request log on stderr."""


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the site built from harness and mteb results, served on localhost."""
    root = tmp_path_factory.mktemp("browser")
    out = root / "site"
    results = [write_table(root / "results"), _write_published(root / "published")]
    collection = build_site(results, out, BOARDS)
    assert not collection.skipped, collection.skipped
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as driver:
        instance = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$HARNESS_SCREENSHOTS`` when set."""
    folder = os.environ.get("HARNESS_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser: Any, site_url: str) -> Iterator[Any]:
    """The first board, opened at a desktop width; dialogs, console errors and every requested
    URL are recorded, and after the test none may have happened or left 127.0.0.1."""
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    events: dict[str, list[str]] = {"dialogs": [], "errors": [], "requests": []}

    def dialog(box: Any) -> None:
        events["dialogs"].append(box.message)
        box.dismiss()

    tab.on("dialog", dialog)

    def console(message: Any) -> None:
        if message.type == "error":
            events["errors"].append(message.text)

    tab.on("console", console)
    tab.on("pageerror", lambda error: events["errors"].append(str(error)))
    tab.on("request", lambda request: events["requests"].append(request.url))
    tab.goto(site_url)
    tab.wait_for_selector(".plot .main-svg")
    yield tab
    assert events["dialogs"] == [] and events["errors"] == []
    hosts = {urlsplit(url).hostname for url in events["requests"] if not url.startswith("data:")}
    assert hosts == {"127.0.0.1"}
    tab.close()


def _names(page: Any) -> list[str]:
    """The visible overview rows' model names as shown, ``[mteb]`` after an external one."""
    return page.eval_on_selector_all(
        "#overview tbody tr:not([hidden])",
        "rows => rows.map(r => r.querySelector('td.model a').textContent"
        " + (r.classList.contains('external') ? ' [mteb]' : ''))",
    )


def test_board_shows_our_and_published_rows_with_rank_intervals(page: Any, shots: Path) -> None:
    assert _names(page) == BORDA_ORDER
    external = page.locator("#overview tr.external")
    assert external.count() == 2 and external.locator(".badge", has_text="mteb").count() == 2
    ranks = page.locator("#overview td.rank").all_inner_texts()
    assert [re.fullmatch(r"(\d) \[(\d)–(\d)\]", rank) is not None for rank in ranks] == [True] * 5
    headers = page.locator("#overview tr.labels th").all_inner_texts()
    assert headers[-3:] == [T2, T1, S1]  # per-task columns, grouped under their types
    sizes = page.locator("#overview tbody td:nth-child(5)").all_inner_texts()
    assert sizes == ["0.05M", "50.0M", "86.2M", "5.0M", "500.0M"]
    assert page.locator("#overview td", has_text=HOSTILE).count() == 1
    assert page.locator("script:not([src]):not([type='application/json'])").count() == 0
    page.screenshot(path=str(shots / "board.png"), full_page=True)


def test_long_model_names_stay_on_one_line(page: Any, shots: Path) -> None:
    long = page.locator("#overview td.model a", has_text=LONG).bounding_box()
    short = page.locator("#overview td.model a", has_text="small").bounding_box()
    assert long["height"] == short["height"] and long["width"] > 4 * short["width"]
    # The table scrolls sideways; the model column stays in view.
    page.locator("#overview").evaluate("t => { t.parentElement.scrollLeft = 10000; }")
    after = page.locator("#overview td.model a", has_text="small").bounding_box()
    assert after["x"] == pytest.approx(short["x"], abs=1)
    assert page.locator("#overview tr.labels th", has_text=S1).bounding_box()["x"] < 1280
    page.screenshot(path=str(shots / "board-scrolled.png"))


def test_plots_are_drawn_from_the_bundled_library(page: Any) -> None:
    assert page.locator(".plot").count() == 2
    assert page.locator(".plot .main-svg").count() >= 2
    assert page.locator(".plot .errorbar").count() > 0


def test_downloads_hold_the_table(page: Any) -> None:
    href = page.locator(".downloads a", has_text="CSV").first.get_attribute("href")
    text = page.evaluate("href => fetch(href).then(r => r.text())", href)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["Model"] for row in rows] == [name.removesuffix(" [mteb]") for name in BORDA_ORDER]
    shown = page.locator("#overview tbody td.rank").all_inner_texts()
    assert [row["Rank (Borda)"] for row in rows] == shown
    href = page.locator(".downloads a", has_text="JSON").first.get_attribute("href")
    data = page.evaluate("href => fetch(href).then(r => r.json())", href)
    assert data[0]["Model"] == LONG and data[0][f"retrieval / {T1}"] == 0.6


def test_tabs_switch_benchmarks(page: Any, shots: Path) -> None:
    page.locator("nav.tabs a", has_text="retrieval").click()
    page.wait_for_selector(".plot .main-svg")
    assert page.url.endswith(page_name("board", "retrieval"))
    assert page.locator("h1").inner_text() == "Leaderboard: retrieval"
    assert page.locator("#overview tr.labels th", has_text=S1).count() == 0
    page.screenshot(path=str(shots / "board-retrieval.png"), full_page=True)
    page.locator("nav.tabs a", has_text="demo-shapes").click()
    assert page.locator("h1").inner_text() == "Leaderboard: demo-shapes"


def test_clicking_a_header_resorts_the_rows(page: Any) -> None:
    header = page.locator("#overview th", has_text="Parameters")
    header.click()
    assert _names(page)[0] == "small" and header.get_attribute("aria-sort") == "descending"
    header.click()
    assert _names(page)[0] == LONG + " [mteb]"
    page.locator("#overview th", has_text="Rank (Borda)").click()
    assert _names(page) == BORDA_ORDER


def test_filters_by_name_modality_and_size(page: Any) -> None:
    page.fill("#filter-name", "SMA")
    assert _names(page) == ["small"]
    page.fill("#filter-name", "")
    page.select_option("#filter-modality", "image")
    assert "small" not in _names(page) and len(_names(page)) == 4
    page.select_option("#filter-modality", "")
    page.select_option("#filter-size", label="≤ 10M")
    assert _names(page) == [LONG + " [mteb]", "alpha"]
    page.select_option("#filter-size", "")
    assert _names(page) == BORDA_ORDER


def test_task_and_model_pages(page: Any, shots: Path) -> None:
    page.locator("#overview tr.labels a", has_text=T1).click()
    assert page.locator("h1").inner_text() == f"Task: {T1}"
    assert page.locator("th.main").first.inner_text() == "ndcg_at_10 (main)"
    assert page.locator("tr.external").count() == 2
    page.screenshot(path=str(shots / "task.png"), full_page=True)
    page.go_back()
    page.locator("#overview a", has_text=HOSTILE).click()
    assert page.locator("h1").inner_text() == f"Model: {HOSTILE}"
    assert page.locator("svg.chart rect.bar").count() == 2
    page.screenshot(path=str(shots / "model.png"), full_page=True)
    for image in shots.glob("*.png"):
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
