"""Retrieval metrics computed the way mteb computes them.

nDCG, MAP, recall, precision and hit rate come from pytrec_eval (measures ``ndcg_cut``,
``map_cut``, ``recall``, ``P`` and ``success``). pytrec_eval ranks each query's run by
(score, doc id), both descending; MRR@k uses the same order and counts a document as relevant
when its qrel is above 0. mteb's abstention nAUC of nDCG, MAP, recall, precision and MRR at
each k comes from ``harness.scoring.abstention``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.scoring.abstention import abstention_naucs

DEFAULT_K_VALUES = (1, 3, 5, 10, 20, 100, 1000)

# Our metric prefix -> pytrec_eval measure, in the order mteb reports the metrics.
_PYTREC_MEASURES = {
    "ndcg": "ndcg_cut",
    "map": "map_cut",
    "recall": "recall",
    "precision": "P",
    "hit_rate": "success",
}
# The metrics mteb reports the abstention nAUC of, in its order.
_NAUC_METRICS = ("ndcg", "map", "recall", "precision", "mrr")
_ROUND_DIGITS = 5

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class RetrievalScores:
    """Aggregate metrics under mteb's key names, the unrounded values of every query, and
    mteb's abstention nAUCs (``nauc_<metric>_at_<k>_<confidence>``, unrounded, NaN where
    undefined)."""

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    naucs: dict[str, float]

    def score_dict(self) -> dict[str, float]:
        """Every metric in mteb's key order: the nAUCs after MRR, before hit rate."""
        hit_rate = {key: v for key, v in self.metrics.items() if key.startswith("hit_rate_")}
        rest = {key: v for key, v in self.metrics.items() if key not in hit_rate}
        return {**rest, **self.naucs, **hit_rate}


def retrieval_scores(
    qrels: Qrels,
    run: Run,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    *,
    skip_first_result: bool = False,
    ignore_identical_ids: bool = False,
) -> RetrievalScores:
    """Score a run against qrels exactly as mteb's retrieval evaluator does.

    Every query of the run must have a non-empty qrels entry (see
    drop_queries_without_positives); qrels of queries absent from the run are ignored, as in
    mteb. Metrics are ``{ndcg,map,recall,precision,mrr,hit_rate}_at_{k}`` for every k, plus
    ``accuracy`` (recall@1) when 1 is among the k values. The aggregate is the mean over the
    run's queries; like mteb, all but MRR are rounded to 5 decimals. per_query is unrounded.
    naucs rank the queries by confidence scores from their documents' scores (after the two
    options below), as mteb does.

    ignore_identical_ids drops documents whose id equals the query id. skip_first_result then
    drops each query's best document: among documents tied at the best score, the first in the
    run's insertion order (mteb's stable sort by score alone).
    """
    k_values = _check_k_values(k_values)
    run = _prepare_run(qrels, run, skip_first_result, ignore_identical_ids)
    pytrec = _pytrec_scores(qrels, run, k_values)
    mrr = {qid: _mrr(qrels[qid], docs, k_values) for qid, docs in run.items()}
    per_query = {qid: _per_query(pytrec[qid], mrr[qid], k_values) for qid in run}
    naucs = abstention_naucs(
        [docs.values() for docs in run.values()],
        {
            name: [values[name] for values in per_query.values()]
            for name in (f"{metric}_at_{k}" for metric in _NAUC_METRICS for k in k_values)
        },
    )
    return RetrievalScores(metrics=_aggregate(per_query), per_query=per_query, naucs=naucs)


def drop_queries_without_positives(qrels: Qrels) -> dict[str, dict[str, int]]:
    """Drop the queries whose qrels are empty, as mteb does before searching.

    Like mteb, a query whose judged documents are all non-relevant (qrel 0) is kept.
    """
    return {qid: dict(docs) for qid, docs in qrels.items() if len(docs) > 0}


def _check_k_values(k_values: Sequence[int]) -> tuple[int, ...]:
    k_values = tuple(k_values)
    if not k_values or any(k < 1 for k in k_values) or len(set(k_values)) != len(k_values):
        raise ValueError(f"k values must be distinct positive integers, got {k_values}")
    return k_values


def _prepare_run(
    qrels: Qrels, run: Run, skip_first_result: bool, ignore_identical_ids: bool
) -> dict[str, dict[str, float]]:
    """Check the run against the qrels and apply mteb's two run options, in mteb's order."""
    if not run:
        raise ValueError("the run has no queries")
    unjudged = [qid for qid in run if not qrels.get(qid)]
    if unjudged:
        raise ValueError(
            f"{len(unjudged)} run queries (e.g. {unjudged[0]!r}) have no qrels; "
            "drop them with drop_queries_without_positives and search only the kept queries"
        )
    prepared = {}
    for qid, docs in run.items():
        scores = {
            doc: float(s) for doc, s in docs.items() if not (ignore_identical_ids and doc == qid)
        }
        if skip_first_result and scores:
            del scores[max(scores, key=scores.__getitem__)]
        prepared[qid] = scores
    return prepared


def _pytrec_scores(
    qrels: Qrels, run: dict[str, dict[str, float]], k_values: tuple[int, ...]
) -> dict[str, dict[str, float]]:
    """pytrec_eval's per-query measures; it returns every query of a checked run."""
    import pytrec_eval

    cutoffs = ",".join(str(k) for k in k_values)
    measures = {f"{measure}.{cutoffs}" for measure in _PYTREC_MEASURES.values()}
    judged = {qid: dict(qrels[qid]) for qid in run}
    return pytrec_eval.RelevanceEvaluator(judged, measures).evaluate(run)


def _mrr(
    qrels: Mapping[str, int], docs: Mapping[str, float], k_values: tuple[int, ...]
) -> dict[str, float]:
    """Reciprocal rank of the first relevant document, cut at each k."""
    relevant = [(s, doc) for doc, s in docs.items() if qrels.get(doc, 0) > 0]
    if not relevant:
        return {f"mrr_at_{k}": 0.0 for k in k_values}
    best = max(relevant)
    rank = 1 + sum((s, doc) > best for doc, s in docs.items())
    return {f"mrr_at_{k}": 1.0 / rank if rank <= k else 0.0 for k in k_values}


def _per_query(
    pytrec: Mapping[str, float], mrr: Mapping[str, float], k_values: tuple[int, ...]
) -> dict[str, float]:
    """One query's metrics under mteb's names, in mteb's key order."""
    values: dict[str, float] = {}
    for name, measure in _PYTREC_MEASURES.items():
        values |= {f"{name}_at_{k}": pytrec[f"{measure}_{k}"] for k in k_values}
        if name == "recall" and 1 in k_values:
            values["accuracy"] = values["recall_at_1"]
        if name == "precision":
            values |= mrr
    return values


def metric_names(k_values: Sequence[int]) -> tuple[str, ...]:
    """The names of the metrics ``retrieval_scores`` reports for ``k_values`` as means over
    queries (a main score names one of them; the nAUCs are not among them)."""
    names = [f"{name}_at_{k}" for name in (*_PYTREC_MEASURES, "mrr") for k in k_values]
    return (*names, *(("accuracy",) if 1 in k_values else ()))


def _aggregate(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """mteb's aggregate: a plain sum in query order over the number of queries.

    pytrec_eval returns its queries in run order, so the sums run in mteb's order. All metrics
    but MRR are rounded to 5 decimals, as in mteb.
    """
    first = next(iter(per_query.values()))
    metrics = {}
    for key in first:
        mean = sum(values[key] for values in per_query.values()) / len(per_query)
        metrics[key] = mean if key.startswith("mrr_at_") else round(mean, _ROUND_DIGITS)
    return metrics
