"""Bootstrapped clustering equals mteb's AbsTaskClustering on the same embeddings."""

from __future__ import annotations

import random
from typing import Any

import datasets
import numpy as np
import pytest

from harness.scoring.clustering_fast import (
    METRIC_KEYS,
    bootstrap_clustering,
    embedded_rows,
)

mteb = pytest.importorskip("mteb")
from mteb.timing import TimingStack  # noqa: E402

# An AbsTaskClustering task with a text column; MAEB's AudioClustering tasks use the same class.
REFERENCE_TASK = "BlurbsClusteringS2S.v2"


class RowModel:
    """An mteb encoder whose input texts are row numbers: it returns those rows' vectors."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.mteb_model_meta = None

    def encode(self, inputs: Any, **_: Any) -> np.ndarray:
        rows = [int(text) for batch in inputs for text in batch["text"]]
        return self.vectors[rows]

    def similarity(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        raise NotImplementedError


def mteb_scores(vectors: np.ndarray, labels: list[Any], **settings: Any) -> dict[str, Any]:
    """mteb's ``_evaluate_subset`` with the task's constants overridden by ``settings``."""
    task = mteb.get_task(REFERENCE_TASK)
    task.max_document_to_embed = None
    for name, value in settings.items():
        setattr(task, name, value)
    data = datasets.Dataset.from_dict(
        {"sentences": [str(row) for row in range(len(labels))], "labels": labels}
    )
    return dict(
        task._evaluate_subset(
            RowModel(vectors),
            data,
            hf_split="test",
            hf_subset="default",
            encode_kwargs={"batch_size": 32},
            timer=TimingStack(),
        )
    )


def clustered_data(seed: int, n: int = 90, classes: int = 4) -> tuple[np.ndarray, list[int]]:
    """Random vectors around one centre per class, so the clusters are findable."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, 12)) * 2
    vectors = (centres[labels] + rng.normal(size=(n, 12))).astype(np.float32)
    return vectors, labels.tolist()


def ours(
    vectors: np.ndarray, labels: list[Any], fraction: float | None, **settings: Any
) -> dict[str, Any]:
    rng = random.Random(42)
    rows = embedded_rows(len(labels), rng, max_fraction=fraction)
    if rows is not None:
        vectors, labels = vectors[rows], [labels[row] for row in rows]
    return bootstrap_clustering(vectors, labels, rng, **settings).metrics()


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_mteb_as_maeb_runs_it(seed: int) -> None:
    """Every item embedded (MAEB's setting), samples larger than the data, drawn with
    replacement."""
    vectors, labels = clustered_data(seed)
    reference = mteb_scores(
        vectors, labels, max_fraction_of_documents_to_embed=None, max_documents_per_cluster=200
    )
    result = ours(vectors, labels, None, sample_size=200)
    assert max(abs(result[k] - reference[k]) for k in METRIC_KEYS) < 1e-6
    assert result["v_measures"] == reference["v_measures"]
    assert result["ami_scores"] == reference["ami_scores"]
    assert result["v_measure"] > 0.3


def test_equals_mteb_with_a_downsampled_corpus_and_string_labels() -> None:
    """mteb's default fraction draws the embedded rows from the same stream first."""
    vectors, codes = clustered_data(3, n=400)
    labels = [f"class-{code}" for code in codes]
    settings = {"n_clusters": 4, "max_documents_per_cluster": 64}
    reference = mteb_scores(vectors, labels, max_fraction_of_documents_to_embed=0.5, **settings)
    result = ours(vectors, labels, 0.5, n_experiments=4, sample_size=64)
    assert max(abs(result[k] - reference[k]) for k in METRIC_KEYS) < 1e-6
    assert len(result["v_measures"]["Level 0"]) == 4


def test_embedded_rows() -> None:
    assert embedded_rows(10, random.Random(0), max_fraction=None) is None
    assert len(embedded_rows(10, random.Random(0), max_fraction=None, max_documents=20) or []) == 10
    assert len(embedded_rows(100, random.Random(0)) or []) == 4
    with pytest.raises(ValueError, match="not both"):
        embedded_rows(10, random.Random(0), max_fraction=0.5, max_documents=3)


def test_refuses_mismatched_or_non_finite_embeddings() -> None:
    vectors = np.ones((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="do not match"):
        bootstrap_clustering(vectors, [0, 1], random.Random(0))
    vectors[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_clustering(vectors, [0, 1, 1], random.Random(0))
