"""Image clustering scored as mteb's legacy clustering scores it: one MiniBatchKMeans run.

k is the number of distinct labels among the clustered items; the fit uses
``MiniBatchKMeans(n_clusters=k, batch_size=500, n_init="auto", compute_labels=True,
random_state=42)``, once (no repeated runs, no bootstrap). The metrics compare the true labels
with the cluster ids: V-measure, NMI, ARI, and cluster accuracy (the best one-to-one matching of
clusters to labels, by the Hungarian algorithm, divided by the number of items).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

KMEANS_BATCH_SIZE = 500
KMEANS_SEED = 42
FitDtype = Literal["float64", "float32"]
METRIC_KEYS = ("v_measure", "nmi", "ari", "cluster_accuracy")


def cluster_assignments(
    embeddings: np.ndarray,
    n_clusters: int,
    *,
    batch_size: int = KMEANS_BATCH_SIZE,
    seed: int = KMEANS_SEED,
    fit_dtype: FitDtype = "float64",
) -> np.ndarray:
    """The cluster id of every row of ``embeddings`` after one MiniBatchKMeans fit.

    ``fit_dtype`` is the array type the fit sees: scikit-learn fits a float32 array in float32
    but the torch tensors of mteb's CLIP-style wrappers in float64, and the two can differ.
    """
    x = np.asarray(embeddings, dtype=np.dtype(fit_dtype))
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"embeddings must be a non-empty (n, d) matrix, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    if not 1 <= n_clusters <= len(x):
        raise ValueError(f"cannot make {n_clusters} clusters of {len(x)} items")
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(
        n_clusters=n_clusters,
        batch_size=batch_size,
        n_init="auto",
        compute_labels=True,
        random_state=seed,
    )
    return model.fit(x).labels_


def clustering_metrics(
    labels: Sequence[Any], assignments: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """V-measure, NMI, ARI and Hungarian cluster accuracy, under mteb's key names."""
    from scipy.optimize import linear_sum_assignment
    from sklearn import metrics

    y_true = np.unique(np.asarray(labels), return_inverse=True)[1]
    y_pred = np.asarray(assignments)
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(f"{len(y_true)} labels and {len(y_pred)} cluster ids do not match")
    contingency = metrics.cluster.contingency_matrix(y_true, y_pred)
    rows, columns = linear_sum_assignment(contingency, maximize=True)
    return {
        "v_measure": float(metrics.cluster.v_measure_score(y_true, y_pred)),
        "nmi": float(metrics.cluster.normalized_mutual_info_score(y_true, y_pred)),
        "ari": float(metrics.cluster.adjusted_rand_score(y_true, y_pred)),
        "cluster_accuracy": float(contingency[rows, columns].sum() / len(y_true)),
    }
