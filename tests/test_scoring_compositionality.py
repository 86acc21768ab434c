"""Compositionality scores against mteb's evaluator and metric code on identical embeddings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import mteb
import numpy as np
import pytest
from mteb._evaluators import ImageTextPairClassificationEvaluator
from mteb.abstasks.image.image_text_pair_classification import (
    AbsTaskImageTextPairClassification,
)
from mteb.timing import TimingStack

from harness.scoring.compositionality import (
    correct_matches,
    cosine_similarities,
    pair_classification_scores,
)


class TableModel:
    """An mteb-side model returning given vectors: texts are "t<k>", images are the ints k."""

    def __init__(self, image_vectors: np.ndarray, text_vectors: np.ndarray) -> None:
        self.image_vectors, self.text_vectors = image_vectors, text_vectors

    def encode(self, inputs: Iterable[dict[str, list[Any]]], **_: Any) -> np.ndarray:
        rows = []
        for batch in inputs:
            if "text" in batch:
                rows += [self.text_vectors[int(text[1:])] for text in batch["text"]]
            else:
                rows += [self.image_vectors[index] for index in batch["image"]]
        return np.stack(rows)


def mteb_scores(images: np.ndarray, texts: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """mteb's evaluator and metrics on (n, I, d) image and (n, T, d) text vectors."""
    n, n_images, dim = images.shape
    n_texts = texts.shape[1]
    image_columns = tuple(f"image_{i}" for i in range(n_images))
    text_columns = tuple(f"text_{t}" for t in range(n_texts))
    rows = [
        {
            **{name: s * n_images + i for i, name in enumerate(image_columns)},
            **{name: f"t{s * n_texts + t}" for t, name in enumerate(text_columns)},
        }
        for s in range(n)
    ]
    evaluator = ImageTextPairClassificationEvaluator(
        rows,  # the evaluator only iterates rows and takes their length
        images_column_names=image_columns,
        texts_column_names=text_columns,
        num_images_per_sample=n_images,
        num_texts_per_sample=n_texts,
        task_metadata=mteb.get_task("Winoground").metadata,
        hf_split="test",
        hf_subset="default",
        timer=TimingStack(),
    )
    model = TableModel(images.reshape(-1, dim), texts.reshape(-1, dim))
    similarities = evaluator(model, encode_kwargs={"batch_size": 64})
    metrics = AbsTaskImageTextPairClassification._compute_metrics(
        None, similarities, n_images, n_texts
    )
    return dict(metrics), np.stack([s.numpy() for s in similarities])


def _vectors(rng: np.random.Generator, n: int, k: int, dim: int, kind: str) -> np.ndarray:
    if kind == "gaussian":  # rows of very different norms: cosine and dot product disagree
        vectors = rng.standard_normal((n, k, dim)) * rng.uniform(0.01, 100, (n, k, 1))
    elif kind == "signs":  # entries ±1 in 4 dimensions: exact, frequent ties
        vectors = rng.choice([-1.0, 1.0], size=(n, k, dim))
    else:  # "degenerate": zero vectors and NaNs among gaussian ones
        vectors = rng.standard_normal((n, k, dim))
        vectors[rng.random((n, k)) < 0.15] = 0.0
        vectors[rng.random((n, k)) < 0.05, 0] = np.nan
    return vectors.astype(np.float32)


CASES = [
    # (samples, images, texts, dim, kind)
    (200, 2, 2, 16, "gaussian"),  # Winoground
    (300, 1, 5, 16, "gaussian"),  # ARO-COCO/Flickr order
    (250, 1, 2, 8, "gaussian"),  # ARO relation/attribution, SugarCrepe
    (120, 10, 1, 16, "gaussian"),  # ImageCoDe
    (60, 3, 3, 8, "gaussian"),
    (40, 2, 3, 8, "gaussian"),  # a shape mteb accepts but no task uses
    (400, 2, 2, 4, "signs"),
    (400, 1, 5, 4, "signs"),
    (400, 10, 1, 4, "signs"),
    (300, 2, 2, 8, "degenerate"),
    (300, 1, 5, 8, "degenerate"),
    (7, 2, 2, 8, "gaussian"),  # a mean that float32 rounds (k / 7)
]


@pytest.mark.parametrize(("n", "n_images", "n_texts", "dim", "kind"), CASES)
def test_scores_equal_mteb(n: int, n_images: int, n_texts: int, dim: int, kind: str) -> None:
    rng = np.random.default_rng([n, n_images, n_texts, dim])
    images = _vectors(rng, n, n_images, dim, kind)
    texts = _vectors(rng, n, n_texts, dim, kind)
    expected, expected_similarities = mteb_scores(images, texts)
    similarities = cosine_similarities(images, texts)
    np.testing.assert_allclose(similarities, expected_similarities, atol=1e-6)
    assert pair_classification_scores(similarities) == expected


def test_ties_decide_like_mteb_argmax() -> None:
    """Equal vectors tie everywhere: index 0 wins, so one-image samples count as correct."""
    ones = np.ones((5, 1, 4), np.float32)
    aro = pair_classification_scores(cosine_similarities(ones, np.ones((5, 5, 4), np.float32)))
    assert aro == mteb_scores(ones, np.ones((5, 5, 4), np.float32))[0]
    assert aro == {"image_acc": 0.0, "text_acc": 1.0, "accuracy": 0.0}
    pairs = np.ones((5, 2, 4), np.float32)
    # Image 1's tie goes to caption 0, so no Winoground sample is right.
    assert pair_classification_scores(cosine_similarities(pairs, pairs))["text_acc"] == 0.0


def test_strict_ties_follow_the_winoground_paper() -> None:
    rng = np.random.default_rng(5)
    images, texts = _vectors(rng, 500, 2, 4, "signs"), _vectors(rng, 500, 2, 4, "signs")
    s = cosine_similarities(images, texts)
    # Winoground's text score: each image prefers its caption strictly; image score likewise.
    text = (s[:, 0, 0] > s[:, 0, 1]) & (s[:, 1, 1] > s[:, 1, 0])
    image = (s[:, 0, 0] > s[:, 1, 0]) & (s[:, 1, 1] > s[:, 0, 1])
    np.testing.assert_array_equal(correct_matches(s, axis=2, strict_ties=True), text)
    np.testing.assert_array_equal(correct_matches(s, axis=1, strict_ties=True), image)
    strict = pair_classification_scores(s, strict_ties=True)
    assert strict["accuracy"] == pytest.approx(np.mean(text & image))
    assert strict != pair_classification_scores(s)  # the data has ties; the rules differ


def test_means_are_float32_like_mteb() -> None:
    s = np.zeros((7, 1, 2), np.float32)
    s[0, 0, 0] = 1.0  # with zeros elsewhere ties win: 7 of 7 correct; make one wrong
    s[1:, 0, 1] = 1.0
    assert pair_classification_scores(s)["text_acc"] == float(np.float32(1) / np.float32(7))
    assert pair_classification_scores(s)["text_acc"] != 1 / 7


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="expected"):
        cosine_similarities(np.ones((3, 2, 4)), np.ones((2, 2, 4)))
    with pytest.raises(ValueError, match="n > 0"):
        pair_classification_scores(np.ones((0, 2, 2)))
