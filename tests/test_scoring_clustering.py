"""Image clustering scores equal mteb's legacy clustering on the same embeddings."""

from __future__ import annotations

import io
from typing import Any

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from harness.scoring.clustering import METRIC_KEYS, cluster_assignments, clustering_metrics

mteb = pytest.importorskip("mteb")
from mteb.timing import TimingStack  # noqa: E402

REFERENCE_TASK = "CIFAR10Clustering"  # AbsTaskClusteringLegacy, modalities ["image"]


class ArrayModel:
    """An mteb encoder that returns one fixed array (as a torch tensor or a numpy array)."""

    def __init__(self, vectors: np.ndarray, as_tensor: bool) -> None:
        self.vectors = torch.from_numpy(vectors) if as_tensor else vectors
        self.mteb_model_meta = None

    def encode(self, inputs: Any, **kwargs: Any) -> Any:
        return self.vectors

    def similarity(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        raise NotImplementedError


def mteb_scores(vectors: np.ndarray, labels: list[int], as_tensor: bool) -> dict[str, float]:
    """mteb's CIFAR10Clustering ``_evaluate_subset`` on an encoder returning ``vectors``."""
    task = mteb.get_task(REFERENCE_TASK)
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PNG")
    image = {"bytes": buffer.getvalue(), "path": None}
    features = datasets.Features(
        {task.input_column_name: datasets.Image(), task.label_column_name: datasets.Value("int64")}
    )
    data = datasets.Dataset.from_dict(
        {task.input_column_name: [image] * len(labels), task.label_column_name: labels}, features
    )
    return task._evaluate_subset(
        ArrayModel(vectors, as_tensor),
        data,
        hf_split="test",
        hf_subset="default",
        encode_kwargs={},
        timer=TimingStack(),
    )


def ours(vectors: np.ndarray, labels: list[int], fit_dtype: str) -> dict[str, float]:
    assignments = cluster_assignments(vectors, len(set(labels)), fit_dtype=fit_dtype)  # type: ignore[arg-type]
    return clustering_metrics(labels, assignments)


def blobs(seed: int, n: int, k: int, d: int, spread: float) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    labels = rng.integers(0, k, n)
    vectors = centres[labels] + rng.normal(scale=spread, size=(n, d))
    return vectors.astype(np.float32), labels.tolist()


CASES = {
    "separated": lambda: blobs(0, 120, 4, 8, 0.1),
    "several-minibatches": lambda: blobs(2, 1300, 15, 24, 0.9),
    "sparse-label-ids": lambda: (blobs(3, 100, 5, 8, 0.8)[0], [7, 3, 11, 40, 2] * 20),
    "one-label": lambda: (blobs(4, 30, 3, 4, 1.0)[0], [5] * 30),
    # a large common offset: float32 distances lose precision and a few items change cluster
    "offset": lambda: (blobs(1, 200, 5, 8, 1.0)[0] + np.float32(100), blobs(1, 200, 5, 8, 1.0)[1]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(
    ("as_tensor", "fit_dtype"), [(True, "float64"), (False, "float32")], ids=["torch", "numpy"]
)
def test_matches_mteb(case: str, as_tensor: bool, fit_dtype: str) -> None:
    """mteb fits its CLIP wrappers' torch tensors in float64 and numpy float32 as float32."""
    vectors, labels = CASES[case]()
    reference = mteb_scores(vectors, labels, as_tensor)
    mine = ours(vectors, labels, fit_dtype)
    assert list(mine) == list(reference) == list(METRIC_KEYS)
    assert mine["cluster_accuracy"] == reference["cluster_accuracy"]
    for key in METRIC_KEYS:
        assert mine[key] == pytest.approx(reference[key], abs=1e-6, rel=0), key


def test_the_fit_dtype_can_change_the_clusters() -> None:
    """Why fit_dtype is a recorded protocol setting: float32 and float64 fits can disagree."""
    vectors, _ = CASES["offset"]()
    as64 = cluster_assignments(vectors, 5, fit_dtype="float64")
    as32 = cluster_assignments(vectors, 5, fit_dtype="float32")
    assert 0 < (as64 != as32).sum() < 10


def mteb_metrics(labels: list[Any], assignments: list[int]) -> dict[str, float]:
    return mteb.get_task(REFERENCE_TASK)._compute_metrics(labels, assignments)


@pytest.mark.parametrize(
    ("labels", "assignments"),
    [
        ([0, 0, 1, 1, 2, 2], [1, 1, 2, 2, 0, 0]),  # a perfect clustering, permuted ids
        ([0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 5]),  # more clusters than labels
        ([3, 3, 9, 9, 9, 4], [0, 0, 0, 0, 0, 0]),  # one cluster
        ([5, 6, 5, 6, 5, 6, 7, 7], [2, 2, 0, 0, 1, 1, 1, 0]),  # ids outside the label range
    ],
)
def test_metrics_match_mteb_on_given_assignments(labels: list[int], assignments: list[int]) -> None:
    reference = mteb_metrics(labels, assignments)
    mine = clustering_metrics(labels, assignments)
    assert mine["cluster_accuracy"] == reference["cluster_accuracy"]
    for key in METRIC_KEYS:
        assert mine[key] == pytest.approx(reference[key], abs=1e-12, rel=0), key


def test_cluster_accuracy_is_the_best_one_to_one_matching() -> None:
    # clusters 0 and 1 both hold mostly label "a"; only one of them may be matched to it
    labels = ["a", "a", "a", "a", "b", "c"]
    assignments = [0, 0, 1, 1, 1, 2]
    assert clustering_metrics(labels, assignments)["cluster_accuracy"] == pytest.approx(4 / 6)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="clusters"):
        cluster_assignments(np.ones((3, 2), np.float32), 4)
    with pytest.raises(ValueError, match="NaN"):
        cluster_assignments(np.full((3, 2), np.nan, np.float32), 2)
    with pytest.raises(ValueError, match="do not match"):
        clustering_metrics([0, 1], [0, 1, 1])
