"""Retrieval metrics against pytrec_eval and mteb's own scoring code on the same run dicts."""

from __future__ import annotations

import copy

import datasets
import numpy as np
import pytest
import pytrec_eval
import torch
from mteb._evaluators import retrieval_metrics as mteb_metrics
from mteb._evaluators.retrieval_evaluator import RetrievalEvaluator
from mteb.abstasks.retrieval import _filter_queries_without_positives
from mteb.similarity_functions import cos_sim

from harness.scoring.retrieval import (
    DEFAULT_K_VALUES,
    RetrievalScores,
    drop_queries_without_positives,
    retrieval_scores,
)
from harness.scoring.search import run_from_top_k, top_k_search

UNROUNDED = "mrr_at_"


def mteb_score_dict(qrels, run, k_values=DEFAULT_K_VALUES, **options) -> dict:
    """mteb's whole retrieval score dict, nAUCs included; mteb mutates the run, so copy it."""
    result = RetrievalEvaluator.evaluate(
        None, copy.deepcopy(qrels), copy.deepcopy(run), list(k_values), **options
    )
    return mteb_metrics.make_score_dict(
        ndcg=result.ndcg,
        _map=result.map,
        recall=result.recall,
        precision=result.precision,
        mrr=result.mrr,
        naucs=result.naucs,
        naucs_mrr=result.naucs_mrr,
        hit_rate=result.hit_rate,
        task_scores={},
    )


def mteb_scores(qrels, run, k_values=DEFAULT_K_VALUES, *, skip_first=False, ignore_ids=False):
    """mteb's aggregate score dict without the nAUC keys (``tests/test_metric_parity.py``
    checks those)."""
    options = {"ignore_identical_ids": ignore_ids, "skip_first_result": skip_first}
    scores = mteb_score_dict(qrels, run, k_values, **options)
    return {key: value for key, value in scores.items() if not key.startswith("nauc")}


def assert_matches_mteb(qrels, run, k_values=DEFAULT_K_VALUES, **options) -> RetrievalScores:
    ours = retrieval_scores(qrels, run, k_values, **options)
    expected = mteb_scores(
        qrels,
        run,
        k_values,
        skip_first=options.get("skip_first_result", False),
        ignore_ids=options.get("ignore_identical_ids", False),
    )
    assert list(ours.metrics) == list(expected)
    # Same sums in the same order and the same rounding: the numbers are identical, not close.
    assert ours.metrics == expected
    return ours


def assert_per_query_matches_pytrec(qrels, run, scores: RetrievalScores, k_values) -> None:
    cutoffs = ",".join(map(str, k_values))
    measures = {f"{m}.{cutoffs}" for m in ("ndcg_cut", "map_cut", "recall", "P", "success")}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    names = {"ndcg": "ndcg_cut", "map": "map_cut", "recall": "recall", "precision": "P"}
    names["hit_rate"] = "success"
    assert set(scores.per_query) == set(reference)
    for qid, values in reference.items():
        for ours, theirs in names.items():
            for k in k_values:
                got = scores.per_query[qid][f"{ours}_at_{k}"]
                assert got == pytest.approx(values[f"{theirs}_{k}"], abs=1e-9)
    mrr = mteb_metrics.mrr(qrels, run, k_values)
    for k in k_values:
        got = [scores.per_query[qid][f"mrr_at_{k}"] for qid in run]
        assert got == pytest.approx(mrr[f"MRR@{k}"], abs=1e-9)


QRELS = {
    "q1": {"d1": 1, "d4": 1},
    "q2": {"d2": 2, "d3": 1, "d5": 0},
    "q3": {"d9": 1},
    "q4": {"d5": 0},
}
RUN = {
    # d1 and d3 tie with the relevant d1; pytrec_eval ranks by doc id descending on ties.
    "q1": {"d3": 0.9, "d1": 0.9, "d2": 0.5, "d4": 0.1},
    "q2": {"d5": 0.8, "d3": 0.8, "d2": 0.7, "d1": 0.2, "d4": 0.2},
    "q3": {"d1": 0.3, "d2": 0.2},
    "q4": {"d5": 0.99, "d1": 0.5},
}


def test_ties_multiple_relevant_and_graded_match_pytrec_eval_and_mteb() -> None:
    k_values = (1, 2, 3, 5)
    scores = assert_matches_mteb(QRELS, RUN, k_values)
    assert_per_query_matches_pytrec(QRELS, RUN, scores, k_values)
    # d3 outranks d1 on the tie, so q1's first relevant document is at rank 2.
    assert scores.per_query["q1"]["mrr_at_1"] == 0.0
    assert scores.per_query["q1"]["mrr_at_2"] == 0.5
    assert scores.metrics["accuracy"] == scores.metrics["recall_at_1"]


def test_default_k_values_beyond_the_retrieved_documents() -> None:
    scores = assert_matches_mteb(QRELS, RUN)
    assert_per_query_matches_pytrec(QRELS, RUN, scores, DEFAULT_K_VALUES)
    # Precision divides by k even when fewer documents were retrieved: 4 hits / 1000 / 4 queries.
    assert scores.metrics["precision_at_1000"] == 0.001
    assert scores.metrics["recall_at_1000"] == scores.metrics["recall_at_5"]
    assert set(scores.metrics) == {
        f"{name}_at_{k}"
        for name in ("ndcg", "map", "recall", "precision", "mrr", "hit_rate")
        for k in DEFAULT_K_VALUES
    } | {"accuracy"}


def test_rounding_follows_mteb() -> None:
    qrels = {f"q{i}": {"d1": 1} for i in range(3)}
    run = {"q0": {"d1": 1.0}, "q1": {"d2": 1.0, "d1": 0.5}, "q2": {"d2": 1.0, "d3": 0.9}}
    scores = assert_matches_mteb(qrels, run, (1, 3))
    assert scores.metrics["hit_rate_at_3"] == 0.66667
    assert scores.metrics["mrr_at_3"] == 0.5
    assert scores.metrics["recall_at_1"] == 0.33333
    assert scores.metrics["mrr_at_1"] == 1 / 3
    assert scores.per_query["q1"]["ndcg_at_3"] == pytest.approx(1 / np.log2(3), abs=1e-12)


def test_per_query_means_give_the_aggregate() -> None:
    scores = retrieval_scores(QRELS, RUN, (1, 3))
    for key, value in scores.metrics.items():
        mean = sum(q[key] for q in scores.per_query.values()) / len(scores.per_query)
        assert value == (mean if key.startswith(UNROUNDED) else round(mean, 5))


@pytest.mark.parametrize("order", [("d2", "d1"), ("d1", "d2")])
def test_skip_first_result_drops_the_first_inserted_of_the_tied_best(order) -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d7": 1}}
    run = {
        "q1": {order[0]: 1.0, order[1]: 1.0, "d3": 0.5},
        "q2": {"q2": 0.9, "d7": 0.8, "d8": 0.1},
    }
    scores = assert_matches_mteb(qrels, run, (1, 3), skip_first_result=True)
    # The dropped document is the first inserted, not the first by doc id.
    assert scores.per_query["q1"]["recall_at_1"] == (1.0 if order[0] == "d2" else 0.0)
    assert scores.per_query["q2"]["mrr_at_1"] == 1.0


def test_ignore_identical_ids_with_and_without_skip_first_result() -> None:
    qrels = {"a": {"a": 1, "b": 1}, "b": {"c": 1}, "c": {"b": 1}}
    run = {
        "a": {"a": 1.0, "c": 0.7, "b": 0.6},
        "b": {"b": 1.0, "c": 0.9, "a": 0.8},
        "c": {"c": 1.0, "a": 0.5, "b": 0.5},
    }
    for skip in (False, True):
        assert_matches_mteb(
            qrels, run, (1, 2, 3), ignore_identical_ids=True, skip_first_result=skip
        )
    kept = retrieval_scores(qrels, run, (1, 2))
    ignored = retrieval_scores(qrels, run, (1, 2), ignore_identical_ids=True)
    assert kept.per_query["a"]["mrr_at_1"] == 1.0
    assert ignored.per_query["a"]["mrr_at_1"] == 0.0


def test_queries_without_positives_are_dropped_like_mteb() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {}, "q3": {"d2": 0}, "q4": {"d3": 1}}
    queries = datasets.Dataset.from_dict({"id": ["q1", "q2", "q3", "q4"]})
    expected_qrels, kept = _filter_queries_without_positives(copy.deepcopy(qrels), queries)
    ours = drop_queries_without_positives(qrels)
    assert ours == expected_qrels
    assert list(ours) == list(kept["id"]) == ["q1", "q3", "q4"]

    run = {qid: {"d1": 0.9, "d2": 0.5, "d3": 0.4} for qid in ours}
    assert_matches_mteb(ours, run, (1, 3))
    with pytest.raises(ValueError, match="drop_queries_without_positives"):
        retrieval_scores(qrels, {**run, "q2": {"d1": 0.3}}, (1, 3))


def test_qrels_of_queries_missing_from_the_run_are_ignored_like_mteb() -> None:
    qrels = {**QRELS, "q9": {"d1": 1}}
    assert_matches_mteb(qrels, RUN, (1, 3))


def test_empty_ranking_counts_as_a_miss() -> None:
    run = {**RUN, "q3": {}}
    scores = assert_matches_mteb(QRELS, run, (1, 3), skip_first_result=True)
    assert scores.per_query["q3"]["ndcg_at_3"] == 0.0


@pytest.mark.parametrize("k_values", [(), (0, 1), (1, 1)])
def test_bad_k_values_are_rejected(k_values) -> None:
    with pytest.raises(ValueError, match="k values"):
        retrieval_scores(QRELS, RUN, k_values)


def test_accuracy_only_with_k_1() -> None:
    assert "accuracy" not in retrieval_scores(QRELS, RUN, (3, 5)).metrics


def test_inputs_are_not_modified() -> None:
    run = copy.deepcopy(RUN)
    retrieval_scores(QRELS, run, (1, 3), skip_first_result=True, ignore_identical_ids=True)
    assert run == RUN


def random_case(seed: int, n_queries: int, n_docs: int):
    """Random graded qrels and runs with coarse scores, so that ties are common."""
    rng = np.random.default_rng(seed)
    doc_ids = [f"doc{rng.integers(10**6)}-{i}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"query{q}"
        relevant = rng.choice(n_docs, size=rng.integers(1, 8), replace=False)
        qrels[qid] = {doc_ids[j]: int(rng.integers(0, 3)) for j in relevant}
        retrieved = rng.choice(n_docs, size=rng.integers(0, 60), replace=False)
        run[qid] = {doc_ids[j]: float(rng.integers(0, 20)) / 10 for j in retrieved}
    return qrels, run


@pytest.mark.parametrize("options", [{}, {"skip_first_result": True}])
def test_randomized_against_pytrec_eval_and_mteb(options) -> None:
    qrels, run = random_case(seed=7, n_queries=300, n_docs=200)
    k_values = (1, 3, 5, 10, 20, 100)
    scores = assert_matches_mteb(qrels, run, k_values, **options)
    if not options:
        assert_per_query_matches_pytrec(qrels, run, scores, k_values)
    assert 0.0 < scores.metrics["ndcg_at_10"] < 1.0


def test_end_to_end_search_matches_mteb_on_a_full_cosine_matrix() -> None:
    rng = np.random.default_rng(3)
    queries = rng.standard_normal((40, 24)).astype(np.float32)
    corpus = rng.standard_normal((1500, 24)).astype(np.float32)
    query_ids = [f"q{i}" for i in range(len(queries))]
    corpus_ids = [f"c{i}" for i in range(len(corpus))]
    qrels = {
        qid: {corpus_ids[j]: int(rng.integers(1, 3)) for j in rng.choice(1500, 3, replace=False)}
        for qid in query_ids
    }

    scores, indices = top_k_search(
        queries, corpus, 1000, query_chunk_size=16, corpus_chunk_size=256
    )
    ours = retrieval_scores(qrels, run_from_top_k(query_ids, corpus_ids, scores, indices))

    full = cos_sim(queries, corpus)
    values, top = torch.topk(full, 1000, dim=1)
    reference_run = {
        qid: {corpus_ids[j]: s for j, s in zip(top[i].tolist(), values[i].tolist(), strict=True)}
        for i, qid in enumerate(query_ids)
    }
    expected = mteb_scores(qrels, reference_run)
    assert ours.metrics == pytest.approx(expected, abs=1e-6, rel=0)
    assert ours.metrics["recall_at_1000"] < 1.0
