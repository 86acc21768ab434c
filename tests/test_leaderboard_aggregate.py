"""Aggregation against hand-computed tables: ties, missing values, partial coverage, Borda."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.engine.main_score import split_score, task_score
from harness.leaderboard.aggregate import (
    Aggregate,
    borda_ranks,
    mean_of_type_means,
    overview,
    type_means,
)
from tests.leaderboard_fixtures import BORDA_ORDER, TABLE, TYPES


def test_split_score_prefers_default_then_averages_subsets() -> None:
    with_default = [
        {"hf_subset": "default", "main_score": 0.5},
        {"hf_subset": "tha", "main_score": 0.9},
    ]
    assert split_score(with_default) == 0.5
    assert split_score(
        [{"hf_subset": "en", "main_score": 0.2}, {"hf_subset": "fr", "main_score": 0.4}]
    ) == pytest.approx(0.3)
    assert split_score([{"hf_subset": "en", "main_score": 0.2}, {"hf_subset": "fr"}]) is None
    assert split_score([{"hf_subset": "default", "main_score": None}]) is None
    assert split_score([{"hf_subset": "default", "main_score": True}]) is None
    assert split_score([]) is None


def test_task_score_needs_every_eval_split() -> None:
    scores = {
        "dev": [{"main_score": 0.2}],
        "test": [{"main_score": 0.4}],
        "train": [{"main_score": 1.0}],
    }
    assert task_score(scores, ["dev", "test"]) == pytest.approx(0.3)
    assert task_score(scores, ["test", "validation"]) is None
    assert task_score({"test": [{"main_score": 0.4}]}, []) == 0.4


def test_hand_computed_table() -> None:
    rows = {row.model: row for row in overview(TABLE, TYPES)}
    assert [row.model for row in overview(TABLE, TYPES)] == BORDA_ORDER
    # Borda, n = 3: T1 ties alpha and hostile at 0.9 (rank 1.5 each: 1.5 points), small 0;
    # T2 hostile 2, alpha 1; S1 alpha 2. Totals 4.5, 3.5, 0.
    assert [rows[m].borda_rank for m in BORDA_ORDER] == [1, 2, 3]
    alpha, hostile, small = (rows[m] for m in BORDA_ORDER)
    assert alpha.type_means["retrieval"] == Aggregate(pytest.approx(0.7), 2, 2)
    assert alpha.type_means["zero_shot_classification"] == Aggregate(0.3, 1, 1)
    assert alpha.mean_of_type_means == Aggregate(pytest.approx(0.5), 3, 3)
    assert alpha.mean_over_tasks == Aggregate(pytest.approx(1.7 / 3), 3, 3)
    assert alpha.mean_of_type_means.complete
    # The hostile model lacks S1: its zero-shot mean is missing, the overall ones partial.
    assert hostile.type_means["retrieval"] == Aggregate(pytest.approx(0.8), 2, 2)
    assert hostile.type_means["zero_shot_classification"] == Aggregate(None, 0, 1)
    assert hostile.mean_of_type_means == Aggregate(pytest.approx(0.8), 2, 3)
    assert not hostile.mean_of_type_means.complete
    assert hostile.mean_over_tasks == Aggregate(pytest.approx(0.8), 2, 3)
    # "small" ran one of three tasks.
    assert small.type_means["retrieval"] == Aggregate(0.1, 1, 2)
    assert small.mean_over_tasks == Aggregate(0.1, 1, 3)


def test_tied_borda_points_share_the_best_rank() -> None:
    table = {
        "a": {"t1": 0.9, "t2": 0.1},
        "b": {"t1": 0.1, "t2": 0.9},
        "c": {"t1": 0.05, "t2": 0.05},
    }
    assert borda_ranks(table, ["t1", "t2"]) == {"a": 1, "b": 1, "c": 3}
    assert [row.model for row in overview(table, {"t1": "x", "t2": "x"})] == ["a", "b", "c"]


def test_models_without_any_score_are_left_out() -> None:
    table = {"a": {"t1": 0.5}, "b": {"t1": None}}
    assert [row.model for row in overview(table, {"t1": "x"})] == ["a"]


def test_mean_of_type_means_weights_types_not_tasks() -> None:
    means = type_means({"a": 1.0, "b": 1.0, "c": 0.0}, {"a": "x", "b": "x", "c": "y"})
    assert mean_of_type_means(means) == Aggregate(0.5, 3, 3)


@pytest.mark.parametrize("seed", range(8))
def test_borda_equals_mteb(seed: int) -> None:
    pl = pytest.importorskip("polars")
    from mteb.benchmarks._create_table import _get_borda_rank

    rng = np.random.default_rng(seed)
    models, tasks = [f"m{i}" for i in range(7)], [f"t{j}" for j in range(6)]
    # One decimal makes ties; about a fifth of the cells are missing.
    values = np.round(rng.random((len(models), len(tasks))), 1)
    values[rng.random(values.shape) < 0.2] = math.nan
    table = {
        m: {t: None if math.isnan(v) else float(v) for t, v in zip(tasks, row, strict=True)}
        for m, row in zip(models, values, strict=True)
    }
    frame = pl.DataFrame({t: [table[m][t] for m in models] for t in tasks})
    expected = frame.select(_get_borda_rank(tasks)).to_series().to_list()
    assert borda_ranks(table, tasks) == dict(zip(models, expected, strict=True))
