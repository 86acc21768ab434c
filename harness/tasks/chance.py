"""Chance levels: the exact expected main score of uniform random guessing.

A task type records, per subset it scored, what its main score is expected to be when every
guess is uniformly random (a label drawn uniformly from the offered ones, a ranking drawn
uniformly from all orders, similarity scores drawn independently from one continuous law), on
the very data it scored. Only closed forms that are exact for the scored data are given here;
a metric without one (macro F1, MRR, LRAP, V-measure, NMI, the best of several rankings' AP...)
has none.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from fractions import Fraction
from math import factorial, fsum, log2

# Expected Pearson or Spearman correlation of the gold scores with similarities drawn
# independently from one continuous law: the draws are exchangeable, so each centred,
# normalised draw (or rank) has the same expectation, and these sum to zero; hence 0 exactly.
CORRELATION_CHANCE = 0.0


def uniform_guess(classes: Iterable[Hashable]) -> float:
    """Expected accuracy of guessing uniformly among the distinct ``classes``, every item's
    true label being one of them: ``1 / number of classes``, whatever their frequencies."""
    count = len(set(classes))
    if count == 0:
        raise ValueError("no classes to guess among")
    return 1.0 / count


def random_ranking(
    metric: str, pool_size: int, pool_relevance: Sequence[int], judged_relevance: Sequence[int]
) -> float | None:
    """Expected value of one query's retrieval metric when its pool of ``pool_size`` documents
    is ranked in uniformly random order, as pytrec_eval scores the ranking (a document counts as
    relevant from relevance 1; nDCG's gain is the relevance, its ideal ranking is of every
    judgment). ``metric`` is ``<name>_at_<k>`` or ``accuracy`` (recall@1); ``pool_relevance``
    holds the judgments of the pool's documents, ``judged_relevance`` all the query's. None for
    MRR and any metric not named here, or for negative judgments.

    With ``m = min(k, N)`` places and ``R`` relevant documents in the pool of ``N`` (``R_all``
    judged), each place holds a relevant document with probability ``R / N``: recall is
    ``R m / N / R_all``, precision ``R m / N / k``, hit rate ``1 - C(N - R, m) / C(N, m)``,
    nDCG the pool's mean gain times the discounts of the ``m`` places over the ideal DCG, and
    MAP ``R / N / R_all (H_m + (R - 1) / (N - 1) (m - H_m))``, since the precision at a relevant
    place ``i`` averages ``(1 + (i - 1) (R - 1) / (N - 1)) / i``.
    """
    name, k = ("recall", 1) if metric == "accuracy" else _metric_at(metric)
    if name not in _RANKING_METRICS or min((*pool_relevance, *judged_relevance), default=0) < 0:
        return None
    n, places = pool_size, min(k, pool_size)
    relevant = sum(1 for relevance in pool_relevance if relevance >= 1)
    relevant_all = sum(1 for relevance in judged_relevance if relevance >= 1)
    if n == 0 or relevant == 0:
        return 0.0
    share = relevant / n  # the chance that a given place holds a relevant document
    if name == "recall":
        return share * places / relevant_all
    if name == "precision":
        return share * places / k
    if name == "hit_rate":
        miss = 1.0
        for i in range(places):
            miss *= (n - relevant - i) / (n - i)
        return 1.0 - miss
    if name == "ndcg":
        ideal = sorted(judged_relevance, reverse=True)[:k]
        ideal_dcg = fsum(gain / log2(i + 2) for i, gain in enumerate(ideal))
        discounts = fsum(1 / log2(i + 2) for i in range(places))
        return fsum(pool_relevance) / n * discounts / ideal_dcg
    harmonic = fsum(1 / i for i in range(1, places + 1))
    later = (relevant - 1) / (n - 1) * (places - harmonic) if n > 1 else 0.0
    return share / relevant_all * (harmonic + later)


_RANKING_METRICS = ("ndcg", "map", "recall", "precision", "hit_rate")


def _metric_at(metric: str) -> tuple[str, int]:
    """``ndcg_at_10`` as ``("ndcg", 10)``; a name without a cutoff as ``(name, 0)``."""
    name, _, k = metric.rpartition("_at_")
    return (name, int(k)) if name and k.isdigit() and int(k) > 0 else (metric, 0)


def matching_chance(metric: str, n_images: int, n_texts: int) -> float:
    """Expected ``text_acc``, ``image_acc`` or ``accuracy`` (group) of samples of ``n_images``
    images and ``n_texts`` captions (image i belongs with caption i) when every image-caption
    similarity is an independent draw from one continuous law (ties have probability 0).

    Each image's best caption is uniform: ``text_acc`` is ``(1 / T) ** I`` (0 when an image
    has no caption of its index, I > T); ``image_acc`` likewise ``(1 / I) ** T``. The group
    score needs I == T == n and every off-diagonal similarity below both diagonal entries of
    its row and column; with the diagonal's order statistics ``x_1 < ... < x_n`` that has
    probability ``n! ∫ ∏ x_k ** (2 (n - k))``, integrated in closed form (Winoground's 2 x 2:
    text 1/4, image 1/4, group 1/6).
    """
    if n_images < 1 or n_texts < 1:
        raise ValueError(f"a sample needs images and captions, got {n_images} and {n_texts}")
    if metric == "text_acc":
        return float(Fraction(1, n_texts) ** n_images) if n_images <= n_texts else 0.0
    if metric == "image_acc":
        return float(Fraction(1, n_images) ** n_texts) if n_texts <= n_images else 0.0
    if metric != "accuracy":
        raise ValueError(f"unknown compositionality metric {metric!r}")
    if n_images != n_texts:
        return 0.0
    n, total, chance = n_images, 0, Fraction(factorial(n_images))
    for k in range(1, n + 1):
        total += 2 * (n - k) + 1  # the exponent of x_k, plus one for integrating it
        chance /= total
    return float(chance)


def expected_average_precision(n_positive: int, n_total: int) -> float:
    """Expected (non-interpolated, scikit-learn's) average precision of a uniformly random
    ranking of ``n_total`` items of which ``n_positive`` are positive:
    ``(R - 1) / (N - 1) + (N - R) H_N / (N (N - 1))`` (``H_N`` the N-th harmonic number); it
    tends to the positive rate ``R / N`` as N grows, and is 1 when every item is positive."""
    if not 0 < n_positive <= n_total:
        raise ValueError(f"need 0 < positives <= items, got {n_positive} of {n_total}")
    if n_total == 1:
        return 1.0
    n, r = n_total, n_positive
    harmonic = fsum(1 / i for i in range(1, n + 1))
    return (r - 1) / (n - 1) + (n - r) / (n * (n - 1)) * harmonic
