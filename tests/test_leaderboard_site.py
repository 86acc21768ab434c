"""The static site: pages, links, escaping, path safety, skipped files and the CLI."""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.core.errors import HarnessError
from harness.leaderboard.board import Benchmark
from harness.leaderboard.collect import ModelKey
from harness.leaderboard.pages import natural_key
from harness.leaderboard.site import _write, build_site, model_page_name, page_name
from harness.leaderboard.tables import params_text
from harness.tasks.loading import dataset_revision
from harness.tasks.registry import builtin_tasks
from tests.leaderboard_fixtures import (
    HOSTILE,
    S1,
    T1,
    T2,
    TYPES,
    result_payload,
    write_payload,
    write_table,
)
from tests.mteb_fixtures import write_mteb_result


class _Links(HTMLParser):
    """Every ``href``/``src`` and the text of every ``<script>`` element of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.targets += [v for k, v in attrs if k in ("href", "src") and v]
        # A data block (the plots' JSON) is not a script; anything else inline would be.
        self._in_script = tag == "script" and ("type", "application/json") not in attrs

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
    assert "0.8000†" in index and 'title="incomplete: mean over 2 of 3 tasks' in index
    assert 'class="missing"' in index
    labels = re.search(r'<tr class="labels">(.*?)</tr>', index, re.S)
    assert labels is not None
    headers = re.findall(r"<th[^>]*>(?:<a[^>]*>)?([^<]+)", labels.group(1))
    assert headers == [
        "Rank (Borda)",
        "≈",
        "Model",
        "Revision",
        "Parameters",
        "Embedding dim",
        "Modalities",
        "Mean (TaskType)",
        "95% interval",
        "Mean (Task)",
        "retrieval",
        "zero_shot_classification",
        T2,  # per-task columns, grouped under their type, tasks in name order
        T1,
        S1,
    ]
    groups = re.search(r'<tr class="groups">(.*?)</tr>', index, re.S)
    assert groups is not None
    assert re.findall(r'<th colspan="(\d+)"[^>]*>([^<]*)</th>', groups.group(1)) == [
        ("10", ""),
        ("2", "Mean per task type"),
        ("2", "retrieval"),
        ("1", "zero_shot_classification"),
    ]
    # Every rank comes with its bootstrap interval; the rows' per-task scores are shown.
    ranks = re.findall(r'class="num sticky rank"[^>]*>(\d+) \[(\d+)–(\d+)\]</td>', index)
    assert [rank for rank, _, _ in ranks] == ["1", "2", "3"]
    assert all(int(low) <= int(rank) <= int(high) for rank, low, high in ranks)


def test_hostile_name_is_escaped_everywhere(site: Path) -> None:
    pages = list(site.glob("*.html"))
    assert len(pages) == 1 + 2 + 3 + 3 + 1 + 1  # overview, types, tasks, models, custom, skipped
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script>alert" not in text
        assert all(not script.strip() for script in _parse(page).scripts)
    model_page = site / model_page_name(ModelKey(HOSTILE, "r1"))
    assert "Model: &lt;script&gt;alert(1)&lt;/script&gt;" in model_page.read_text()
    # The downloads carry the name as data: a CSV field, a JSON string.
    with (site / "downloads" / "index.csv").open(encoding="utf-8", newline="") as file:
        assert [row["Model"] for row in csv.DictReader(file)] == ["alpha", HOSTILE, "small"]
    rows = json.loads((site / "downloads" / "index.json").read_text(encoding="utf-8"))
    assert [row["Model"] for row in rows] == ["alpha", HOSTILE, "small"]


def test_every_link_resolves_inside_the_site_and_nothing_is_remote(site: Path) -> None:
    for page in site.glob("*.html"):
        # The empty inline icon keeps browsers from asking for /favicon.ico.
        for target in set(_parse(page).targets) - {"data:,"}:
            assert "://" not in target and not target.startswith("//"), target
            resolved = (site / target).resolve()
            assert resolved.is_relative_to(site.resolve()) and resolved.is_file(), target
    assert (site / "static" / "leaderboard.js").is_file()


def test_task_and_model_pages(site: Path) -> None:
    task = (site / page_name("task", T1)).read_text(encoding="utf-8")
    assert "Split: test" in task and task.count(">JSON</a></td>") == 3
    assert "<li>Type: retrieval</li>" in task and "<li>Main metric: ndcg_at_10</li>" in task
    assert "<li>Description: Retrieve the rendered scene" in task
    assert "<li>Dataset: local folder DemoShapesT2IRetrieval</li>" in task
    assert re.search(r"<li>Dataset revision: local-[0-9a-f]+</li>", task)
    assert "<li>Chance level: —</li>" in task  # none recorded
    assert "<li>Samples: test: 1,000 scored</li>" in task  # no count recorded: units scored
    model = (site / model_page_name(ModelKey("small", "r1"))).read_text(encoding="utf-8")
    assert "<svg" in model and "0.100†" in model and "Rank (Borda): 3 [3–3]" in model


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
    assert 'title="incomplete: mean over 1 of 2 tasks' in index  # nobody ran the clustering
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
    model = (tmp_path / "site" / model_page_name(ModelKey("a", "r1"))).read_text(encoding="utf-8")
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
    assert 'title="incomplete: mean over 1 of 10 tasks' in index
    assert build("vidore-v9") == 2
    assert "unknown benchmark 'vidore-v9'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (4_700, "4.7K"),
        (46_785, "0.05M"),
        (500_000, "0.50M"),
        (86_192_640, "86.2M"),
        (1_200_000_000, "1.20B"),
        (None, None),
    ],
)
def test_parameter_counts_are_never_shown_as_zero(count: int | None, shown: str | None) -> None:
    assert params_text(count) == shown


def test_metrics_sort_in_numeric_order() -> None:
    names = ["ndcg_at_100", "map_at_10", "ndcg_at_10", "ndcg_at_3", "ndcg_at_1", "ndcg_at_5"]
    assert sorted(names, key=natural_key) == [
        "map_at_10", "ndcg_at_1", "ndcg_at_3", "ndcg_at_5", "ndcg_at_10", "ndcg_at_100",
    ]  # fmt: skip


def _table_links(page: Path) -> list[str]:
    """The download links of a page, in order."""
    return re.findall(r'<a href="(downloads/[^"]+)" download>', page.read_text(encoding="utf-8"))


def test_every_table_has_csv_and_json_downloads(site: Path) -> None:
    for page in site.glob("*.html"):
        tables = page.read_text(encoding="utf-8").count("<table")
        links = _table_links(page)
        assert len(links) == 2 * tables, page.name
        assert all((site / link).is_file() for link in links)
    with (site / "downloads" / "index.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    alpha = rows[0]
    assert alpha["Model"] == "alpha" and alpha["Parameters"] == "5.0M"
    assert alpha["Mean (Task)"] == "0.5667"  # as shown
    assert alpha[f"retrieval / {T1}"] == "0.9000" and rows[2][f"retrieval / {T2}"] == "—"
    data = json.loads((site / "downloads" / "index.json").read_text(encoding="utf-8"))
    assert data[0]["Mean (Task)"] == (0.9 + 0.5 + 0.3) / 3  # full precision
    assert data[0]["Parameters"] == 5_000_000 and data[2][f"retrieval / {T2}"] is None
    assert data[0]["Rank (Borda)"]["rank"] == 1


def test_task_page_puts_the_main_metric_first_and_the_others_in_numeric_order(
    tmp_path: Path,
) -> None:
    payload = result_payload("a", T1, 0.5)
    payload["harness"]["task"] |= {"n_samples": {"test": 1200}, "chance_level": {"test": 0.05}}
    extra = {"ndcg_at_100": 0.7, "ndcg_at_3": 0.4, "ndcg_at_1": 0.3, "map_at_10": 0.2}
    payload["scores"]["test"][0].update(extra)
    write_payload(tmp_path / "results", "a", payload)
    build_site([tmp_path / "results"], tmp_path / "site")
    task = (tmp_path / "site" / page_name("task", T1)).read_text(encoding="utf-8")
    labels = re.search(r'<tr class="labels">(.*?)</tr>', task, re.S)
    assert labels is not None
    headers = re.findall(r"<th[^>]*>([^<]+)</th>", labels.group(1))
    assert headers[3:] == [
        "ndcg_at_10 (main)", "95% interval", "map_at_10", "ndcg_at_1", "ndcg_at_3", "ndcg_at_100",
        "Raw JSON",
    ]  # fmt: skip
    assert '<th data-sort="num" tabindex="0" class="main"' in labels.group(1)
    assert '<td class="num main" data-value="0.5">0.5000</td>' in task
    assert "<li>Samples: test: 1,200</li>" in task and "<li>Chance level: test: 0.0500</li>" in task


def test_one_board_per_benchmark_with_tabs(tmp_path: Path) -> None:
    results = write_table(tmp_path / "results")
    retrieval = Benchmark("retrieval-only", {t: k for t, k in TYPES.items() if k == "retrieval"})
    everything = Benchmark("everything", dict(TYPES))
    out = tmp_path / "site"
    build_site([results], out, [retrieval, everything])
    first = (out / "index.html").read_text(encoding="utf-8")
    second_name = page_name("board", "everything")
    second = (out / second_name).read_text(encoding="utf-8")
    for page in (first, second):
        assert re.findall(r'<nav class="tabs"><a href="([^"]+)"[^>]*>([^<]+)</a><a href="([^"]+)"',
                          page)[0] == ("index.html", "retrieval-only", second_name)  # fmt: skip
    assert 'href="index.html" aria-current="page"' in first
    assert f'href="{second_name}" aria-current="page"' in second
    assert "Leaderboard: retrieval-only" in first and S1 not in first
    assert "Leaderboard: everything" in second and S1 in second
    # Each board has its own type pages: the retrieval type page of each exists.
    assert len(list(out.glob("type-*.html"))) == 1 + 2


def test_an_empty_board_says_why(tmp_path: Path) -> None:
    results = write_table(tmp_path / "results")
    other = Benchmark("clusters", {"DemoShapesClustering": "clustering"})
    build_site([results], tmp_path / "site", [other])
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert (
        f"No result of any of the 1 tasks of clusters; the results read cover: {T2}, {T1}, {S1}."
        in index
    )
    assert 'id="overview"' not in index


def test_models_with_the_same_units_are_tied(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for model in ("twin-a", "twin-b"):
        for task in (T1, T2):
            write_payload(results, model, result_payload(model, task, 0.5))
    build_site([results], tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    ties = re.findall(r'<td class="sticky tie" data-value="1" title="([^"]*)">≈</td>', index)
    assert ties == [
        "not significantly different from: twin-b (r1)",
        "not significantly different from: twin-a (r1)",
    ]


def test_published_rows_are_marked_external_without_intervals(tmp_path: Path) -> None:
    results = write_table(tmp_path / "results")
    revision = dataset_revision(builtin_tasks()[T1])
    write_mteb_result(tmp_path / "published", "org/pub", "v1", T1, {"test": 0.95},
                      dataset_revision=revision, n_parameters=46_785)  # fmt: skip
    build_site([results, tmp_path / "published"], tmp_path / "site")
    site = tmp_path / "site"
    index = (site / "index.html").read_text(encoding="utf-8")
    row = re.search(r'<tr data-name="org/pub"[^>]*class="external">(.*?)</tr>', index, re.S)
    assert row is not None
    assert '<span class="badge"' in row.group(1) and ">0.05M</td>" in row.group(1)
    assert 'title="no interval: no stored per-unit scores">—</td>' in row.group(1)
    # Ranked by the same rules: Borda points 6.5 (alpha), 4.5 (the hostile name), 3, 0 (small).
    assert re.search(r'data-value="3" title="[^"]*">3 \[\d–\d\]</td>', row.group(1))
    task = (site / page_name("task", T1)).read_text(encoding="utf-8")
    assert task.count('<tr class="external">') == 1
    assert (site / "raw" / "mteb").is_dir()  # its raw copy, apart from harness copies
    model = (site / model_page_name(ModelKey("org/pub", "v1", external=True))).read_text()
    assert "Source: external: a published mteb result file" in model


def test_cli_builds_a_board_per_benchmark(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results, out = write_table(tmp_path / "results"), tmp_path / "site"
    mini = tmp_path / "vidore-v1.txt"
    mini.write_text(f"{T1}\n")
    argv = ["leaderboard", "--results", str(results), "--out", str(out), "--benchmark"]
    assert main([*argv, "vidore-v1", "--benchmark", str(tmp_path / "other.txt")]) == 2
    assert main([*argv, str(mini), "--benchmark", "vidore-v1"]) == 2
    assert "names one benchmark twice" in capsys.readouterr().err
    (tmp_path / "other.txt").write_text(f"{S1}\n")
    assert main([*argv, "vidore-v1", "--benchmark", str(tmp_path / "other.txt")]) == 0
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Leaderboard: vidore-v1" in index and "No result of any of the 10 tasks" in index
    other = (out / page_name("board", "other")).read_text(encoding="utf-8")
    assert "Leaderboard: other" in other and re.findall(r'<tr data-name="([^"]*)"', other) == [
        "alpha"
    ]
