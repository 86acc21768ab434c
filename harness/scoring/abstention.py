"""Abstention nAUC: how well a confidence score of each query predicts its metric.

mteb reports these for retrieval-scored tasks (keys ``nauc_<metric>_<confidence>``), after
Gisserot-Boukhlef et al., https://arxiv.org/abs/2402.12997. A query's confidence comes from the
similarity scores of the documents it retrieved: the best score (``max``), their population
standard deviation (``std``) and the gap between the best two (``diff1``); a query that
retrieved nothing has confidence 0 on all three.

The abstention curve holds, at each abstention rate r (0, 0.1, ..., 0.9), the mean metric of
the queries left after abstaining on the round(r n) least confident ones (never all of them);
queries of equal confidence count with the mean metric of their group, the expected value
under random tie-breaking. The oracle curve abstains on the lowest metrics first, the flat
curve never improves on abstaining on none. nAUC places the area under the abstention curve
between the flat area (0) and the oracle area (1); it is NaN where the two are equal (every
query with the same metric, or a single query).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

ABSTENTION_RATES = np.linspace(0, 1, 11)[:-1]
CONFIDENCE_NAMES = ("max", "std", "diff1")


def confidence_scores(similarities: Iterable[float]) -> dict[str, float]:
    """The three confidence scores of one query, from its retrieved documents' similarities.

    The standard deviation is taken over the scores sorted best first, so that it does not
    depend on the order in which the documents were retrieved.
    """
    ranked = np.sort(np.asarray(list(similarities), dtype=np.float64))[::-1]
    if ranked.size == 0:
        return dict.fromkeys(CONFIDENCE_NAMES, 0.0)
    gap = float(ranked[0] - ranked[1]) if ranked.size > 1 else 0.0
    return {"max": float(ranked[0]), "std": float(np.std(ranked)), "diff1": gap}


def _abstention_curve(
    confidence: np.ndarray, metric: np.ndarray, rates: np.ndarray = ABSTENTION_RATES
) -> np.ndarray:
    """The mean metric of the queries kept at each abstention rate (least confident dropped
    first; ties in confidence share their group's mean metric)."""
    n = confidence.size
    if n == 0:
        return np.full(len(rates), np.nan)
    order = np.argsort(confidence, stable=True)
    ranked_confidence, ranked_metric = confidence[order], metric[order]
    starts = np.flatnonzero(np.r_[True, ranked_confidence[1:] != ranked_confidence[:-1]])
    sizes = np.diff(np.r_[starts, n])
    shared = np.repeat(np.add.reduceat(ranked_metric, starts) / sizes, sizes)
    dropped = [min(round(rate * n), n - 1) for rate in rates]
    return np.array([shared[count:].mean() for count in dropped])


def nauc(confidence: np.ndarray, metric: np.ndarray, rates: np.ndarray = ABSTENTION_RATES) -> float:
    """The normalised area under the abstention curve of ``metric`` ranked by ``confidence``
    (per query, same order); NaN when the oracle curve is flat."""
    raw = np.trapezoid(_abstention_curve(confidence, metric, rates), rates)
    oracle_curve = _abstention_curve(metric, metric, rates)
    oracle = np.trapezoid(oracle_curve, rates)
    flat = oracle_curve[0] * (rates[-1] - rates[0])
    if oracle == flat:
        return float("nan")
    return float((raw - flat) / (oracle - flat))


def abstention_naucs(
    similarities: Sequence[Iterable[float]], per_query: Mapping[str, Sequence[float]]
) -> dict[str, float]:
    """``nauc_<metric>_<confidence>`` for every metric of ``per_query`` (its values per query,
    in the order of ``similarities``, each query's retrieved documents' scores), metric by
    metric, confidence by confidence."""
    confidences = [confidence_scores(scores) for scores in similarities]
    by_name = {name: np.array([c[name] for c in confidences]) for name in CONFIDENCE_NAMES}
    naucs = {}
    for metric, values in per_query.items():
        if len(values) != len(confidences):
            raise ValueError(
                f"{metric}: {len(values)} per-query values for {len(confidences)} queries"
            )
        array = np.asarray(values, dtype=np.float64)
        for name, confidence in by_name.items():
            naucs[f"nauc_{metric}_{name}"] = nauc(confidence, array)
    return naucs
