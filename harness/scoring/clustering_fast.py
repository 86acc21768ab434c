"""Clustering scored as mteb's current ``AbsTaskClustering`` scores it (MAEB's AudioClustering).

Everything draws from one ``random.Random(seed)`` stream, in mteb's order:

1. optionally, the items to embed: ``rng.sample(range(n), k)`` with ``k`` from
   ``max_fraction_of_documents_to_embed`` (``int(fraction * n)``) or ``max_document_to_embed``
   (see :func:`embedded_rows`); MAEB's tasks embed every item;
2. ``n_experiments`` bootstrap samples of ``sample_size`` rows drawn with replacement
   (``rng.choices``), each clustered by ``MiniBatchKMeans(n_clusters=<distinct labels of all
   embedded items>, batch_size, init="k-means++", n_init=1, random_state=seed)`` and scored with
   V-measure and adjusted mutual information (see :func:`bootstrap_clustering`).

The scores are the means over the experiments, their (population) standard deviations, and the
per-experiment values under ``v_measures`` and ``ami_scores`` by level (``Level 0``: one label
per item).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

N_EXPERIMENTS = 10
SAMPLE_SIZE = 16_384
KMEANS_BATCH_SIZE = 512
SEED = 42
MAX_FRACTION_TO_EMBED = 0.04
FitDtype = Literal["float64", "float32"]
METRIC_KEYS = ("v_measure", "v_measure_std", "ami", "ami_std")
LEVEL = "Level 0"


@dataclass(frozen=True)
class BootstrapScores:
    """Each experiment's cluster ids and scores, and the summary metrics."""

    assignments: list[np.ndarray]
    v_measures: list[float]
    ami_scores: list[float]

    def metrics(self) -> dict[str, Any]:
        """mteb's score dict: means, standard deviations, and the per-experiment lists."""
        return {
            "v_measures": {LEVEL: list(self.v_measures)},
            "v_measure": float(np.mean(self.v_measures)),
            "v_measure_std": float(np.std(self.v_measures)),
            "ami_scores": {LEVEL: list(self.ami_scores)},
            "ami": float(np.mean(self.ami_scores)),
            "ami_std": float(np.std(self.ami_scores)),
        }


def embedded_rows(
    n: int,
    rng: random.Random,
    *,
    max_fraction: float | None = MAX_FRACTION_TO_EMBED,
    max_documents: int | None = None,
) -> list[int] | None:
    """The rows to embed, drawn from ``rng`` as mteb draws them; None when every row is."""
    if max_fraction is not None and max_documents is not None:
        raise ValueError("give max_fraction or max_documents, not both")
    if max_fraction is None and max_documents is None:
        return None
    k = int(max_fraction * n) if max_fraction is not None else int(max_documents or 0)
    return rng.sample(range(n), k=min(n, k))


def bootstrap_clustering(
    embeddings: np.ndarray,
    labels: Sequence[Any],
    rng: random.Random,
    *,
    n_experiments: int = N_EXPERIMENTS,
    sample_size: int = SAMPLE_SIZE,
    batch_size: int = KMEANS_BATCH_SIZE,
    seed: int = SEED,
    fit_dtype: FitDtype = "float32",
) -> BootstrapScores:
    """Cluster ``n_experiments`` bootstrap samples of the items and score each against the
    labels (one hashable label per item).

    ``fit_dtype`` is the array type the fit sees: scikit-learn fits a float32 numpy array (what
    mteb's audio wrappers return) in float32, and a torch tensor in float64.
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics.cluster import adjusted_mutual_info_score, v_measure_score

    x = np.asarray(embeddings, dtype=np.dtype(fit_dtype))
    gold = np.asarray(labels)
    if x.ndim != 2 or len(x) == 0 or len(x) != len(gold):
        raise ValueError(f"embeddings {x.shape} and {len(gold)} labels do not match")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    model = MiniBatchKMeans(
        n_clusters=np.unique(gold).size,
        batch_size=batch_size,
        init="k-means++",
        n_init=1,
        random_state=seed,
    )
    scores = BootstrapScores([], [], [])
    for _ in range(n_experiments):
        rows = rng.choices(range(len(x)), k=sample_size)
        assignment = model.fit_predict(x[rows])
        scores.assignments.append(assignment)
        scores.v_measures.append(float(v_measure_score(gold[rows], assignment)))
        scores.ami_scores.append(float(adjusted_mutual_info_score(gold[rows], assignment)))
    return scores
