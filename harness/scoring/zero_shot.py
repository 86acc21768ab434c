"""Zero-shot classification scored as mteb scores it: argmax over label prompts, then sklearn.

Score matrices are computed in float32 torch on the CPU with the same operations as mteb, so
that near-ties resolve as they do there:

- ``"similarity"``: the model's similarity of each input to each label prompt, ``cosine``
  (both sides L2-normalised, then a matrix product) or ``dot`` (the raw matrix product). mteb
  takes this path for tasks whose metadata lists the modalities as ``["text", "image"]``.
- ``"softmax"``: ``softmax(100 * cosine)`` over the labels of each input. mteb takes this path
  for tasks that list them as ``["image", "text"]``; argmax is nearly the same, but the binary
  ``ap`` ranks by the softmax probability of label 1, not by the raw similarity.

Predictions are the first label with the highest score (``argmax`` tie-breaking).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from harness.core import similarity as sim
from harness.scoring.classification import CLASSIFICATION_METRICS, prediction_metrics

LabelScoring = Literal["similarity", "softmax"]
SOFTMAX_SCALE = 100.0


def label_scores(
    inputs: np.ndarray,
    label_vectors: np.ndarray,
    *,
    scoring: LabelScoring = "similarity",
    similarity: str = "cosine",
) -> np.ndarray:
    """The (n_inputs, n_labels) score matrix of inputs against label prompt vectors."""
    a, b = _matrix(inputs, "inputs"), _matrix(label_vectors, "label vectors")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"inputs {a.shape} and labels {b.shape} differ in width")
    if scoring == "softmax":
        import torch

        logits = torch.from_numpy(sim.matrix(a, b, sim.COSINE))
        return (logits * SOFTMAX_SCALE).softmax(dim=-1).numpy()
    if scoring != "similarity":
        raise ValueError(f"unknown label scoring {scoring!r}; use 'similarity' or 'softmax'")
    return sim.matrix(a, b, similarity)


def ensemble_label_vectors(prompt_vectors: np.ndarray) -> np.ndarray:
    """CLIP-style prompt ensemble: (n_templates, n_labels, d) vectors -> (n_labels, d).

    Each prompt vector is L2-normalised, the templates of a label are averaged, and the mean is
    L2-normalised again.
    """
    import torch

    vectors = np.asarray(prompt_vectors, dtype=np.float32)
    if vectors.ndim != 3 or 0 in vectors.shape:
        raise ValueError(f"expected (n_templates, n_labels, d) vectors, got {vectors.shape}")
    return sim.normalise(sim.normalise(torch.from_numpy(vectors)).mean(dim=0)).numpy()


def predictions(scores: np.ndarray) -> np.ndarray:
    """The predicted label of each input: the first label with the highest score."""
    return np.asarray(scores).argmax(axis=1)


def zero_shot_metrics(labels: Sequence[int], scores: np.ndarray) -> dict[str, float | None]:
    """mteb's zero-shot metrics of true label indices against a score matrix.

    Accuracy and macro/weighted F1, precision and recall of the argmax predictions. ``ap`` and
    ``ap_weighted`` (average precision of the scores of label 1) only when the true labels take
    exactly two distinct values, as in mteb; otherwise ``None``. Where those two values do not
    include 1 (a subset of a multi-class split), mteb's call to scikit-learn raises; here the
    two are ``None``.
    """
    from sklearn import metrics

    y_true = np.asarray(labels)
    scores = np.asarray(scores)
    if scores.ndim != 2 or len(y_true) != len(scores) or len(y_true) == 0:
        raise ValueError(f"{len(y_true)} labels do not match a score matrix of {scores.shape}")
    values: dict[str, float | None] = {**prediction_metrics(y_true, predictions(scores))}
    values["ap"] = values["ap_weighted"] = None
    distinct = np.unique(y_true)
    if len(distinct) == 2 and 1 in distinct:
        positive = scores[:, 1]
        values["ap"] = float(metrics.average_precision_score(y_true, positive, average="macro"))
        values["ap_weighted"] = float(
            metrics.average_precision_score(y_true, positive, average="weighted")
        )
    return {key: values[key] for key in CLASSIFICATION_METRICS}


def _matrix(x: np.ndarray, what: str) -> np.ndarray:
    array = np.ascontiguousarray(x, dtype=np.float32)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{what} must be a non-empty (n, d) matrix, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return array
