"""The static site: pages, links, escaping, path safety, skipped files and the CLI."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.core.errors import HarnessError
from leaderboard.site import _write, build_site, model_page_name, page_name
from tests.leaderboard_fixtures import (
    HOSTILE,
    T1,
    result_payload,
    write_payload,
    write_table,
)


class _Links(HTMLParser):
    """Every ``href``/``src`` and the text of every ``<script>`` element of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.targets += [v for k, v in attrs if k in ("href", "src") and v]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture
def site(tmp_path: Path) -> Path:
    results = write_table(tmp_path / "results")
    (results / "model0" / "r1" / "Broken.json").write_text("{not json", encoding="utf-8")
    out = tmp_path / "site"
    build_site([results], out)
    return out


def test_overview_lists_models_in_borda_order_with_marks(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    names = re.findall(r'<tr data-name="([^"]*)"', index)
    assert names == ["alpha", "&lt;script&gt;alert(1)&lt;/script&gt;", "small"]
    assert "0.8000†" in index and 'title="incomplete: mean over 2 of 3 tasks"' in index
    assert 'class="missing"' in index
    assert [h for h in re.findall(r"<th[^>]*>(?:<a[^>]*>)?([^<]+)", index)][:8] == [
        "Rank (Borda)",
        "Model",
        "Revision",
        "Parameters",
        "Embedding dim",
        "Modalities",
        "Mean (TaskType)",
        "Mean (Task)",
    ]


def test_hostile_name_is_escaped_everywhere(site: Path) -> None:
    pages = list(site.glob("*.html"))
    assert len(pages) == 1 + 2 + 3 + 3 + 1 + 1  # overview, types, tasks, models, custom, skipped
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script>alert" not in text
        assert all(not script.strip() for script in _parse(page).scripts)
    model_page = site / model_page_name((HOSTILE, "r1"))
    assert "Model: &lt;script&gt;alert(1)&lt;/script&gt;" in model_page.read_text()


def test_every_link_resolves_inside_the_site_and_nothing_is_remote(site: Path) -> None:
    for page in site.glob("*.html"):
        for target in _parse(page).targets:
            assert "://" not in target and not target.startswith("//"), target
            resolved = (site / target).resolve()
            assert resolved.is_relative_to(site.resolve()) and resolved.is_file(), target
    assert (site / "static" / "leaderboard.js").is_file()


def test_task_and_model_pages(site: Path) -> None:
    task = (site / page_name("task", T1)).read_text(encoding="utf-8")
    assert "Split: test" in task and task.count("JSON</a>") == 3
    model = (site / model_page_name(("small", "r1"))).read_text(encoding="utf-8")
    assert "<svg" in model and "0.100†" in model and "Rank (Borda): 3" in model


def test_bad_file_is_skipped_with_its_reason(site: Path) -> None:
    skipped = (site / "skipped.html").read_text(encoding="utf-8")
    assert "Broken.json" in skipped and "not valid JSON" in skipped
    assert "1 skipped files" in (site / "index.html").read_text(encoding="utf-8")


def test_names_from_files_cannot_leave_the_site(tmp_path: Path) -> None:
    results = tmp_path / "results"
    evil = "../../escaped"
    payload = result_payload(evil, evil, 0.5, task_type="../type")
    write_payload(results, "m", payload, file="Evil")
    out = tmp_path / "deep" / "site"
    collection = build_site([results], out)
    assert [e.model for e in collection.custom] == [evil] and not collection.skipped
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p.parts[0] in ("results", "deep") for p in written)
    assert all(p.parts[:2] == ("deep", "site") for p in written if p.parts[0] == "deep")
    assert "/" not in page_name("model", evil) and not page_name("model", evil).startswith(".")
    with pytest.raises(HarnessError, match="outside the site folder"):
        _write(out, "../outside.html", "x")


def test_a_later_date_supersedes_nothing(tmp_path: Path) -> None:
    """Two results of one model revision on one task with other scores: neither is shown,
    whatever dates they claim, and both are listed."""
    old = result_payload("a", T1, 0.1, date="2026-01-01T00:00:00")
    new = result_payload("a", T1, 0.2, date="2026-02-01T00:00:00Z")
    paths = [write_payload(tmp_path / "one", "a", old), write_payload(tmp_path / "two", "a", new)]
    collection = build_site([tmp_path / "one", tmp_path / "two"], tmp_path / "site")
    assert collection.entries == []
    assert sorted(s.path for s in collection.skipped) == paths
    assert all("appears twice (with other scores" in s.reason for s in collection.skipped)


def test_rebuild_inside_the_results_folder(tmp_path: Path) -> None:
    results = write_table(tmp_path / "results")
    for _ in range(2):
        collection = build_site([results], results / "site")
        assert len(collection.entries) == 6 and not collection.skipped
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(HarnessError, match="not empty"):
        build_site([results], tmp_path / "other")


def test_cli_builds_and_filters_by_benchmark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_table(tmp_path / "results")
    out = tmp_path / "site"
    assert main(["leaderboard", "--results", str(results), "--out", str(out)]) == 0
    assert f"Open {(out / 'index.html').resolve().as_uri()}" in capsys.readouterr().out
    benchmark = tmp_path / "mini.txt"
    benchmark.write_text("# two demo tasks\nDemoShapesClustering\nDemoShapesZeroShot\n")
    assert main(["leaderboard", "--results", str(results), "--out", str(out),
                 "--benchmark", str(benchmark)]) == 0  # fmt: skip
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Leaderboard: mini" in index and "zero_shot_classification" in index
    assert re.findall(r'<tr data-name="([^"]*)"', index) == ["alpha"]
    assert 'title="incomplete: mean over 1 of 2 tasks"' in index  # nobody ran the clustering
    benchmark.write_text("DemoShapesClusterin\n")
    assert main(["leaderboard", "--results", str(results), "--out", str(out),
                 "--benchmark", str(benchmark)]) == 2  # fmt: skip
    assert "Did you mean: DemoShapesClustering" in capsys.readouterr().err
    assert main(["leaderboard", "--results", str(tmp_path / "nope"), "--out", str(out)]) == 2


def test_intervals_are_shown_where_recorded(tmp_path: Path) -> None:
    with_interval = result_payload("a", T1, 0.93)
    interval = {"low": 0.911, "high": 0.946, "level": 0.95, "resamples": 1000}
    with_interval["harness"]["intervals"] = {"test": {"default": interval}}
    write_payload(tmp_path / "results", "a", with_interval)
    write_payload(tmp_path / "results", "b", result_payload("b", T1, 0.5))
    build_site([tmp_path / "results"], tmp_path / "site")
    task = (tmp_path / "site" / page_name("task", T1)).read_text(encoding="utf-8")
    assert "95% interval" in task and task.count("[0.9110, 0.9460]") == 1
    assert 'title="no interval recorded"' in task
    model = (tmp_path / "site" / model_page_name(("a", "r1"))).read_text(encoding="utf-8")
    assert "[0.9110, 0.9460]" in model and "95% bootstrap interval over 1000 resamples" in model


def test_cli_takes_a_benchmark_by_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results, out = tmp_path / "results", tmp_path / "site"
    payload = result_payload("m", "VidoreDocVQARetrieval", 0.4)
    write_payload(results, "m", payload)

    def build(benchmark: str) -> int:
        return main(["leaderboard", "--results", str(results), "--out", str(out),
                     "--benchmark", benchmark])  # fmt: skip

    assert build("vidore-v1") == 0
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Leaderboard: vidore-v1" in index
    assert 'title="incomplete: mean over 1 of 10 tasks"' in index
    assert build("vidore-v3") == 2
    assert "unknown benchmark 'vidore-v3'" in capsys.readouterr().err
