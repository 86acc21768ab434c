"""Semantic textual similarity metrics computed the way mteb's STS evaluator computes them.

Each pair is scored by cosine similarity, negative Manhattan and negative Euclidean distance
(scikit-learn's paired distances, in the embeddings' dtype) and by the model's own similarity
(cosine or dot product, in float32 with torch's operations, so that pairs whose cosines round
alike rank alike). Pearson and Spearman correlations with the gold scores, normalised to
[0, 1] by the scale's minimum and maximum, come from scipy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.core import similarity as sim

SIMILARITIES = sim.SINGLE_VECTOR


def normalise_scores(scores: Sequence[float], min_score: float, max_score: float) -> list[float]:
    """Map gold scores from [min_score, max_score] to [0, 1], as mteb does."""
    if max_score <= min_score:
        raise ValueError(f"max_score ({max_score}) must exceed min_score ({min_score})")
    return [(float(score) - min_score) / (max_score - min_score) for score in scores]


def sts_scores(
    embeddings1: np.ndarray,
    embeddings2: np.ndarray,
    gold: Sequence[float],
    *,
    min_score: float = 0.0,
    max_score: float = 5.0,
    similarity: str = "cosine",
) -> dict[str, float]:
    """mteb's STS metrics for the pairs ``(embeddings1[i], embeddings2[i])`` and gold scores.

    Keys, in mteb's order: ``pearson`` and ``spearman`` (the model's ``similarity``),
    ``cosine_*``, ``manhattan_*`` and ``euclidean_*``. A correlation with a constant input is
    NaN, as in mteb (scipy warns).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; use one of {SIMILARITIES}")
    first, second = np.asarray(embeddings1), np.asarray(embeddings2)
    if first.ndim != 2 or first.shape != second.shape or len(first) != len(gold):
        raise ValueError(
            f"embeddings {first.shape} and {second.shape} and {len(gold)} gold scores "
            "do not describe the same pairs"
        )
    if len(gold) < 2:
        raise ValueError("correlations need at least two pairs")
    target = normalise_scores(gold, min_score, max_score)
    model_scores = sim.paired(first, second, similarity)
    metrics = dict(zip(("pearson", "spearman"), _correlations(target, model_scores), strict=True))
    for name in PAIR_SIMILARITIES:
        pearson, spearman = _correlations(target, pair_similarities(first, second, name))
        metrics |= {f"{name}_pearson": pearson, f"{name}_spearman": spearman}
    return metrics


PAIR_SIMILARITIES = ("cosine", "manhattan", "euclidean")


def pair_similarities(first: np.ndarray, second: np.ndarray, name: str) -> np.ndarray:
    """Each pair's similarity under mteb's ``cosine``, ``manhattan`` or ``euclidean`` scores
    (the two distances negated)."""
    from sklearn.metrics.pairwise import (
        paired_cosine_distances,
        paired_euclidean_distances,
        paired_manhattan_distances,
    )

    if name == "cosine":
        return 1 - paired_cosine_distances(first, second)
    if name == "manhattan":
        return -paired_manhattan_distances(first, second)
    if name == "euclidean":
        return -paired_euclidean_distances(first, second)
    raise ValueError(f"unknown pair similarity {name!r}; use one of {PAIR_SIMILARITIES}")


def _correlations(target: list[float], predicted: np.ndarray) -> tuple[float, float]:
    """(Pearson, Spearman) of the gold scores and the predictions, in float64."""
    from scipy.stats import pearsonr, spearmanr

    values = np.asarray(predicted, dtype=np.float64)
    return float(pearsonr(target, values)[0]), float(spearmanr(target, values)[0])
