"""Bootstrap intervals of the board's ranks and means (harness.leaderboard.significance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from harness.core.errors import HarnessError
from harness.engine.main_score import task_score
from harness.engine.mteb_files import MtebResult
from harness.engine.results import ResultFile, units_payload
from harness.leaderboard import aggregate
from harness.leaderboard.collect import Entry, ModelKey, collect
from harness.leaderboard.significance import Spread, spreads, unit_set_seed
from harness.scoring.bootstrap import UnitScores, bootstrap_interval, percentile_interval
from tests.leaderboard_fixtures import S1, T1, T2, result_payload, write_payload

# A task's parts: {(split, subset): the units scored there, or a fixed score without units}.
Parts = Mapping[tuple[str, str], UnitScores | float]


def _entry(model: str, task: str, kind: str, parts: Parts, revision: str = "r1") -> Entry:
    """A harness entry of a custom task whose (split, subset) scores are ``parts``."""
    payload = result_payload(model, task, 0.5, task_type=kind, revision=revision)
    scores: dict[str, list[dict[str, object]]] = {}
    units: dict[str, dict[str, object]] = {}
    for (split, subset), part in parts.items():
        value = round(part.score(), 6) if isinstance(part, UnitScores) else part
        entry = {"main_score": value, "hf_subset": subset, "languages": ["eng-Latn"]}
        scores.setdefault(split, []).append({**entry, "accuracy": value})
        if isinstance(part, UnitScores):
            units.setdefault(split, {})[subset] = units_payload(part)
    payload["scores"], payload["harness"]["units"] = scores, units
    result = ResultFile.model_validate(payload)
    score = task_score(result.scores, list(scores))
    return Entry(model, revision, task, kind, score, result, Path(f"{model}/{task}.json"))


def _external(model: str, task: str, kind: str, score: float) -> Entry:
    """An external row: an mteb result file's score, without units."""
    subset = {"hf_subset": "default", "languages": ["eng-Latn"], "main_score": score}
    result = MtebResult(
        task_name=task,
        dataset_revision=None,
        mteb_version="1.12.0",
        scores={"test": [subset]},
        evaluation_time=None,
        layout="mteb 1.x TaskResult",
    )
    return Entry(model, "published", task, kind, score, result, Path(f"{model}/{task}.json"))


def _mean_units(values: np.ndarray, digest_ids: str = "u") -> UnitScores:
    return UnitScores.build("mean", [f"{digest_ids}{i}" for i in range(len(values))], values=values)


def _bernoulli(rng: np.random.Generator, p: float, n: int = 200) -> np.ndarray:
    return (rng.uniform(size=n) < p).astype(float)


# The brute-force reference: each resample's task scores from the bootstrap module's own
# statistics, each resample's board from harness.leaderboard.aggregate.


def _resampled_task_scores(entry: Entry, resamples: int, seed: int) -> list[float | None] | None:
    """The entry's task score (``task_score``) on every resample of every subset's units;
    ``None`` when a subset has no units."""
    assert isinstance(entry.result, ResultFile)
    scores = entry.result.scores
    draws = {}
    for split, subsets in scores.items():
        for subset in subsets:
            units = entry.result.unit_scores(split, subset["hf_subset"])
            if units is None:
                return None
            seed_of_set = unit_set_seed(seed, entry.task, split, subset["hf_subset"], units)
            rows = [
                row for block in units.resample_indices(resamples, seed_of_set) for row in block
            ]
            values = np.array([units.score(row) for row in rows])
            draws[split, subset["hf_subset"]] = units.on_score_scale(units.score(), values)
    return [
        task_score(
            {
                split: [{**s, "main_score": draws[split, s["hf_subset"]][b]} for s in subsets]
                for split, subsets in scores.items()
            },
            list(scores),
        )
        for b in range(resamples)
    ]


def _points(
    table: Mapping[ModelKey, Mapping[str, float | None]], tasks: list[str]
) -> dict[ModelKey, float]:
    """Borda points as ``aggregate.borda_ranks`` documents them, by plain loops."""
    points = dict.fromkeys(table, 0.0)
    for task in tasks:
        values = {m: value for m, s in table.items() if (value := s.get(task)) is not None}
        for model, value in values.items():
            better = sum(other > value for other in values.values())
            equal = sum(other == value for other in values.values())
            points[model] += len(table) - (better + (equal + 1) / 2)
    return points


def _holding(
    values: Sequence[float | None], point: float | None, level: float
) -> tuple[float, float]:
    assert point is not None
    low, high = percentile_interval(np.array(values, dtype=float), level)
    return min(low, point), max(high, point)


def _tied(
    points: Sequence[Mapping[ModelKey, float]], model: ModelKey, level: float
) -> tuple[ModelKey, ...]:
    """The models whose Borda-points difference from ``model`` has an interval holding 0."""
    tied = []
    for other in points[0]:
        low, high = percentile_interval(np.array([p[other] - p[model] for p in points]), level)
        if other != model and low <= 0 <= high:
            tied.append(other)
    return tuple(tied)


def _reference(
    entries: list[Entry], task_types: dict[str, str], resamples: int, seed: int, level: float
) -> dict[ModelKey, Spread]:
    tasks = sorted(task_types)
    table: dict[ModelKey, dict[str, float | None]] = {}
    for entry in entries:
        table.setdefault(entry.key, {})[entry.task] = entry.score
    draws = {
        (entry.key, entry.task): _resampled_task_scores(entry, resamples, seed) for entry in entries
    }
    boards: list[tuple[list[aggregate.OverviewRow[ModelKey]], dict[ModelKey, float]]] = []
    for b in range(resamples):
        sample = {
            model: {
                task: (score if (d := draws[(model, task)]) is None else d[b])
                for task, score in scores.items()
            }
            for model, scores in table.items()
        }
        boards.append((aggregate.overview(sample, task_types), _points(sample, tasks)))
    observed = {row.model: row for row in aggregate.overview(table, task_types)}
    out: dict[ModelKey, Spread] = {}
    for model, row in observed.items():
        rows = [next(r for r in rows if r.model == model) for rows, _ in boards]
        varying = {task for task in table[model] if draws[(model, task)] is not None}
        low, high = _holding([r.borda_rank for r in rows], row.borda_rank, level)
        mean = _holding(
            [r.mean_of_type_means.value for r in rows], row.mean_of_type_means.value, level
        )
        task_mean = _holding(
            [r.mean_over_tasks.value for r in rows], row.mean_over_tasks.value, level
        )
        types = {
            kind: _holding([r.type_means[kind].value for r in rows], agg.value, level)
            if any(task_types[task] == kind for task in varying)
            else None
            for kind, agg in row.type_means.items()
        }
        tied = _tied([p for _, p in boards], model, level)
        out[model] = Spread(
            int(np.floor(low)),
            int(np.ceil(high)),
            mean[0] if varying else None,
            mean[1] if varying else None,
            task_mean[0] if varying else None,
            task_mean[1] if varying else None,
            types,
            tied,
        )
    return out


def _assert_same(got: Spread, expected: Spread) -> None:
    assert (got.rank_low, got.rank_high) == (expected.rank_low, expected.rank_high)
    assert got.tied_with == expected.tied_with
    for name in ("mean_low", "mean_high", "task_mean_low", "task_mean_high"):
        assert getattr(got, name) == pytest.approx(getattr(expected, name), abs=1e-9)
    assert got.type_intervals.keys() == expected.type_intervals.keys()
    for kind, bounds in expected.type_intervals.items():
        assert got.type_intervals[kind] == (
            None if bounds is None else pytest.approx(bounds, abs=1e-9)
        )


def test_matches_a_brute_force_reference() -> None:
    """Every statistic and method (mean, Spearman, half-sampled NMI), two splits, subsets
    without a default and beside one, a missing task, a task without units and tied task
    scores (delta scored alpha's units of Mean1), against a loop over the resamples that calls the
    bootstrap and aggregate functions."""
    rng = np.random.default_rng(7)
    gold = rng.uniform(size=40)
    labels = rng.integers(0, 3, size=60)
    entries = []
    means = [_mean_units(_bernoulli(rng, 0.5 + 0.1 * index, 80)) for index in range(3)]
    for index, model in enumerate(["alpha", "beta", "gamma"]):
        skill = 0.5 + 0.1 * index
        mean: dict[tuple[str, str], UnitScores | float] = {("test", "default"): means[index]}
        if model == "gamma":  # language subsets beside the default one, which alone counts
            mean |= {("test", lang): _mean_units(_bernoulli(rng, 0.2, 80)) for lang in ("en", "fr")}
        sts: dict[tuple[str, str], UnitScores | float] = {
            (split, "default"): UnitScores.build(
                "spearman",
                list(range(40)),
                predicted=gold + rng.normal(0, 1 - skill, 40),
                gold=gold,
            )
            for split in ("dev", "test")
        }
        if model == "gamma":  # an older file: no units for one split
            sts[("dev", "default")] = 0.61
        clusters = {
            ("test", subset): UnitScores.build(
                "nmi",
                list(range(60)),
                labels=labels,
                clusters=np.where(rng.uniform(size=60) < skill, labels, rng.integers(0, 3, 60)),
            )
            for subset in ("en", "fr")
        }
        entries += [_entry(model, "Mean1", "kind_a", mean), _entry(model, "Sts2", "kind_a", sts)]
        if model != "beta":
            entries.append(_entry(model, "Clu3", "kind_b", clusters))
    entries.append(_entry("delta", "Mean1", "kind_a", {("test", "default"): means[0]}))
    task_types = {"Mean1": "kind_a", "Sts2": "kind_a", "Clu3": "kind_b"}
    got = spreads(entries, task_types, resamples=60, seed=3, level=0.9)
    expected = _reference(entries, task_types, 60, 3, 0.9)
    assert got.keys() == expected.keys()
    for key, spread in expected.items():
        _assert_same(got[key], spread)


def test_fixed_scores_rank_as_the_board_does() -> None:
    """Without units every resample is the board itself: each rank interval is the Borda rank
    of ``aggregate.overview`` (ties take the average rank of a task, a missing task earns
    nothing), and the models tied are those with the same Borda points."""
    table = {
        "a": {"T1": 0.5, "T2": 0.25},
        "b": {"T1": 0.5, "T2": 0.3},
        "c": {"T1": 0.4, "T2": 0.6, "T3": 0.9},
        "d": {"T1": 0.3, "T3": 0.95},
        "e": {"T1": 0.2, "T2": 0.25, "T3": 0.1},
    }
    entries = [
        _entry(model, task, "kind", {("test", "default"): score})
        for model, scores in table.items()
        for task, score in scores.items()
    ]
    task_types = dict.fromkeys(["T1", "T2", "T3"], "kind")
    result = spreads(entries, task_types, resamples=20)
    ranks = aggregate.borda_ranks(table, sorted(task_types))
    assert sorted(ranks.values()) == [1, 2, 3, 3, 5]  # a and d tie in points
    for model, rank in ranks.items():
        spread = result[ModelKey(model, "r1")]
        assert (spread.rank_low, spread.rank_high) == (rank, rank)
        assert spread.tied_with == tuple(
            ModelKey(other, "r1") for other in table if other != model and ranks[other] == rank
        )


@pytest.mark.parametrize(("level", "tolerance"), [(0.95, 1e-12), (0.02, 1e-6)])
def test_a_single_task_interval_is_the_bootstrap_interval(level: float, tolerance: float) -> None:
    """One task, one split: each model's mean interval is its units' own bootstrap interval at
    the unit set's seed, alone (the bootstrap module's mean) or paired with another model (the
    count matrix). At a low level the percentiles need not hold the score and both widen the
    interval to it (the board's score is the file's, rounded to 6 decimals)."""
    rng = np.random.default_rng(1)
    solo, pair = (_mean_units(rng.uniform(size=300).round(6), ids) for ids in ("s", "p"))
    rival = _mean_units(rng.uniform(size=300).round(6), "p")  # the same units as pair
    entries = [
        _entry(model, "Only", "kind", {("test", "default"): units})
        for model, units in (("solo", solo), ("pair", pair), ("rival", rival))
    ]
    result = spreads(entries, {"Only": "kind"}, resamples=200, seed=5, level=level)
    for model, units in (("solo", solo), ("pair", pair), ("rival", rival)):
        seed = unit_set_seed(5, "Only", "test", "default", units)
        interval = bootstrap_interval(units, level, resamples=200, seed=seed)
        expected = pytest.approx((interval.low, interval.high), abs=tolerance)
        spread = result[ModelKey(model, "r1")]
        assert (spread.mean_low, spread.mean_high) == expected
        assert spread.type_intervals == {"kind": expected}


def test_unit_sets_of_other_tasks_splits_and_subsets_are_resampled_independently() -> None:
    units = _mean_units(np.arange(10.0))
    seeds = {
        unit_set_seed(42, task, split, subset, units)
        for task in ("One", "Two")
        for split in ("dev", "test")
        for subset in ("en", "fr")
    }
    assert len(seeds) == 8
    assert unit_set_seed(42, "One", "test", "en", units) == unit_set_seed(
        42, "One", "test", "en", _mean_units(np.ones(10))
    )
    assert unit_set_seed(42, "One", "test", "en", units) != unit_set_seed(
        42, "One", "test", "en", _mean_units(np.arange(10.0), "v")
    )


def test_a_clearly_best_model_ranks_first_untied(tmp_path: Path) -> None:
    """Result files collected from disk: a model far ahead on every task ranks [1, 1]."""
    task_types = {T1: "retrieval", T2: "retrieval", S1: "zero_shot_classification"}
    for index, (model, score) in enumerate([("best", 0.9), ("mid", 0.5), ("low", 0.48)]):
        for task in task_types:
            write_payload(tmp_path, f"m{index}", result_payload(model, task, score))
    result = spreads(collect([tmp_path]).entries, task_types, resamples=200)
    best = result[ModelKey("best", "r1")]
    assert (best.rank_low, best.rank_high) == (1, 1)
    assert best.tied_with == ()
    assert best.mean_low is not None and best.mean_low < 0.9 < best.mean_high  # type: ignore[operator]
    # the fixtures' units are nested (each unit low gets right, mid gets right too): paired,
    # mid is ahead of low on every resample, though by 0.02 only
    assert result[ModelKey("mid", "r1")].tied_with == ()


def test_identical_units_are_tied_and_share_the_rank_interval() -> None:
    rng = np.random.default_rng(2)
    same = _mean_units(_bernoulli(rng, 0.6))
    parts = {("test", "default"): same}
    entries = [
        _entry("twin1", "Only", "kind", parts),
        _entry("twin2", "Only", "kind", parts),
        _entry("other", "Only", "kind", {("test", "default"): _mean_units(_bernoulli(rng, 0.55))}),
    ]
    result = spreads(entries, {"Only": "kind"}, resamples=200)
    one, two = result[ModelKey("twin1", "r1")], result[ModelKey("twin2", "r1")]
    assert ModelKey("twin2", "r1") in one.tied_with and ModelKey("twin1", "r1") in two.tied_with
    assert (one.rank_low, one.rank_high) == (two.rank_low, two.rank_high)
    assert (one.mean_low, one.mean_high) == (two.mean_low, two.mean_high)


def test_paired_units_show_a_difference_that_independent_ones_do_not() -> None:
    """B = A + 0.01 on every unit: always ahead on the same resamples, but within the noise
    when the units are not the same (another ids digest: resampled independently)."""
    values = np.random.default_rng(3).uniform(size=200)
    ahead = values + 0.01
    a = _entry("a", "Only", "kind", {("test", "default"): _mean_units(values)})
    for digest, significant in (("u", True), ("v", False)):
        b = _entry("b", "Only", "kind", {("test", "default"): _mean_units(ahead, digest)})
        result = spreads([a, b], {"Only": "kind"}, resamples=300)
        assert (result[ModelKey("b", "r1")].tied_with == ()) is significant
        assert (result[ModelKey("b", "r1")].rank_high == 1) is significant


def test_scores_without_units_stay_fixed() -> None:
    """A model without units has no mean interval but a rank interval; a fixed score far above
    the others ranks first every time; a two-split task with units on one split is fixed."""
    rng = np.random.default_rng(4)
    noisy = [
        _entry(
            f"noisy{i}", "Only", "kind", {("test", "default"): _mean_units(_bernoulli(rng, 0.5))}
        )
        for i in range(3)
    ]
    fixed = _entry("fixed", "Only", "kind", {("test", "default"): 0.5})
    top = _entry("top", "Only", "kind", {("test", "default"): 0.99})
    half = _entry(
        "half",
        "Only",
        "kind",
        {("dev", "default"): _mean_units(_bernoulli(rng, 0.5)), ("test", "default"): 0.2},
    )
    result = spreads([*noisy, fixed, top, half], {"Only": "kind"}, resamples=200)
    for model in ("fixed", "top", "half"):
        spread = result[ModelKey(model, "r1")]
        assert (spread.mean_low, spread.mean_high, spread.task_mean_low) == (None, None, None)
        assert spread.type_intervals == {"kind": None}
    assert (result[ModelKey("top", "r1")].rank_low, result[ModelKey("top", "r1")].rank_high) == (
        1,
        1,
    )
    fixed_spread = result[ModelKey("fixed", "r1")]
    assert fixed_spread.rank_low < fixed_spread.rank_high  # the others move around it
    assert result[ModelKey("half", "r1")].rank_low == result[ModelKey("half", "r1")].rank_high == 6


def test_external_rows_rank_among_harness_rows() -> None:
    """mteb rows (no units) are fixed; a harness row with the same score is tied with one."""
    rng = np.random.default_rng(5)
    units = _mean_units(_bernoulli(rng, 0.5))
    ours = _entry("model", "Only", "kind", {("test", "default"): units})
    published = _external("model", "Only", "kind", ours.score)  # type: ignore[arg-type]
    far = _external("weak", "Only", "kind", 0.1)
    result = spreads([ours, published, far], {"Only": "kind"}, resamples=200)
    external = result[published.key]
    assert external.mean_low is None and external.type_intervals == {"kind": None}
    assert ours.key in external.tied_with and published.key in result[ours.key].tied_with
    assert (result[far.key].rank_low, result[far.key].rank_high) == (3, 3)
    assert result[far.key].tied_with == ()


def test_resamples_with_an_undefined_score_are_left_out() -> None:
    """Spearman's rho of three pairs is undefined on a resample that draws one pair three
    times; such resamples are left out for every model, and every bound is finite."""
    gold = [0.1, 0.5, 0.9]
    entries = [
        _entry(
            model,
            "Sts",
            "kind",
            {
                ("test", "default"): UnitScores.build(
                    "spearman", [0, 1, 2], predicted=predicted, gold=gold
                )
            },
        )
        for model, predicted in (("a", [0.2, 0.4, 0.8]), ("b", [0.3, 0.1, 0.7]))
    ]
    for spread in spreads(entries, {"Sts": "kind"}, resamples=200).values():
        interval = spread.type_intervals["kind"]
        assert interval is not None and spread.mean_low is not None and spread.mean_high is not None
        assert np.isfinite([spread.mean_low, spread.mean_high, *interval]).all()


def test_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(6)
    entries = [
        _entry(f"m{i}", task, "kind", {("test", "default"): _mean_units(_bernoulli(rng, 0.5))})
        for i in range(3)
        for task in ("One", "Two")
    ]
    types = {"One": "kind", "Two": "kind"}
    first = spreads(entries, types, resamples=100, seed=9)
    assert spreads(entries, types, resamples=100, seed=9) == first
    assert spreads(entries, types, resamples=100, seed=10) != first


def test_an_empty_board_has_no_spreads() -> None:
    entry = _entry("m", "Elsewhere", "kind", {("test", "default"): 0.5})
    assert spreads([], {}) == {} == spreads([entry], {"Only": "kind"})


@pytest.mark.parametrize(("resamples", "level"), [(0, 0.95), (10, 1.0)])
def test_bad_settings_are_refused(resamples: int, level: float) -> None:
    with pytest.raises(HarnessError):
        spreads([], {}, resamples=resamples, level=level)
