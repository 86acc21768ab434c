"""The static site: a board per benchmark (tabs), a page per board and task type, per task,
per model revision, custom tasks, skipped files, raw JSON copies and table downloads.

Pages come from Jinja2 templates with autoescaping, so every string from a result file is
escaped; every file name derived from result data goes through :func:`page_name` or
:func:`safe_part`, and :func:`_write` refuses any path outside the output folder. Pages sit flat
in the site root, so links are plain file names and the site opens from ``file://`` or any
static host.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from harness.core.errors import HarnessError
from harness.engine.records import TaskRecord
from harness.engine.results import SITE_MARKER
from harness.engine.validation import MODEL_META
from harness.leaderboard.aggregate import Aggregate, type_means
from harness.leaderboard.board import (
    LEVEL,
    RESAMPLES,
    Benchmark,
    Board,
    count,
    first_meta,
)
from harness.leaderboard.collect import Collection, Entry, ModelKey, collect
from harness.leaderboard.downloads import download_files
from harness.leaderboard.pages import split_table, task_facts
from harness.leaderboard.plots import PLOT_SCRIPTS, plot_markup, plot_payload
from harness.leaderboard.render import render
from harness.leaderboard.tables import (
    MISSING,
    PARTIAL_MARK,
    Cell,
    Column,
    Row,
    Table,
    interval_cell,
    mean_cell,
    model_cell,
    params_text,
    score_cell,
    text_cell,
)

STATIC_DIR = Path(__file__).parent / "static"
SIZE_CHOICES = ((10**7, "10M"), (10**8, "100M"), (10**9, "1B"), (10**10, "10B"))


def safe_part(text: str) -> str:
    """A file-name part for ``text``: a readable slug plus a hash that keeps names unique.

    Only letters, digits, ``_`` and ``-`` survive, so no name can climb out of its folder.
    """
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:60] or "_"
    return f"{slug}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def page_name(prefix: str, text: str) -> str:
    """The flat file name of the page about ``text``."""
    return f"{prefix}-{safe_part(text)}.html"


def model_page_name(key: ModelKey) -> str:
    """The page of one model revision (its name, revision and kind, unambiguously hashed)."""
    return page_name("model", json.dumps(list(key)))


def _target(out: Path, relative: str) -> Path:
    """``out / relative``, refused when it would land outside ``out``; its folder is made."""
    target = (out / relative).resolve()
    if not target.is_relative_to(out.resolve()):
        raise HarnessError(f"refusing to write {relative!r} outside the site folder {out}")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _write(out: Path, relative: str, content: str) -> None:
    """Write a file of the site."""
    _target(out, relative).write_text(content, encoding="utf-8")


def _raw_path(entry: Entry) -> str:
    """Where the raw JSON of ``entry`` is copied: ``raw/[mteb/]<model>/<revision>/<Task>.json``."""
    model, revision, task = safe_part(entry.model), safe_part(entry.revision), safe_part(entry.task)
    kind = "mteb/" if entry.external else ""
    return f"raw/{kind}{model}/{revision}/{task}.json"


def _task_interval(entry: Entry) -> Mapping[str, Any] | None:
    """The interval of a task's score: recorded for its only split (a mean of several has none)."""
    splits = list(entry.result.scores)
    return entry.interval(splits[0]) if len(splits) == 1 else None


def type_chart(means: Mapping[str, Aggregate], width: int = 480, bar: int = 22) -> Markup:
    """An inline SVG bar chart of per-type scores on a 0–1 axis; incomplete means marked."""
    label_width = 200
    scale = width - label_width - 60
    bars = []
    for index, (kind, aggregate) in enumerate(means.items()):
        value = aggregate.value
        partial = value is not None and not aggregate.complete
        bars.append(
            {
                "label": kind,
                "y": index * (bar + 6),
                "length": 0.0 if value is None else max(0.0, min(1.0, value)) * scale,
                "partial": partial,
                "text": MISSING if value is None else f"{value:.3f}{PARTIAL_MARK * partial}",
            }
        )
    height = max(1, len(means)) * (bar + 6)
    return Markup(
        render(
            "chart.html",
            width=width,
            height=height,
            bars=bars,
            bar_height=bar,
            label_width=label_width,
        )
    )


class SiteBuilder:
    """Writes the pages of one site from one collection: a board per benchmark."""

    def __init__(self, collection: Collection, out: Path, benchmarks: Sequence[Benchmark]) -> None:
        from harness.tasks.registry import builtin_tasks

        self.collection = collection
        self.out = out
        chosen: Sequence[Benchmark | None] = benchmarks or [None]
        self.boards = [Board(benchmark, collection.entries) for benchmark in chosen]
        self.board_pages = ["index.html"] + [
            page_name("board", board.tab) for board in self.boards[1:]
        ]
        self.task_types: dict[str, str] = {}
        for board in self.boards:
            self.task_types |= board.task_types
        self.definitions = builtin_tasks()
        self.by_model: dict[ModelKey, dict[str, Entry]] = {}
        for board in self.boards:
            for key, results in board.by_model.items():
                self.by_model.setdefault(key, {}).update(results)

    def build(self) -> None:
        """Write every page, the raw JSON copies, the downloads and the bundled assets."""
        for path in sorted(p for p in STATIC_DIR.rglob("*") if p.is_file()):
            relative = path.relative_to(STATIC_DIR).as_posix()
            shutil.copyfile(path, _target(self.out, f"static/{relative}"))
        self._copy_raw()
        for index, board in enumerate(self.boards):
            self.board_page(index, board)
            for kind, tasks in board.types.items():
                self.type_page(board, kind, tasks)
        for task in self.task_types:
            self.task_page(task)
        for model in self.by_model:
            self.model_page(model)
        self.custom_page()
        self._page(
            "skipped.html",
            "skipped.html",
            [],
            title="Skipped files",
            current="skipped",
            skipped=self.collection.skipped,
        )
        _write(self.out, SITE_MARKER, "built by `harness leaderboard`; rebuilds replace it\n")

    def _copy_raw(self) -> None:
        """Copy each shown result and its ``model_meta.json`` (never a link) into ``raw/``."""
        shown = [e for results in self.by_model.values() for e in results.values()]
        for entry in [*shown, *self.collection.custom]:
            target = _target(self.out, _raw_path(entry))
            shutil.copyfile(entry.path, target)
            meta_file = entry.path.parent / MODEL_META
            if meta_file.is_file() and not meta_file.is_symlink():
                shutil.copyfile(meta_file, target.parent / MODEL_META)

    def _tabs(self, current: int | None) -> list[dict[str, Any]]:
        return [
            {"label": board.tab, "href": href, "current": index == current}
            for index, (board, href) in enumerate(zip(self.boards, self.board_pages, strict=True))
        ]

    def _page(
        self,
        name: str,
        template: str,
        tables: Sequence[Table],
        *,
        board: int | None = None,
        current: str = "",
        **context: Any,
    ) -> None:
        """Write the downloads of ``tables`` (named after the page), then the page itself."""
        for index, table in enumerate(tables):
            stem = name.removesuffix(".html")
            table.name = stem if len(tables) == 1 else f"{stem}-{index + 1}"
            for kind, (path, content) in download_files(table).items():
                _write(self.out, path, content)
                table.downloads[kind] = path
        context.setdefault("scripts", ())
        html = render(template, tabs=self._tabs(board), current=current, **context)
        _write(self.out, name, html)

    def _tables_page(
        self,
        name: str,
        title: str,
        sections: Sequence[tuple[str, Table]],
        *,
        current: str = "",
        intro: str = "",
        facts: Sequence[tuple[str, Any]] = (),
        chart: Markup | str = "",
        empty: str = "",
        legend: bool = False,
    ) -> None:
        """A page of facts and tables, each table under its heading (``""``: none)."""
        self._page(
            name,
            "tables.html",
            [table for _, table in sections],
            current=current,
            title=title,
            sections=[{"heading": heading, "table": table} for heading, table in sections],
            intro=intro,
            facts=facts,
            chart=chart,
            empty=empty,
            legend=legend,
            **self._legend(),
        )

    @staticmethod
    def _legend() -> dict[str, Any]:
        """What the legend says about the intervals computed for the site."""
        return {"level": f"{LEVEL:.0%}", "resamples": RESAMPLES}

    def type_href(self, board: Board, kind: str) -> str:
        """The page of one task type of one board."""
        return page_name("type", json.dumps([board.tab, kind]))

    def board_page(self, index: int, board: Board) -> None:
        """The board's overview: filters, the ranked table with intervals and ties, the plots."""
        covered = sorted({entry.task for entry in self.collection.entries})
        type_pages = [(kind, self.type_href(board, kind)) for kind in board.types]
        columns = board.overview_columns(
            dict(type_pages), {task: page_name("task", task) for task in board.task_types}
        )
        rows = [board.overview_row(row, model_page_name(row.model)) for row in board.rows]
        overview = Table("", columns, rows, ident="overview")
        payload = plot_payload(board.plot_rows(), list(board.types))
        self._page(
            self.board_pages[index],
            "board.html",
            [overview] if rows else [],
            board=index,
            title=board.title,
            scripts=PLOT_SCRIPTS,
            empty="" if rows else board.empty_reason(covered),
            modalities=board.modalities(),
            sizes=SIZE_CHOICES,
            overview=overview,
            plots=plot_markup(payload),
            n_tasks=len(board.task_types),
            n_models=len(rows),
            skipped=self.collection.skipped_files,
            type_pages=type_pages,
            **self._legend(),
        )

    def type_page(self, board: Board, kind: str, tasks: Sequence[str]) -> None:
        """A table of one task type of one board: models by tasks, with the type's mean."""
        columns = [
            Column("Model", "text", css="sticky model"),
            Column("Revision", "text"),
            Column(f"Mean ({kind})"),
            *(Column(task, href=page_name("task", task)) for task in tasks),
        ]
        rows = []
        for row in sorted(board.rows, key=lambda r: _sort_key(r.type_means[kind])):
            aggregate, scores = row.type_means[kind], board.table[row.model]
            cells = [
                *self._model_cells(row.model),
                mean_cell(aggregate),
                *(score_cell(scores.get(task)) for task in tasks),
            ]
            rows.append(Row(cells, css="external" if row.model.external else ""))
        title = f"Task type: {kind}" + (f" ({board.tab})" if len(self.boards) > 1 else "")
        sections = [("", Table("", columns, rows))]
        self._tables_page(self.type_href(board, kind), title, sections, legend=True)

    def _model_cells(self, key: ModelKey) -> list[Cell]:
        """A cell of the model's name (linking to its page when it has one), then its revision."""
        href = model_page_name(key) if key in self.by_model else None
        return [model_cell(key.name, key.external, href), text_cell(key.revision)]

    def task_page(self, task: str) -> None:
        """What the task is, then all metrics of every result, per split and subset."""
        from harness.tasks.loading import dataset_revision
        from harness.tasks.registry import task_record

        definition = self.definitions[task]
        record = TaskRecord.model_validate(task_record(definition))
        entries = [
            e for results in self.by_model.values() for e in results.values() if e.task == task
        ]
        entries.sort(key=lambda e: (e.model, e.revision, e.external))
        facts = task_facts(definition, record, dataset_revision(definition), entries)
        splits = sorted({split for e in entries for split in e.result.scores})
        main = record.main_score or "main_score"
        sections = [
            (f"Split: {split}", split_table("", split, main, entries, self._links))
            for split in splits
        ]
        empty = "" if entries else f"No results for this task. {MISSING}"
        self._tables_page(
            page_name("task", task), f"Task: {task}", sections, facts=facts, empty=empty
        )

    def _links(self, entry: Entry) -> tuple[str, str | None]:
        """An entry's raw JSON copy and its model page."""
        return _raw_path(entry), model_page_name(entry.key) if entry.key in self.by_model else None

    def model_page(self, model: ModelKey) -> None:
        """One model revision: its metadata, ranks, a chart of its per-type scores, its scores."""
        meta = first_meta(self.by_model[model])
        results = self.by_model[model]
        ranks = [(board, board.rank_text(model)) for board in self.boards]
        facts: list[tuple[str, Any]] = [
            ("Revision", model.revision),
            ("Source", "external: a published mteb result file" if model.external else "harness"),
            ("Parameters", params_text(count(meta.n_parameters)) or MISSING),
            ("Embedding dim", count(meta.embed_dim) or MISSING),
            ("Modalities", ", ".join(meta.modalities) or MISSING),
            ("Similarity", meta.similarity or MISSING),
            ("Fingerprint", meta.fingerprint or MISSING),
        ]
        for board, rank in ranks:
            label = "Rank (Borda)" if len(self.boards) == 1 else f"Rank (Borda), {board.tab}"
            facts.append((label, MISSING if rank is None else rank))
        columns = [
            Column("Task", "text"),
            Column("Type", "text"),
            Column("Score"),
            Column("95% interval"),
            Column("Raw JSON", None),
        ]
        rows = []
        for task in sorted(self.task_types):
            entry = results.get(task)
            raw = _raw_path(entry) if entry else None
            cells = [
                Cell(task, task, task, href=page_name("task", task)),
                text_cell(self.task_types[task]),
                score_cell(entry.score if entry else None),
                interval_cell(_task_interval(entry) if entry else None),
                Cell("JSON", raw, "", href=raw) if raw else Cell("", None),
            ]
            rows.append(Row(cells))
        scores = {task: entry.score for task, entry in results.items()}
        chart = type_chart(type_means(scores, self.task_types))
        self._tables_page(
            model_page_name(model),
            f"Model: {model.name}",
            [("", Table("", columns, rows))],
            facts=facts,
            chart=chart,
            legend=True,
        )

    def custom_page(self) -> None:
        """Results of tasks that are not built in: shown apart, never ranked."""
        intro = (
            "Tasks that are not built in (custom task files) are listed here as their results "
            "recorded them; they are not in the ranked columns nor in the Borda rank."
        )
        columns = [
            Column("Task", "text"),
            Column("Type", "text"),
            Column("Model", "text", css="sticky model"),
            Column("Revision", "text"),
            Column("Score"),
            Column("95% interval"),
            Column("Raw JSON", None),
        ]
        rows = [
            Row(
                [
                    text_cell(e.task),
                    text_cell(e.task_type),
                    *self._model_cells(e.key),
                    score_cell(e.score),
                    interval_cell(_task_interval(e)),
                    Cell("JSON", _raw_path(e), "", href=_raw_path(e)),
                ]
            )
            for e in self.collection.custom
        ]
        sections = [("", Table("", columns, rows))] if rows else []
        self._tables_page(
            "custom.html",
            "Custom tasks",
            sections,
            current="custom",
            intro=intro,
            empty="" if rows else "No result of a custom task.",
        )


def _sort_key(aggregate: Aggregate) -> tuple[int, float]:
    """Complete means first, then incomplete ones, then missing; higher scores first."""
    if aggregate.value is None:
        return (2, 0.0)
    return (0 if aggregate.complete else 1, -aggregate.value)


def _prepare(out: Path) -> None:
    """Make ``out`` an empty folder; only an earlier site (with its marker) is replaced."""
    if out.exists():
        if not out.is_dir():
            raise HarnessError(f"--out {out} is a file; pass a folder for the site")
        if any(out.iterdir()):
            if not (out / SITE_MARKER).exists():
                raise HarnessError(
                    f"--out {out} is not empty and holds no earlier leaderboard; "
                    "pass an empty or new folder"
                )
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def build_site(
    results: Sequence[Path], out: Path, benchmarks: Sequence[Benchmark] = ()
) -> Collection:
    """Build the site from ``results`` folders into ``out``: a board per benchmark (without
    any, one board of every ranked task with a result); returns what was read."""
    collection = collect(results, exclude=out)
    _prepare(out)
    SiteBuilder(collection, out, benchmarks).build()
    return collection
