"""STS metrics against mteb's AbsTaskSTS + AnySTSEvaluator on the same embeddings."""

from __future__ import annotations

import io
import math
from typing import Any

import datasets
import mteb
import numpy as np
import pytest
from mteb.similarity_functions import pairwise_cos_sim, pairwise_dot_score
from mteb.timing import TimingStack
from PIL import Image

from harness.scoring.sts import normalise_scores, sts_scores

PIXEL = io.BytesIO()
Image.new("RGB", (2, 2)).save(PIXEL, format="PNG")


class QueuedModel:
    """Returns the first embeddings for mteb's first encode call, the second for its second."""

    def __init__(self, first: np.ndarray, second: np.ndarray, similarity: str) -> None:
        self.queue = [first, second]
        self.pairwise = pairwise_cos_sim if similarity == "cosine" else pairwise_dot_score

    def encode(self, inputs: Any, **_: Any) -> np.ndarray:
        rows = sum(len(next(iter(batch.values()))) for batch in inputs)
        vectors = self.queue.pop(0)
        assert len(vectors) == rows
        return vectors

    def similarity(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return self.pairwise(a, b)

    @property
    def mteb_model_meta(self) -> None:
        return None


def mteb_sts(
    first: np.ndarray,
    second: np.ndarray,
    gold: list[float],
    similarity: str = "cosine",
    min_score: float = 0,
    max_score: float = 5,
) -> dict[str, float]:
    """mteb's STS13VisualSTS scoring of one subset whose images encode to the given vectors."""
    image = {"bytes": PIXEL.getvalue(), "path": None}
    features = datasets.Features(
        {
            "sentence1": datasets.Image(),
            "sentence2": datasets.Image(),
            "score": datasets.Value("float64"),
        }
    )
    data = datasets.Dataset.from_dict(
        {"sentence1": [image] * len(gold), "sentence2": [image] * len(gold), "score": gold},
        features=features,
    )
    task = mteb.get_task("STS13VisualSTS")
    task.min_score, task.max_score = min_score, max_score
    return dict(
        task._evaluate_subset(
            QueuedModel(first, second, similarity),
            data,
            encode_kwargs={"batch_size": 64},
            hf_split="test",
            hf_subset="default",
            timer=TimingStack(),
        )
    )


def assert_matches(expected: dict[str, float], ours: dict[str, float]) -> None:
    """Same keys in mteb's order and the same values: same float32 similarities, same scipy."""
    assert list(ours) == list(expected)
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(ours[key]), key
        else:
            assert ours[key] == value, key


def random_pairs(seed: int, n: int = 300, d: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = rng.standard_normal((n, d)).astype(np.float32)
    second = (0.6 * first + rng.standard_normal((n, d))).astype(np.float32)
    return first, second


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_random_embeddings_with_tied_gold_scores(similarity: str) -> None:
    first, second = random_pairs(1)
    second *= np.random.default_rng(2).uniform(0.1, 10, (len(second), 1)).astype(np.float32)
    quality = (first * second).sum(1) / np.linalg.norm(second, axis=1)
    gold = np.round(np.clip(quality + 2.5, 0, 5)).tolist()  # integers: many ties
    expected = mteb_sts(first, second, gold, similarity)
    ours = sts_scores(first, second, gold, similarity=similarity)
    assert_matches(expected, ours)
    assert 0.2 < ours["cosine_spearman"] < 0.95
    if similarity == "dot":
        assert ours["pearson"] != pytest.approx(ours["cosine_pearson"], abs=1e-3)


def test_duplicate_pairs_and_near_identical_vectors() -> None:
    first, second = random_pairs(3, n=120)
    first[60:], second[60:] = first[:60], second[:60]  # every pair twice: exact ties
    second[:10] = first[:10] + np.float32(1e-7)  # cosine within float32 rounding of 1
    second[60:70] = second[:10]
    gold = np.random.default_rng(4).uniform(0, 5, 60).round(1).tolist() * 2
    assert_matches(mteb_sts(first, second, gold), sts_scores(first, second, gold))


def test_other_score_ranges_normalise_like_mteb() -> None:
    first, second = random_pairs(5, n=80)
    gold = np.random.default_rng(6).uniform(1, 4, 80).tolist()
    expected = mteb_sts(first, second, gold, min_score=1, max_score=4)
    assert_matches(expected, sts_scores(first, second, gold, min_score=1, max_score=4))
    assert normalise_scores([1, 2.5, 4], 1, 4) == [0.0, 0.5, 1.0]


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_constant_predictions_give_nan_like_mteb() -> None:
    first = np.tile(np.arange(1, 9, dtype=np.float32), (20, 1))
    gold = np.linspace(0, 5, 20).tolist()
    expected = mteb_sts(first, first.copy(), gold)
    ours = sts_scores(first, first.copy(), gold)
    assert math.isnan(ours["cosine_spearman"]) and math.isnan(ours["manhattan_pearson"])
    assert_matches(expected, ours)


def test_bad_inputs_are_rejected() -> None:
    first, second = random_pairs(7, n=5)
    with pytest.raises(ValueError, match="same pairs"):
        sts_scores(first, second[:4], [1.0] * 5)
    with pytest.raises(ValueError, match="max_score"):
        sts_scores(first, second, [1.0] * 5, min_score=5, max_score=5)
    with pytest.raises(ValueError, match="maxsim"):
        sts_scores(first, second, [1.0] * 5, similarity="maxsim")
    with pytest.raises(ValueError, match="two pairs"):
        sts_scores(first[:1], second[:1], [1.0])
