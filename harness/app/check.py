"""``harness check``: new results against a baseline, task by task, with honest statistics.

Each (task, split, subset) of the baseline is matched with the new results and judged:

- ``--tolerance ABS``: a regression when the main score fell by more than ABS;
- ``--ci LEVEL`` (the default, 0.95): a regression when the interval of the difference lies
  wholly below zero. When both runs stored per-unit scores for the same units, the interval
  and a two-sided p-value come from a paired bootstrap; otherwise the two runs' own bootstrap
  intervals are combined (the half-widths add in quadrature).

Two results are comparable only when they read the same data (dataset revision, configs,
splits, columns, ``--limit``) under the same protocol (type, main score, prompts, constants),
and each is consistent in itself: its main score equals the metric it names, matches the score
recomputed from its own per-unit scores and lies inside its own interval (the checks of
:func:`harness.engine.validation.score_problems`). The model may differ: that is what is being
checked. Anything not comparable, or that cannot be judged, makes the check fail with exit
status 2; it never passes silently.

A baseline may also be a published mteb result file (``results/<org__model>/<revision>/<Task>.json``
of mteb's results repository; :mod:`harness.engine.mteb_files`), alone or beside harness results.
Such a file stores no protocol, per-unit scores or interval, so it is judged by ``--tolerance``
alone (without it, its rows are not comparable), on the main metric that the new result's task
record names, split by split of the new result's eval splits. Its dataset revision must be the
new result's when it records one, the new result must not be a ``--limit`` run, and each mteb
subset's ``main_score`` must be the value of that metric in the subset (else it measured
something else).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.app.table import format_table
from harness.core.errors import HarnessError
from harness.engine.main_score import finite_number
from harness.engine.mteb_files import MtebResult, external_model, read_mteb_result
from harness.engine.results import ResultFile
from harness.engine.validation import (
    MTEB_CHECK,
    NOT_METRICS,
    SCORE_TOLERANCE,
    load_results,
    protocol_record,
    score_problems,
)
from harness.scoring.bootstrap import LEVEL, UnitScores, bootstrap_interval, paired_bootstrap

PASS, REGRESSION, IMPROVED, NOT_COMPARABLE = "pass", "REGRESSION", "improved", "not comparable"
MTEB_METHOD = "mteb baseline: no paired test"
NEEDS_TOLERANCE = "pass --tolerance (an mteb result has no units or interval)"


@dataclass(frozen=True)
class CheckSettings:
    """How to judge: an absolute tolerance, or else intervals at ``level``."""

    tolerance: float | None = None
    level: float = LEVEL
    tasks: tuple[str, ...] | None = None
    all_metrics: bool = False


@dataclass(frozen=True)
class Row:
    """One judged score; ``low``/``high`` bound the difference (new minus baseline)."""

    task: str
    split: str
    subset: str
    metric: str
    baseline: float | None
    new: float | None
    delta: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    method: str = ""
    verdict: str = NOT_COMPARABLE
    note: str = ""
    # Whether the baseline is a published mteb result (judged by --tolerance alone).
    external: bool = False


@dataclass
class CheckReport:
    """Every row judged, and the exit status they add up to."""

    rows: list[Row]
    settings: CheckSettings
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = {}
        for row in self.rows:
            self.counts[row.verdict] = self.counts.get(row.verdict, 0) + 1

    @property
    def exit_code(self) -> int:
        """2 when anything is not comparable, else 1 when anything regressed, else 0."""
        if self.counts.get(NOT_COMPARABLE):
            return 2
        return 1 if self.counts.get(REGRESSION) else 0

    def table(self) -> str:
        """The verdict table, then the reasons for every row that could not be compared."""
        show_subset = any(row.subset != "default" for row in self.rows)
        headers = ["task", "split", *(["subset"] if show_subset else [])]
        headers += ["metric"] if self.settings.all_metrics else []
        headers += ["baseline", "new", "delta", "interval", "p", "verdict"]
        lines = []
        for row in self.rows:
            cells: list[Any] = [row.task, row.split, *([row.subset] if show_subset else [])]
            cells += [row.metric] if self.settings.all_metrics else []
            cells += [row.baseline, row.new, _signed(row.delta), _interval(row), row.p_value]
            lines.append([*cells, row.verdict])
        text = format_table(headers, lines)
        notes = [f"  {row.task} {row.split}: {row.note}" for row in self.rows if row.note]
        if any(row.external and row.delta is not None for row in self.rows):
            notes.append(
                f"  tolerance {self.settings.tolerance}; {MTEB_METHOD} (a published mteb result "
                "stores no per-unit scores or interval: only the change is judged)"
            )
        if notes:
            text += "\n\nNotes:\n" + "\n".join(notes)
        summary = ", ".join(f"{count} {verdict}" for verdict, count in sorted(self.counts.items()))
        return f"{text}\n\n{summary or 'nothing compared'} (exit status {self.exit_code})."

    def to_json(self) -> dict[str, Any]:
        """The verdicts, for other tools to read."""
        return {
            "exit_code": self.exit_code,
            "settings": asdict(self.settings),
            "counts": self.counts,
            "rows": [asdict(row) for row in self.rows],
        }


def _signed(value: float | None) -> str | None:
    return None if value is None else f"{value:+.4f}"


def _interval(row: Row) -> str | None:
    if row.low is None or row.high is None:
        return None
    return f"[{row.low:+.4f}, {row.high:+.4f}]"


Side = dict[tuple[str, str], ResultFile]
BaselineSide = dict[tuple[str, str], ResultFile | MtebResult]


def load_side(path: Path) -> Side:
    """The results under ``path`` by (model name, task name); a model's task must be unique.

    The folder is read as validation reads it (:func:`load_results`); an entry the scan
    refuses (a link, a special file) or a file that is not a result is an error, all listed."""
    loaded = _load(path, mteb=False)
    return {key: result for key, result in loaded.items() if isinstance(result, ResultFile)}


def load_baseline(path: Path) -> BaselineSide:
    """:func:`load_side` of a baseline, where mteb result files are read too (their model
    named by :func:`~harness.engine.mteb_files.external_model`)."""
    return _load(path, mteb=True)


def _load(path: Path, *, mteb: bool) -> BaselineSide:
    """The results under ``path`` by (model name, task name), all problems listed at once."""
    loaded = load_results(path)
    problems: list[str] = []
    found: list[tuple[Path, str, ResultFile | MtebResult]] = [
        (file, str(result.harness.model.name), result) for file, result in loaded.results
    ]
    for problem in loaded.problems:
        if not (mteb and problem.check == MTEB_CHECK):
            problems.append(str(problem))
            continue
        try:
            external = read_mteb_result(problem.file)
            found.append((problem.file, external_model(problem.file).name, external))
        except HarnessError as error:
            problems.append(str(error))
    if problems:
        raise HarnessError(f"cannot compare the results under {path}:\n" + "\n".join(problems))
    side: BaselineSide = {}
    for file, model, result in sorted(found, key=lambda item: item[0]):
        key = (model, result.task_name)
        if key in side:
            raise HarnessError(
                f"{path} holds two results of model {key[0]} on task {key[1]} (e.g. {file}); "
                "point at one model's folder, <output>/<org__model>/<revision>"
            )
        side[key] = result
    return side


def check(new: Path, baseline: Path, settings: CheckSettings | None = None) -> CheckReport:
    """Judge every task of ``baseline`` against ``new``."""
    settings = settings or CheckSettings()
    tolerance = settings.tolerance
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise HarnessError(f"--tolerance must be a finite number, 0 or more (got {tolerance})")
    if not (math.isfinite(settings.level) and 0 < settings.level < 1):
        raise HarnessError(
            f"--ci must be a level between 0 and 1 (e.g. 0.95), got {settings.level}"
        )
    pairs = _pairs(load_side(new), load_baseline(baseline), settings.tasks)
    rows = [
        row for task, (old, fresh) in pairs.items() for row in _judge(task, old, fresh, settings)
    ]
    return CheckReport(rows, settings)


def _pairs(
    new: Side, baseline: BaselineSide, tasks: tuple[str, ...] | None
) -> dict[str, tuple[ResultFile | MtebResult | None, ResultFile | None]]:
    """Baseline and new result per task label; a side lacking a task holds None."""
    if tasks is not None:
        known = {task for _, task in new} | {task for _, task in baseline}
        unknown = sorted(set(tasks) - known)
        if unknown:
            raise HarnessError(f"--tasks names task(s) found on neither side: {', '.join(unknown)}")
        new = {key: value for key, value in new.items() if key[1] in tasks}
        baseline = {key: value for key, value in baseline.items() if key[1] in tasks}
    if not new and not baseline:
        raise HarnessError("no results to compare")
    # Paired by task when no side holds a task twice (a model against its baseline, which may
    # mix harness results and published ones of other names); else by model and task.
    by_task = all(len({task for _, task in side}) == len(side) for side in (new, baseline))

    def label(key: tuple[str, str]) -> str:
        return key[1] if by_task else f"{key[0]} / {key[1]}"

    pairs: dict[str, tuple[ResultFile | MtebResult | None, ResultFile | None]] = {}
    for key, result in baseline.items():
        pairs[label(key)] = (result, None)
    for key, result in new.items():
        pairs[label(key)] = (pairs.get(label(key), (None, None))[0], result)
    return dict(sorted(pairs.items()))


def _judge(
    task: str,
    baseline: ResultFile | MtebResult | None,
    new: ResultFile | None,
    settings: CheckSettings,
) -> list[Row]:
    """The rows of one task: its main score per split and subset (and other metrics)."""
    if baseline is None or new is None:
        where = "the baseline" if baseline is None else "the new results"
        external = isinstance(baseline, MtebResult)
        return [
            Row(task, "-", "-", "-", None, None, note=f"missing from {where}", external=external)
        ]
    if isinstance(baseline, MtebResult):
        return _judge_mteb(task, baseline, new, settings)
    reason = (
        _incomparable(baseline, new) or _untrusted(baseline, "baseline") or _untrusted(new, "new")
    )
    rows = []
    for split, entries in baseline.scores.items():
        new_entries = {entry.get("hf_subset"): entry for entry in new.scores.get(split, [])}
        for entry in entries:
            subset = str(entry.get("hf_subset", "default"))
            fresh = new_entries.get(subset)
            main = baseline.harness.task.main_score or "main_score"
            if reason or fresh is None:
                note = reason or f"split {split}, subset {subset} is missing from the new results"
                value = fresh.get("main_score") if fresh else None
                rows.append(
                    Row(task, split, subset, main, entry.get("main_score"), value, note=note)
                )
                continue
            rows.append(_judge_main(task, split, subset, main, baseline, new, settings))
            if settings.all_metrics:
                rows.extend(_other_metrics(task, split, subset, main, entry, fresh, settings))
    return rows


def _judge_mteb(
    task: str, baseline: MtebResult, new: ResultFile, settings: CheckSettings
) -> list[Row]:
    """The rows of one task against a published mteb result: by --tolerance alone, on the
    main metric the new result names, over the new result's eval splits."""
    main = new.harness.task.main_score or "main_score"
    reason = _incomparable_mteb(baseline, new) or _untrusted(new, "new")
    unchecked = (
        ""
        if baseline.dataset_revision
        else "the mteb file records no dataset revision (not checked)"
    )
    rows = []
    for split in new.harness.task.eval_splits or list(new.scores):
        entries = baseline.scores.get(split)
        if not entries:
            note = f"split {split} is missing from the mteb baseline"
            rows.append(Row(task, split, "-", main, None, None, note=note, external=True))
            continue
        new_entries = {entry.get("hf_subset"): entry for entry in new.scores.get(split, [])}
        for entry in entries:
            subset = str(entry.get("hf_subset", "default"))
            fresh = new_entries.get(subset)
            old_score = finite_number(entry.get(main))
            new_score = _score(new, split, subset)
            row = Row(task, split, subset, main, old_score, new_score, external=True)
            note = (
                reason
                or _mteb_main_problem(entry, main)
                or _missing(fresh, new_score, split, subset)
                or ("" if settings.tolerance is not None else NEEDS_TOLERANCE)
            )
            if note or old_score is None or new_score is None or settings.tolerance is None:
                rows.append(_with(row, note=note))
                continue
            delta = new_score - old_score
            verdict = _by_tolerance(delta, settings.tolerance)
            method = f"tolerance {settings.tolerance}; {MTEB_METHOD}"
            rows.append(_with(row, delta=delta, verdict=verdict, method=method, note=unchecked))
            if settings.all_metrics and fresh is not None:
                others = _other_metrics(task, split, subset, main, entry, fresh, settings)
                rows.extend(_with(other, external=True) for other in others)
    return rows


def _incomparable_mteb(baseline: MtebResult, new: ResultFile) -> str:
    """Why a published result and a new one do not measure the same thing ('' when they may)."""
    if baseline.dataset_revision and baseline.dataset_revision != new.dataset_revision:
        return (
            f"dataset revision differs (mteb baseline {baseline.dataset_revision}, "
            f"new {new.dataset_revision})"
        )
    limit = new.harness.run_settings.limit
    if limit is not None:
        return f"the new result is a --limit {limit} run; a published result scores every item"
    return ""


def _mteb_main_problem(entry: dict[str, Any], main: str) -> str:
    """Why an mteb subset's main score is not ``main`` ('' when it is)."""
    stated, value = finite_number(entry.get("main_score")), finite_number(entry.get(main))
    if main not in entry:
        return f"the mteb result has no {main} (the new result's main metric) in this subset"
    if stated is None or value is None:
        return f"the mteb result's main_score or {main} is not a finite number"
    if abs(stated - value) > SCORE_TOLERANCE:
        return (
            f"the mteb result's main_score {stated:.6f} is not its {main} {value:.6f}: it "
            "names another main metric"
        )
    return ""


def _missing(fresh: dict[str, Any] | None, score: float | None, split: str, subset: str) -> str:
    """Why the new side has no main score to judge here ('' when it has one)."""
    if fresh is None:
        return f"split {split}, subset {subset} is missing from the new results"
    return "" if score is not None else "a main score is missing (null)"


def _incomparable(baseline: ResultFile, new: ResultFile) -> str:
    """Why the two results do not measure the same thing ('' when they do)."""
    if baseline.dataset_revision != new.dataset_revision:
        return (
            f"dataset revision differs (baseline {baseline.dataset_revision}, "
            f"new {new.dataset_revision})"
        )
    old_task, new_task = protocol_record(baseline.harness.task), protocol_record(new.harness.task)
    changed = sorted(
        k for k in old_task.keys() | new_task.keys() if old_task.get(k) != new_task.get(k)
    )
    if changed:
        return f"task settings differ: {', '.join(changed)}"
    old_limit = baseline.harness.run_settings.limit
    new_limit = new.harness.run_settings.limit
    if old_limit != new_limit:
        return f"--limit differs (baseline {old_limit}, new {new_limit})"
    return ""


def _untrusted(result: ResultFile, side: str) -> str:
    """Why a result's own main scores cannot be judged ('' when they can): a main score that
    is not its metric's value, its units' score or inside its interval."""
    problems = score_problems(result, result.harness.task.main_score or "main_score")
    if not problems:
        return ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"the {side} result is inconsistent in itself: {problems[0]}{more}"


def _judge_main(
    task: str,
    split: str,
    subset: str,
    metric: str,
    baseline: ResultFile,
    new: ResultFile,
    settings: CheckSettings,
) -> Row:
    """The main score's row: tolerance, paired bootstrap or combined intervals."""
    old_score = _score(baseline, split, subset)
    new_score = _score(new, split, subset)
    row = Row(task, split, subset, metric, old_score, new_score)
    if old_score is None or new_score is None:
        return _with(row, note="a main score is missing (null)")
    delta = new_score - old_score
    old_units, new_units = baseline.unit_scores(split, subset), new.unit_scores(split, subset)
    bounds = _paired(old_units, new_units, settings.level)
    if bounds is None:
        bounds = _combined(baseline, new, split, subset, old_score, new_score, settings.level)
    if settings.tolerance is not None:
        verdict = _by_tolerance(delta, settings.tolerance)
        shown = {**(bounds or {}), "method": f"tolerance {settings.tolerance}"}
        return _with(row, delta=delta, verdict=verdict, **shown)
    if bounds is None:
        note = "no bootstrap interval on one side; rerun both with this harness or pass --tolerance"
        return _with(row, delta=delta, note=note)
    verdict = REGRESSION if bounds["high"] < 0 else IMPROVED if bounds["low"] > 0 else PASS
    return _with(row, delta=delta, verdict=verdict, **bounds)


def _with(row: Row, **changes: Any) -> Row:
    return Row(**{**asdict(row), **changes})


def _by_tolerance(delta: float, tolerance: float) -> str:
    return REGRESSION if delta < -tolerance else IMPROVED if delta > tolerance else PASS


def _score(result: ResultFile, split: str, subset: str) -> float | None:
    for entry in result.scores.get(split, []):
        if entry.get("hf_subset", "default") == subset:
            value = entry.get("main_score")
            return float(value) if isinstance(value, int | float) else None
    return None


def _paired(
    baseline: UnitScores | None, new: UnitScores | None, level: float
) -> dict[str, Any] | None:
    """The paired bootstrap of the difference, when both runs scored the same units."""
    if baseline is None or new is None:
        return None
    if (baseline.statistic, baseline.ids_digest) != (new.statistic, new.ids_digest):
        return None
    test = paired_bootstrap(baseline, new, level=level)
    return {
        "low": test.low,
        "high": test.high,
        "p_value": test.p_value,
        "method": "paired bootstrap",
    }


def _combined(
    baseline: ResultFile,
    new: ResultFile,
    split: str,
    subset: str,
    old_score: float,
    new_score: float,
    level: float,
) -> dict[str, Any] | None:
    """The difference's interval from the two runs' own intervals, half-widths in quadrature."""
    old_interval = _interval_at(baseline, split, subset, level)
    new_interval = _interval_at(new, split, subset, level)
    if old_interval is None or new_interval is None:
        return None
    (old_low, old_high), (new_low, new_high) = old_interval, new_interval
    delta = new_score - old_score
    return {
        "low": delta - math.hypot(new_score - new_low, old_high - old_score),
        "high": delta + math.hypot(new_high - new_score, old_score - old_low),
        "method": "combined intervals",
    }


def _interval_at(
    result: ResultFile, split: str, subset: str, level: float
) -> tuple[float, float] | None:
    """The main score's interval at ``level``: as stored when at that level, else recomputed
    from the units (None when neither exists)."""
    stored = result.harness.intervals.get(split, {}).get(subset)
    stored_level = (stored or {}).get("level")
    if (
        stored
        and isinstance(stored_level, float)
        and math.isclose(stored_level, level)
        and stored.get("low") is not None
    ):
        return float(stored["low"]), float(stored["high"])
    units = result.unit_scores(split, subset)
    if units is None:
        return None
    interval = bootstrap_interval(units, level=level)
    return interval.low, interval.high


def _other_metrics(
    task: str,
    split: str,
    subset: str,
    main: str,
    baseline: dict[str, Any],
    new: dict[str, Any],
    settings: CheckSettings,
) -> list[Row]:
    """Rows for the other metrics: judged by --tolerance when given, else shown only."""
    rows = []
    for metric, old_value in baseline.items():
        new_value = new.get(metric)
        if metric in NOT_METRICS or metric == main or not _numbers(old_value, new_value):
            continue
        delta = new_value - old_value
        verdict = "-" if settings.tolerance is None else _by_tolerance(delta, settings.tolerance)
        rows.append(Row(task, split, subset, metric, old_value, new_value, delta, verdict=verdict))
    return rows


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
