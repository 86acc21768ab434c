"""The built site in a real browser: Debian's chromium, driven headless by playwright.

The site is served on 127.0.0.1 by ``http.server`` in a thread. Skipped, with the reason, when
chromium or playwright is missing (``make test`` installs both).
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from leaderboard.site import build_site
from tests.leaderboard_fixtures import BORDA_ORDER, HOSTILE, write_table

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


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """No request log on stderr."""


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a site built from the fixture table, served on localhost."""
    root = tmp_path_factory.mktemp("browser")
    out = root / "site"
    build_site([write_table(root / "results")], out)
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


@pytest.fixture
def page(browser: Any, site_url: str) -> Iterator[Any]:
    """The overview, opened; any JavaScript dialog is recorded in ``page.dialogs``."""
    tab = browser.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.goto(site_url)
    yield tab
    tab.close()


def _names(page: Any) -> list[str]:
    """The model names of the visible overview rows, as the browser shows them."""
    return page.locator("#overview tbody tr:visible td:nth-child(2)").all_inner_texts()


def test_overview_in_borda_order_with_hostile_name_as_text(page: Any) -> None:
    assert _names(page) == BORDA_ORDER
    assert page.locator("#overview td", has_text=HOSTILE).count() == 1
    assert page.dialogs == []
    assert page.locator("script:not([src])").count() == 0


def test_clicking_a_header_resorts_the_rows(page: Any) -> None:
    header = page.locator("#overview th", has_text="Parameters")
    header.click()
    assert _names(page) == ["small", HOSTILE, "alpha"]
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    assert _names(page) == ["alpha", HOSTILE, "small"]
    page.locator("#overview th", has_text="Rank (Borda)").click()
    assert _names(page) == BORDA_ORDER


def test_filters_by_name_modality_and_size(page: Any) -> None:
    page.fill("#filter-name", "SMA")
    assert _names(page) == ["small"]
    page.fill("#filter-name", "")
    page.select_option("#filter-modality", "image")
    assert _names(page) == ["alpha", HOSTILE]
    page.select_option("#filter-modality", "")
    page.select_option("#filter-size", label="≤ 10M")
    assert _names(page) == ["alpha"]
    page.select_option("#filter-size", "")
    assert _names(page) == BORDA_ORDER


def test_model_page_chart_and_screenshots(page: Any, tmp_path: Path) -> None:
    overview = tmp_path / "overview.png"
    page.screenshot(path=str(overview), full_page=True)
    page.locator("#overview a", has_text=HOSTILE).click()
    assert page.locator("h1").inner_text() == f"Model: {HOSTILE}"
    assert page.locator("svg.chart rect.bar").count() == 2
    assert page.dialogs == []
    shot = tmp_path / "model.png"
    page.screenshot(path=str(shot), full_page=True)
    for image in (overview, shot):
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
