"""Pair classification scored as mteb's ``AbsTaskPairClassification`` scores it.

Each pair ``(first[i], second[i])`` with a 0/1 label is scored five ways, in mteb's order:
``similarity`` (the model's own similarity, through ``harness.core.similarity``), ``cosine``,
``manhattan`` and ``euclidean`` (scikit-learn's paired distances, negated, so that a higher
score always means more similar) and ``dot``. For each score the metrics are:

- ``accuracy``: the best accuracy of a threshold between two consecutive distinct scores;
- ``f1``, ``precision``, ``recall``: those of the threshold with the best F1, the pairs above
  it predicted positive;
- ``ap``: scikit-learn's average precision of the scores.

A threshold never splits tied scores. ``max_<metric>`` is the best of the five scores' values;
mteb's MAEB tasks report ``max_ap`` as the main score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.core import similarity as sim
from harness.scoring.sts import pair_similarities

PAIR_SCORES = ("similarity", "cosine", "manhattan", "euclidean", "dot")
PAIR_METRICS = ("accuracy", "f1", "precision", "recall", "ap")
METRIC_KEYS = tuple(
    [f"{score}_{metric}" for score in PAIR_SCORES for metric in PAIR_METRICS]
    + [f"max_{metric}" for metric in PAIR_METRICS]
)


def pair_scores(first: np.ndarray, second: np.ndarray, similarity: str) -> dict[str, np.ndarray]:
    """Each pair's score under each of ``PAIR_SCORES`` (higher: more similar); ``similarity``
    is the model's (cosine or dot)."""
    sim.check(similarity, sim.SINGLE_VECTOR)
    scores = {"similarity": sim.paired(first, second, similarity)}
    for name in ("cosine", "manhattan", "euclidean"):
        scores[name] = pair_similarities(first, second, name)
    scores["dot"] = sim.paired(first, second, sim.DOT)
    return scores


def pair_classification_scores(
    embeddings1: np.ndarray,
    embeddings2: np.ndarray,
    labels: Sequence[int],
    *,
    similarity: str = sim.COSINE,
) -> dict[str, float]:
    """mteb's pair classification metrics (``METRIC_KEYS``) of the pairs and 0/1 labels."""
    first, second = np.asarray(embeddings1), np.asarray(embeddings2)
    gold = np.asarray(labels, dtype=np.int64)
    if first.ndim != 2 or first.shape != second.shape or len(first) != len(gold):
        raise ValueError(
            f"embeddings {first.shape} and {second.shape} and {len(gold)} labels "
            "do not describe the same pairs"
        )
    if len(gold) == 0 or not np.isin(gold, (0, 1)).all():
        raise ValueError("pair classification needs at least one pair and labels 0 or 1")
    metrics: dict[str, float] = {}
    for name, scores in pair_scores(first, second, similarity).items():
        for metric, value in threshold_metrics(scores, gold).items():
            metrics[f"{name}_{metric}"] = value
    for metric in PAIR_METRICS:
        metrics[f"max_{metric}"] = max(metrics[f"{name}_{metric}"] for name in PAIR_SCORES)
    return metrics


def threshold_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Best-threshold accuracy, best-F1 F1/precision/recall, and average precision of one
    score (higher: more similar) against 0/1 labels."""
    from sklearn.metrics import average_precision_score

    values = [float(score) for score in scores]
    # A stable sort, highest score first: tied pairs keep their row order.
    order = sorted(range(len(values)), key=lambda row: values[row], reverse=True)
    ranked = [values[row] for row in order]
    positives = np.asarray(labels)[order]
    # Cuts after position i (0-based), where the next score differs.
    cuts = [i for i in range(len(ranked) - 1) if ranked[i] != ranked[i + 1]]
    hits = np.cumsum(positives)
    negatives_left = int((labels == 0).sum()) - (np.arange(1, len(ranked) + 1) - hits)
    accuracy = max(((hits[i] + negatives_left[i]) / len(ranked) for i in cuts), default=0.0)
    best = (0.0, 0.0, 0.0)
    total = int(labels.sum())
    for i in cuts:
        if hits[i] > 0:
            precision, recall = hits[i] / (i + 1), hits[i] / total
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best[0]:
                best = (f1, precision, recall)
    ap = average_precision_score(labels, np.asarray(scores))
    return {
        "accuracy": float(accuracy),
        "f1": float(best[0]),
        "precision": float(best[1]),
        "recall": float(best[2]),
        "ap": float(ap),
    }
