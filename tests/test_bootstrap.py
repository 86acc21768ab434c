"""Bootstrap intervals and paired tests on per-unit scores, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (
    adjusted_rand_score,
    label_ranking_average_precision_score,
    normalized_mutual_info_score,
)

from harness.scoring.bootstrap import (
    UnitScores,
    bootstrap_interval,
    ids_digest,
    paired_bootstrap,
    resample_blocks,
)
from harness.scoring.classification import lrap_per_item


def mean_units(values: list[float] | np.ndarray) -> UnitScores:
    return UnitScores.build("mean", list(range(len(values))), values=values)


def test_constant_units_give_a_zero_width_interval() -> None:
    interval = bootstrap_interval(mean_units([0.7] * 50))
    assert (interval.low, interval.high) == pytest.approx((0.7, 0.7))


def test_interval_of_a_proportion_matches_the_normal_approximation() -> None:
    """400 units, half correct: the bootstrap standard error is sqrt(p(1-p)/n) = 0.025, so
    the 95% interval is about 0.5 +- 1.96 * 0.025 = [0.451, 0.549]."""
    units = mean_units([1.0, 0.0] * 200)
    resampled = units.resampled_scores(resample_blocks(len(units)))
    assert resampled.std() == pytest.approx(math.sqrt(0.25 / 400), rel=0.08)
    interval = bootstrap_interval(units)
    assert interval.low == pytest.approx(0.5 - 1.96 * 0.025, abs=0.008)
    assert interval.high == pytest.approx(0.5 + 1.96 * 0.025, abs=0.008)
    assert (interval.level, interval.resamples, interval.seed) == (0.95, 1000, 42)


def test_interval_is_reproducible_and_depends_on_the_seed() -> None:
    units = mean_units(np.random.default_rng(0).random(120))
    assert bootstrap_interval(units) == bootstrap_interval(units)
    assert bootstrap_interval(units, seed=7) != bootstrap_interval(units)


def test_resamples_do_not_depend_on_how_many_are_drawn() -> None:
    """Blocks have a fixed size: the first 100 of 1,000 resamples are the 100 of a 100 draw."""
    many = np.concatenate(list(resample_blocks(30, 1000, 5)))
    few = np.concatenate(list(resample_blocks(30, 100, 5)))
    assert many.shape == (1000, 30)
    np.testing.assert_array_equal(many[:100], few)


def test_spearman_units_score_like_scipy() -> None:
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 6, 80).astype(float)
    predicted = gold + rng.normal(0, 2, 80)
    units = UnitScores.build("spearman", list(range(80)), predicted=predicted, gold=gold)
    assert units.score() == pytest.approx(stats.spearmanr(gold, predicted)[0])
    ranked = UnitScores.build(
        "spearman",
        list(range(80)),
        predicted=stats.rankdata(predicted),
        gold=stats.rankdata(gold),
    )
    assert bootstrap_interval(ranked) == bootstrap_interval(units)


@pytest.mark.parametrize("n_groups", [1, 2, 5])
def test_nmi_of_every_resample_matches_scikit_learn(n_groups: int) -> None:
    """The vectorised NMI equals scikit-learn's on each resample, single groups included."""
    rng = np.random.default_rng(n_groups)
    labels = rng.integers(0, n_groups, 40)
    clusters = np.where(rng.random(40) < 0.6, labels, rng.integers(0, 3, 40))
    units = UnitScores.build("nmi", list(range(40)), labels=labels, clusters=clusters)
    blocks = list(resample_blocks(40, 120, 9))
    ours = units.resampled_scores(blocks)
    reference = [
        normalized_mutual_info_score(labels[row], clusters[row])
        for block in blocks
        for row in block
    ]
    np.testing.assert_allclose(ours, reference, atol=1e-12)
    one_group = UnitScores.build("nmi", [0, 1, 2], labels=[0, 0, 0], clusters=[1, 1, 1])
    assert one_group.score() == normalized_mutual_info_score([0, 0, 0], [1, 1, 1]) == 1.0


def test_clustering_units_score_like_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 60)
    clusters = np.where(rng.random(60) < 0.7, labels, rng.integers(0, 4, 60))
    units = UnitScores.build("ari", list(range(60)), labels=labels, clusters=clusters)
    assert units.score() == pytest.approx(adjusted_rand_score(labels, clusters))
    interval = bootstrap_interval(units, resamples=200)
    assert interval.low < units.score() < interval.high


def test_identical_runs_pair_with_no_difference() -> None:
    units = mean_units(np.random.default_rng(3).random(100))
    test = paired_bootstrap(units, units)
    assert (test.delta, test.low, test.high, test.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_a_consistent_drop_is_significant_and_noise_is_not() -> None:
    rng = np.random.default_rng(4)
    baseline = mean_units(rng.random(200))
    dropped = mean_units(baseline.columns["values"] - 0.05)
    test = paired_bootstrap(baseline, dropped)
    assert test.delta == pytest.approx(-0.05)
    assert test.high < 0 and test.p_value <= 2 / 1000
    jittered = mean_units(baseline.columns["values"] + rng.normal(0, 0.01, 200))
    assert paired_bootstrap(baseline, jittered).p_value > 0.05


def test_pairing_needs_the_same_units() -> None:
    first = UnitScores.build("mean", ["q1", "q2"], values=[0.1, 0.2])
    second = UnitScores.build("mean", ["q1", "q3"], values=[0.1, 0.2])
    assert first.ids_digest != second.ids_digest == ids_digest(["q1", "q3"])
    with pytest.raises(ValueError, match="same units"):
        paired_bootstrap(first, second)


def test_units_refuse_bad_columns() -> None:
    with pytest.raises(ValueError, match="needs columns"):
        UnitScores.build("spearman", [0, 1], values=[0.1, 0.2])
    with pytest.raises(ValueError, match="equal length"):
        UnitScores.build("spearman", [0, 1], predicted=[0.1, 0.2], gold=[1.0])
    with pytest.raises(ValueError, match="unknown statistic"):
        UnitScores.build("median", [0], values=[0.1])


@pytest.mark.parametrize("seed", range(4))
def test_lrap_per_item_averages_to_scikit_learns_lrap(seed: int) -> None:
    """Ties, rows with every label and rows with none included."""
    rng = np.random.default_rng(seed)
    y_true = (rng.random((40, 6)) < 0.3).astype(int)
    y_true[0] = 1
    y_true[1] = 0
    scores = rng.integers(0, 3, (40, 6)).astype(float)
    expected = label_ranking_average_precision_score(y_true, scores)
    assert lrap_per_item(y_true, scores).mean() == pytest.approx(expected, abs=1e-12)
