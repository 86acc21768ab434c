"""Pair classification metrics against mteb's AbsTaskPairClassification on the same embeddings."""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import pytest

from harness.scoring.pair_classification import (
    METRIC_KEYS,
    pair_classification_scores,
    threshold_metrics,
)

mteb = pytest.importorskip("mteb")
from mteb.similarity_functions import pairwise_cos_sim, pairwise_dot_score  # noqa: E402
from mteb.timing import TimingStack  # noqa: E402

# An AbsTaskPairClassification task with text columns (the scoring does not depend on the
# modality; mteb's MAEB tasks use the same class with audio columns).
REFERENCE_TASK = "SprintDuplicateQuestions"


class QueuedModel:
    """Returns the first embeddings for mteb's first encode call, the second for its second."""

    def __init__(self, first: np.ndarray, second: np.ndarray, similarity: str) -> None:
        self.queue = [first, second]
        self.pairwise = pairwise_cos_sim if similarity == "cosine" else pairwise_dot_score
        self.mteb_model_meta = None

    def encode(self, inputs: Any, **_: Any) -> np.ndarray:
        return self.queue.pop(0)

    def similarity(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return self.pairwise(a, b)


def mteb_pair_scores(
    first: np.ndarray, second: np.ndarray, labels: list[int], similarity: str
) -> dict[str, float]:
    """mteb's ``_evaluate_subset`` of a pair classification task on the given vectors."""
    task = mteb.get_task(REFERENCE_TASK)
    n = len(labels)
    data = datasets.Dataset.from_dict(
        {"sentence1": ["a"] * n, "sentence2": ["b"] * n, "labels": labels}
    )
    return dict(
        task._evaluate_subset(
            QueuedModel(first, second, similarity),
            data,
            hf_split="test",
            hf_subset="default",
            encode_kwargs={"batch_size": 32},
            timer=TimingStack(),
        )
    )


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_mteb_on_random_embeddings(similarity: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    first = rng.normal(size=(n, 16)).astype(np.float32)
    labels = rng.integers(0, 2, n).tolist()
    # Positive pairs are closer, so the metrics are far from chance and thresholds matter.
    noise = rng.normal(size=(n, 16)).astype(np.float32)
    second = np.where(np.asarray(labels)[:, None] == 1, first + 0.8 * noise, noise)
    second = second.astype(np.float32)
    ours = pair_classification_scores(first, second, labels, similarity=similarity)
    reference = mteb_pair_scores(first, second, labels, similarity)
    assert set(ours) == set(METRIC_KEYS) == set(reference)
    assert max(abs(ours[k] - reference[k]) for k in METRIC_KEYS) < 1e-6
    assert 0.6 < ours["max_ap"] <= 1


def test_ties_are_never_split_by_a_threshold() -> None:
    """Tied scores sit on one side of any threshold: the row order cannot leak in."""
    scores = np.asarray([0.9, 0.5, 0.5, 0.1])
    swapped = threshold_metrics(scores, np.asarray([1, 0, 1, 0]))
    assert swapped == threshold_metrics(scores, np.asarray([1, 1, 0, 0]))
    assert swapped["accuracy"] == 0.75  # the cut between 0.9 and the tie, or after the tie


def test_equals_mteb_with_tied_scores() -> None:
    """Duplicated pairs give tied scores in every similarity."""
    rng = np.random.default_rng(5)
    base = rng.normal(size=(10, 8)).astype(np.float32)
    first, second = np.repeat(base, 3, axis=0), np.repeat(base[::-1], 3, axis=0)
    labels = rng.integers(0, 2, 30).tolist()
    ours = pair_classification_scores(first, second, labels)
    reference = mteb_pair_scores(first, second, labels, "cosine")
    assert max(abs(ours[k] - reference[k]) for k in METRIC_KEYS) < 1e-6


def test_refuses_labels_other_than_zero_and_one() -> None:
    vectors = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="labels 0 or 1"):
        pair_classification_scores(vectors, vectors, [0, 2])
    with pytest.raises(ValueError, match="same pairs"):
        pair_classification_scores(vectors, vectors[:1], [0, 1])
