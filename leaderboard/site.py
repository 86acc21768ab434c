"""The static site: overview, a page per task type, task and model revision, custom tasks,
skipped files, raw JSON.

Every string that comes from a result file goes through :func:`html.escape`; every file name
derived from result data goes through :func:`page_name`, and :func:`_write` refuses any path
outside the output folder. Pages sit flat in the site root, so links are plain file names and
the site opens from ``file://`` or any static host.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, TypeGuard

from harness.core.errors import HarnessError, UnknownNameError
from harness.engine.records import ModelRecord
from harness.engine.results import SITE_MARKER
from harness.engine.validation import MODEL_META
from leaderboard.aggregate import Aggregate, OverviewRow, overview, tasks_by_type, type_means
from leaderboard.collect import Collection, Entry, ModelKey, collect

STATIC_DIR = Path(__file__).parent / "static"
MISSING = "—"
PARTIAL_MARK = "†"
SIZE_CHOICES = ((10**7, "10M"), (10**8, "100M"), (10**9, "1B"), (10**10, "10B"))


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


def safe_part(text: str) -> str:
    """A file-name part for ``text``: a readable slug plus a hash that keeps names unique.

    Only letters, digits, ``_`` and ``-`` survive, so no name can climb out of its folder.
    """
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:60] or "_"
    return f"{slug}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def page_name(prefix: str, text: str) -> str:
    """The flat file name of the page about ``text``."""
    return f"{prefix}-{safe_part(text)}.html"


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


def _layout(title: str, body: str) -> str:
    """A whole page around ``body`` (``title`` is escaped here)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="static/leaderboard.css">'
        '<script src="static/leaderboard.js" defer></script></head><body>'
        '<nav><a href="index.html">Overview</a><a href="custom.html">Custom tasks</a>'
        '<a href="skipped.html">Skipped files</a></nav>'
        f"<h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _score_cell(value: float | None) -> str:
    if value is None:
        return f'<td class="missing" data-value="" title="no result">{MISSING}</td>'
    return f'<td class="num" data-value="{value!r}">{value:.4f}</td>'


def _aggregate_cell(aggregate: Aggregate) -> str:
    """A mean; one over an incomplete set is marked and sorts after complete ones."""
    if aggregate.value is None or aggregate.complete:
        return _score_cell(aggregate.value)
    note = f"incomplete: mean over {aggregate.present} of {aggregate.total} tasks"
    return (
        f'<td class="num partial" data-value="{aggregate.value!r}" data-partial="1" '
        f'title="{note}">{aggregate.value:.4f}{PARTIAL_MARK}</td>'
    )


def _interval_cell(interval: Mapping[str, Any] | None) -> str:
    """A main score's bootstrap interval, ``[low, high]``, sorted by its width."""
    low, high = (interval or {}).get("low"), (interval or {}).get("high")
    if not (_is_number(low) and _is_number(high)):
        return f'<td class="missing" data-value="" title="no interval recorded">{MISSING}</td>'
    level = interval.get("level") if interval else None
    resamples = interval.get("resamples") if interval else None
    title = (
        f"{level:.0%} bootstrap interval over {resamples} resamples" if _is_number(level) else ""
    )
    return (
        f'<td class="num interval" data-value="{high - low!r}" title="{escape(title)}">'
        f"[{low:.4f}, {high:.4f}]</td>"
    )


def _interval_of(entry: Entry, split: str, subset: str = "default") -> Mapping[str, Any] | None:
    """The interval a result recorded for one split and subset, if any."""
    return entry.result.harness.intervals.get(split, {}).get(subset)


def _task_interval(entry: Entry) -> Mapping[str, Any] | None:
    """The interval of a task's score: recorded for its only split (a mean of several has none)."""
    splits = list(entry.result.scores)
    return _interval_of(entry, splits[0]) if len(splits) == 1 else None


def _text_cell(text: Any, key: Any = None) -> str:
    """A cell showing ``text`` (missing when ``None``), sorted by ``key`` (default: ``text``)."""
    key = text if key is None else key
    shown = MISSING if text is None else str(text)
    return f'<td data-value="{escape("" if key is None else str(key))}">{escape(shown)}</td>'


def model_page_name(key: ModelKey) -> str:
    """The page of one model revision (its name and revision, unambiguously hashed)."""
    return page_name("model", json.dumps(list(key)))


def _model_cells(key: ModelKey, linked: bool = True) -> str:
    """A cell of the model's name (linking to the revision's page), then one of its revision."""
    name = _link(model_page_name(key), key[0]) if linked else escape(key[0])
    return f'<td data-value="{escape(key[0])}">{name}</td>' + _text_cell(key[1])


def _header(label: str, sort: str | None = "num", href: str | None = None) -> str:
    """A column header; ``sort`` (``num``, ``text`` or ``rank``) makes it sort on click."""
    content = _link(href, label) if href else escape(label)
    if sort is None:
        return f"<th>{content}</th>"
    return f'<th data-sort="{sort}" tabindex="0">{content}</th>'


def _table(headers: Iterable[str], rows: Iterable[str], table_id: str = "") -> str:
    ident = f' id="{table_id}"' if table_id else ""
    return (
        f'<div class="scroll"><table{ident}><thead><tr>{"".join(headers)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _raw_path(entry: Entry) -> str:
    """Where the raw JSON of ``entry`` is copied: ``raw/<model>/<revision>/<Task>.json``."""
    model, revision, task = safe_part(entry.model), safe_part(entry.revision), safe_part(entry.task)
    return f"raw/{model}/{revision}/{task}.json"


def _count(value: int | None) -> int | None:
    """A positive whole number from the metadata, else ``None``."""
    return value if value is not None and value > 0 else None


def _params_text(count: int | None) -> str | None:
    if count is None:
        return None
    return f"{count / 1e6:.1f}M" if count < 10**9 else f"{count / 1e9:.2f}B"


class SiteBuilder:
    """Writes the pages of one site from one collection."""

    def __init__(self, collection: Collection, out: Path, benchmark: Benchmark | None) -> None:
        self.collection = collection
        self.out = out
        self.benchmark = benchmark
        self.task_types = benchmark.task_types if benchmark else collection.task_types()
        self.entries = [e for e in collection.entries if e.task in self.task_types]
        self.table: dict[ModelKey, dict[str, float | None]] = {}
        self.by_model: dict[ModelKey, dict[str, Entry]] = {}
        for entry in self.entries:
            self.table.setdefault(entry.key, {})[entry.task] = entry.score
            self.by_model.setdefault(entry.key, {})[entry.task] = entry
        self.rows = overview(self.table, self.task_types)
        self.types = tasks_by_type(self.task_types)

    def meta(self, model: ModelKey) -> ModelRecord:
        """The metadata the model revision's first result recorded."""
        return next(iter(self.by_model[model].values())).model_meta

    def build(self) -> None:
        """Write every page, the raw JSON copies and the bundled assets."""
        for name in ("leaderboard.css", "leaderboard.js"):
            _write(self.out, f"static/{name}", (STATIC_DIR / name).read_text(encoding="utf-8"))
        self._copy_raw()
        _write(self.out, "index.html", self.overview_page())
        for kind, tasks in self.types.items():
            _write(self.out, page_name("type", kind), self.type_page(kind, tasks))
        for task in self.task_types:
            _write(self.out, page_name("task", task), self.task_page(task))
        for model in self.by_model:
            _write(self.out, model_page_name(model), self.model_page(model))
        _write(self.out, "custom.html", self.custom_page())
        _write(self.out, "skipped.html", self.skipped_page())
        _write(self.out, SITE_MARKER, "built by `harness leaderboard`; rebuilds replace it\n")

    def _copy_raw(self) -> None:
        """Copy each shown result and its (validated) ``model_meta.json`` into ``raw/``."""
        for entry in [*self.entries, *self.collection.custom]:
            target = _target(self.out, _raw_path(entry))
            shutil.copyfile(entry.path, target)
            meta_file = entry.path.parent / MODEL_META
            if meta_file.is_file():
                shutil.copyfile(meta_file, target.parent / MODEL_META)

    def overview_page(self) -> str:
        """One row per model in Borda order, with filters by name, modality and size."""
        headers = [
            _header("Rank (Borda)", "rank"),
            _header("Model", "text"),
            _header("Revision", "text"),
            _header("Parameters"),
            _header("Embedding dim"),
            _header("Modalities", "text"),
            _header("Mean (TaskType)"),
            _header("Mean (Task)"),
            *(_header(kind, href=page_name("type", kind)) for kind in self.types),
        ]
        rows = [self._overview_row(row) for row in self.rows]
        title = f"Leaderboard: {self.benchmark.name}" if self.benchmark else "Leaderboard"
        return _layout(
            title,
            self._filters()
            + _table(headers, rows, "overview")
            + self._legend()
            + f'<p class="note">{len(self.task_types)} tasks, {len(self.rows)} models; '
            f"{_link('skipped.html', f'{self.collection.skipped_files} skipped files')}.</p>",
        )

    def _overview_row(self, row: OverviewRow) -> str:
        meta = self.meta(row.model)
        modalities = meta.modalities
        params = _count(meta.n_parameters)
        dim = _count(meta.embed_dim)
        cells = [
            f'<td class="num" data-value="{row.borda_rank}">{row.borda_rank}</td>',
            _model_cells(row.model),
            _text_cell(_params_text(params), params),
            _text_cell(dim),
            _text_cell(", ".join(modalities) or None),
            _aggregate_cell(row.mean_of_type_means),
            _aggregate_cell(row.mean_over_tasks),
            *(_aggregate_cell(row.type_means[kind]) for kind in self.types),
        ]
        return (
            f'<tr data-name="{escape(row.model[0])}" data-revision="{escape(row.model[1])}" '
            f'data-modalities="{escape(" ".join(modalities))}"'
            f' data-params="{params or ""}">{"".join(cells)}</tr>'
        )

    def _filters(self) -> str:
        modalities = sorted({m for row in self.rows for m in self.meta(row.model).modalities})
        modality_options = "".join(
            f'<option value="{escape(m)}">{escape(m)}</option>' for m in modalities
        )
        size_options = "".join(
            f'<option value="{v}">≤ {label}</option>' for v, label in SIZE_CHOICES
        )
        return (
            '<div class="filters">'
            '<label>Name <input id="filter-name" type="search"></label>'
            '<label>Modality <select id="filter-modality"><option value="">any</option>'
            f"{modality_options}</select></label>"
            '<label>Parameters <select id="filter-size"><option value="">any</option>'
            f"{size_options}</select></label></div>"
        )

    @staticmethod
    def _legend() -> str:
        return (
            f'<p class="note">{MISSING} no result. <span class="partial">{PARTIAL_MARK}</span> '
            "mean over an incomplete set of tasks (hover for how many); it sorts after the "
            "complete ones and is not comparable with them. Rank (Borda): as mteb computes it, "
            "a model earns n − rank points per task (n models, missing task: 0).</p>"
        )

    def type_page(self, kind: str, tasks: Sequence[str]) -> str:
        """A table of one task type: models by tasks, with the type's mean."""
        headers = [
            _header("Model", "text"),
            _header("Revision", "text"),
            _header(f"Mean ({kind})"),
            *(_header(task, href=page_name("task", task)) for task in tasks),
        ]
        rows = []
        for row in sorted(self.rows, key=lambda r: _sort_key(r.type_means[kind])):
            scores = self.table[row.model]
            cells = [
                _model_cells(row.model),
                _aggregate_cell(row.type_means[kind]),
                *(_score_cell(scores.get(task)) for task in tasks),
            ]
            rows.append(f"<tr>{''.join(cells)}</tr>")
        return _layout(f"Task type: {kind}", _table(headers, rows) + self._legend())

    def task_page(self, task: str) -> str:
        """All metrics of one task, per split and subset, for every model that ran it."""
        entries = [e for e in self.entries if e.task == task]
        if not entries:
            return _layout(f"Task: {task}", f"<p>No results for this task. {MISSING}</p>")
        splits = sorted({split for e in entries for split in e.result.scores})
        sections = [f"<p>Type: {escape(self.task_types[task])}</p>"]
        for split in splits:
            subsets = [(e, s) for e in entries for s in e.result.scores.get(split, [])]
            metrics = sorted(
                {k for _, s in subsets for k, v in s.items() if _is_number(v)} - {"main_score"}
            )
            headers = [
                _header("Model", "text"),
                _header("Revision", "text"),
                _header("Subset", "text"),
                _header("main_score"),
                _header("95% interval"),
                *(_header(m) for m in metrics),
                _header("Raw JSON", None),
            ]
            rows = [
                "<tr>"
                + _model_cells(e.key)
                + _text_cell(s.get("hf_subset", "default"))
                + _score_cell(_number(s.get("main_score")))
                + _interval_cell(_interval_of(e, split, s.get("hf_subset", "default")))
                + "".join(_score_cell(_number(s.get(m))) for m in metrics)
                + f"<td>{_link(_raw_path(e), 'JSON')}</td></tr>"
                for e, s in subsets
            ]
            sections.append(f"<h2>Split: {escape(split)}</h2>" + _table(headers, rows))
        return _layout(f"Task: {task}", "".join(sections))

    def model_page(self, model: ModelKey) -> str:
        """One model revision: its metadata, a chart of its per-type scores, its task scores."""
        meta = self.meta(model)
        rank = next((row.borda_rank for row in self.rows if row.model == model), None)
        facts = {
            "Revision": model[1],
            "Parameters": _params_text(_count(meta.n_parameters)),
            "Embedding dim": _count(meta.embed_dim),
            "Modalities": ", ".join(meta.modalities) or None,
            "Similarity": meta.similarity,
            "Rank (Borda)": rank,
        }
        facts_html = "".join(
            f"<li>{escape(k)}: {escape(MISSING if v is None else str(v))}</li>"
            for k, v in facts.items()
        )
        results = self.by_model[model]
        headers = [
            _header("Task", "text"),
            _header("Type", "text"),
            _header("Score"),
            _header("95% interval"),
            _header("Raw JSON", None),
        ]
        rows = [
            f'<tr><td data-value="{escape(task)}">{_link(page_name("task", task), task)}</td>'
            + _text_cell(self.task_types[task])
            + _score_cell(self.table[model].get(task))
            + _interval_cell(_task_interval(results[task]) if task in results else None)
            + (
                f"<td>{_link(_raw_path(results[task]), 'JSON')}</td>"
                if task in results
                else "<td></td>"
            )
            + "</tr>"
            for task in sorted(self.task_types)
        ]
        return _layout(
            f"Model: {model[0]}",
            f"<ul>{facts_html}</ul>"
            + type_chart(type_means(self.table[model], self.task_types))
            + _table(headers, rows)
            + self._legend(),
        )

    def custom_page(self) -> str:
        """Results of tasks that are not built in: shown apart, never ranked."""
        note = (
            '<p class="note">Tasks that are not built in (custom task files) are listed here '
            "as their results recorded them; they are not in the ranked columns nor in the "
            "Borda rank.</p>"
        )
        if not self.collection.custom:
            return _layout("Custom tasks", note + "<p>No result of a custom task.</p>")
        headers = [
            _header("Task", "text"),
            _header("Type", "text"),
            _header("Model", "text"),
            _header("Revision", "text"),
            _header("Score"),
            _header("95% interval"),
            _header("Raw JSON", None),
        ]
        rows = [
            "<tr>"
            + _text_cell(e.task)
            + _text_cell(e.task_type)
            + _model_cells(e.key, linked=e.key in self.by_model)
            + _score_cell(e.score)
            + _interval_cell(_task_interval(e))
            + f"<td>{_link(_raw_path(e), 'JSON')}</td></tr>"
            for e in self.collection.custom
        ]
        return _layout("Custom tasks", note + _table(headers, rows))

    def skipped_page(self) -> str:
        """Every file left out of the site, and why."""
        if not self.collection.skipped:
            return _layout("Skipped files", "<p>No file was skipped.</p>")
        items = "".join(
            f"<li><code>{escape(str(s.path))}</code>: {escape(s.reason)}</li>"
            for s in self.collection.skipped
        )
        return _layout("Skipped files", f"<ul>{items}</ul>")


def _sort_key(aggregate: Aggregate) -> tuple[int, int, float]:
    """Complete means first, then incomplete ones, then missing; higher scores first."""
    if aggregate.value is None:
        return (2, 0, 0.0)
    return (0 if aggregate.complete else 1, 0, -aggregate.value)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def type_chart(means: Mapping[str, Aggregate], width: int = 480, bar: int = 22) -> str:
    """An inline SVG bar chart of per-type scores on a 0–1 axis; incomplete means marked."""
    label_width = 200
    scale = width - label_width - 60
    parts = []
    for index, (kind, aggregate) in enumerate(means.items()):
        y = index * (bar + 6)
        value = aggregate.value
        length = 0.0 if value is None else max(0.0, min(1.0, value)) * scale
        partial = value is not None and not aggregate.complete
        label = MISSING if value is None else f"{value:.3f}{PARTIAL_MARK if partial else ''}"
        parts.append(
            f'<text x="0" y="{y + bar - 6}">{escape(kind)}</text>'
            f'<rect class="bar{" partial" if partial else ""}" x="{label_width}" y="{y}" '
            f'width="{length:.1f}" height="{bar}"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + bar - 6}">{label}</text>'
        )
    height = max(1, len(means)) * (bar + 6)
    return (
        f'<svg class="chart" role="img" aria-label="per-type scores" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
    )


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
    results: Sequence[Path], out: Path, benchmark: Benchmark | None = None
) -> Collection:
    """Build the site from ``results`` folders into ``out``; returns what was read."""
    collection = collect(results, exclude=out)
    _prepare(out)
    SiteBuilder(collection, out, benchmark).build()
    return collection
