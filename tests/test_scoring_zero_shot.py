"""Zero-shot scores equal mteb's on the same embeddings (mteb's own task code is the reference)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from harness.scoring.classification import CLASSIFICATION_METRICS as METRIC_KEYS
from harness.scoring.zero_shot import (
    ensemble_label_vectors,
    label_scores,
    predictions,
    zero_shot_metrics,
)

mteb = pytest.importorskip("mteb")
from mteb.abstasks.zeroshot_classification import AbsTaskZeroShotClassification  # noqa: E402
from mteb.similarity_functions import cos_sim, dot_score  # noqa: E402
from mteb.timing import TimingStack  # noqa: E402

# mteb tasks whose metadata takes each scoring path (see harness/scoring/zero_shot.py).
SIMILARITY_TASK = "CIFAR10ZeroShot"  # modalities ["text", "image"], 10 ClassLabel names
SOFTMAX_TASK = "STL10ZeroShot"  # modalities ["image", "text"], 10 ClassLabel names
BINARY_TASKS = {"similarity": "RenderedSST2", "softmax": "PatchCamelyonZeroShot"}


class ArrayModel:
    """An mteb encoder that returns fixed arrays: first the label prompts', then the inputs'."""

    def __init__(self, label_vectors: np.ndarray, inputs: np.ndarray, similarity: str) -> None:
        self.outputs = [torch.from_numpy(label_vectors), torch.from_numpy(inputs)]
        self.similarity_fn: Callable[[Any, Any], Any] = (
            cos_sim if similarity == "cosine" else dot_score
        )
        self.mteb_model_meta = None

    def encode(self, inputs: Any, **kwargs: Any) -> torch.Tensor:
        return self.outputs.pop(0)

    def similarity(self, a: Any, b: Any) -> Any:
        return self.similarity_fn(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        raise NotImplementedError


def _tiny_png() -> dict[str, Any]:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def mteb_scores(
    task_name: str,
    label_vectors: np.ndarray,
    inputs: np.ndarray,
    labels: list[int],
    similarity: str = "cosine",
) -> dict[str, Any]:
    """Run mteb's task ``_evaluate_subset`` on a dataset whose encoder returns the given arrays."""
    task = mteb.get_task(task_name)
    split = task.metadata.eval_splits[0]
    names = [f"class {i}" for i in range(len(label_vectors))]
    image_column = task.input_column_name
    features = datasets.Features(
        {image_column: datasets.Image(), task.label_column_name: datasets.ClassLabel(names=names)}
    )
    data = datasets.Dataset.from_dict(
        {image_column: [_tiny_png()] * len(labels), task.label_column_name: labels}, features
    )
    task.dataset = {split: data}
    assert len(task.get_candidate_labels()) == len(label_vectors)
    model = ArrayModel(label_vectors, inputs, similarity)
    return task._evaluate_subset(
        model, data, hf_split=split, hf_subset="default", encode_kwargs={}, timer=TimingStack()
    )


def ours(
    label_vectors: np.ndarray,
    inputs: np.ndarray,
    labels: list[int],
    scoring: str,
    similarity: str = "cosine",
) -> dict[str, Any]:
    scores = label_scores(inputs, label_vectors, scoring=scoring, similarity=similarity)
    return zero_shot_metrics(labels, scores)


def assert_same(mine: dict[str, Any], reference: dict[str, Any]) -> None:
    assert list(mine) == list(reference) == list(METRIC_KEYS)
    assert mine["accuracy"] == reference["accuracy"]
    for key in METRIC_KEYS:
        if reference[key] is None:
            assert mine[key] is None, key
        else:
            assert math.isfinite(mine[key])
            assert mine[key] == pytest.approx(float(reference[key]), abs=1e-6, rel=0), key


def random_case(seed: int, n: int = 60, k: int = 10, d: int = 12):
    rng = np.random.default_rng(seed)
    label_vectors = rng.normal(size=(k, d)).astype(np.float32)
    labels = rng.integers(0, k, n)
    # inputs near their label's vector, so that accuracy is neither 0 nor 1
    inputs = (label_vectors[labels] + rng.normal(scale=1.2, size=(n, d))).astype(np.float32)
    return label_vectors, inputs, labels.tolist()


def tied_case():
    """Exact ties: duplicated and doubled label vectors, and inputs equidistant to labels."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(4, 8)).astype(np.float32)
    # labels 4 and 5 repeat 1 and 2 (6 doubles 3: a cosine tie, not a dot tie)
    label_vectors = np.concatenate([base, base[1:3], 2 * base[3:4]]).astype(np.float32)
    inputs = np.concatenate([label_vectors, label_vectors[::-1], base[:1]]).astype(np.float32)
    # a tie resolved to the first label is right; to the last, wrong
    labels = [0, 1, 2, 3, 1, 2, 3, 3, 2, 1, 3, 2, 1, 0, 0]
    return label_vectors, inputs, labels


def near_tie_case():
    """Label vectors one float32 ulp apart, so rounding in the score matrix decides argmax."""
    rng = np.random.default_rng(11)
    base = rng.normal(size=(1, 16)).astype(np.float32)
    label_vectors = np.repeat(base, 5, axis=0)
    for i in range(1, 5):
        label_vectors[i, i] = np.nextafter(label_vectors[i, i], np.float32(np.inf) * (-1) ** i)
    inputs = (base + rng.normal(scale=0.01, size=(40, 16))).astype(np.float32)
    labels = rng.integers(0, 5, 40).tolist()
    return label_vectors, inputs, labels


@pytest.mark.parametrize("scoring", ["similarity", "softmax"])
@pytest.mark.parametrize(
    "case", [lambda: random_case(0), lambda: random_case(1, n=200), tied_case, near_tie_case]
)
def test_multiclass_matches_mteb(scoring: str, case: Callable) -> None:
    label_vectors, inputs, labels = case()
    k = len(label_vectors)
    pad = 10 - k  # both reference tasks have 10 candidate labels
    if pad:
        # extra labels far from everything: never predicted, as in a split missing classes
        far = np.full((pad, label_vectors.shape[1]), -1e3, np.float32)
        far[:, 0] = 1e3
        label_vectors = np.concatenate([label_vectors, far])
    task = SIMILARITY_TASK if scoring == "similarity" else SOFTMAX_TASK
    reference = mteb_scores(task, label_vectors, inputs, labels)
    assert_same(ours(label_vectors, inputs, labels, scoring), reference)


def test_dot_similarity_matches_mteb() -> None:
    label_vectors, inputs, labels = random_case(3)
    label_vectors[2] *= 3.0  # dot differs from cosine: a long label vector wins more often
    reference = mteb_scores(SIMILARITY_TASK, label_vectors, inputs, labels, similarity="dot")
    mine = ours(label_vectors, inputs, labels, "similarity", similarity="dot")
    assert_same(mine, reference)
    assert mine != ours(label_vectors, inputs, labels, "similarity")


@pytest.mark.parametrize("scoring", ["similarity", "softmax"])
@pytest.mark.parametrize("saturated", [False, True], ids=["mild", "saturated"])
def test_binary_average_precision_matches_mteb(scoring: str, saturated: bool) -> None:
    rng = np.random.default_rng(5)
    label_vectors = rng.normal(size=(2, 6)).astype(np.float32)
    labels = rng.integers(0, 2, 80)
    scale = 4.0 if saturated else 0.3  # large: softmax(100 cos) is 0 or 1 for most inputs
    inputs = (label_vectors[labels] * scale + rng.normal(size=(80, 6))).astype(np.float32)
    reference = mteb_scores(BINARY_TASKS[scoring], label_vectors, inputs, labels.tolist())
    mine = ours(label_vectors, inputs, labels.tolist(), scoring)
    assert_same(mine, reference)
    assert mine["ap"] is not None and 0.0 < mine["ap"] <= 1.0


def test_softmax_and_similarity_ap_differ_as_in_mteb() -> None:
    """The documented defect: the two paths rank inputs differently for the binary ap."""
    rng = np.random.default_rng(6)
    label_vectors = rng.normal(size=(2, 6)).astype(np.float32)
    labels = rng.integers(0, 2, 80).tolist()
    inputs = rng.normal(size=(80, 6)).astype(np.float32)
    by_similarity = ours(label_vectors, inputs, labels, "similarity")
    by_softmax = ours(label_vectors, inputs, labels, "softmax")
    assert by_similarity["accuracy"] == by_softmax["accuracy"]
    assert abs(by_similarity["ap"] - by_softmax["ap"]) > 0.05


@pytest.mark.parametrize("present", [[0, 1], [1, 2]])
def test_two_labels_of_a_multiclass_split_match_mteb(present: list[int]) -> None:
    label_vectors, inputs, _ = random_case(4, n=30)
    labels = [present[i % 2] for i in range(30)]
    reference = mteb_scores(SIMILARITY_TASK, label_vectors, inputs, labels)
    assert reference["ap"] is not None
    assert_same(ours(label_vectors, inputs, labels, "similarity"), reference)


def test_two_labels_without_label_one_give_no_ap() -> None:
    """mteb's scikit-learn call raises here; we report no ap instead."""
    label_vectors, inputs, _ = random_case(4, n=30)
    labels = [(0, 2)[i % 2] for i in range(30)]
    with pytest.raises(ValueError, match="pos_label"):
        mteb_scores(SIMILARITY_TASK, label_vectors, inputs, labels)
    mine = ours(label_vectors, inputs, labels, "similarity")
    assert mine["ap"] is None and mine["ap_weighted"] is None
    assert 0.0 <= mine["accuracy"] <= 1.0


def test_ties_go_to_the_first_label() -> None:
    scores = np.array([[0.5, 0.9, 0.9], [0.2, 0.2, 0.2], [0.3, 0.1, 0.3]], np.float32)
    assert predictions(scores).tolist() == [1, 0, 0]


def test_string_labels_are_mapped_like_mteb() -> None:
    from harness.tasks.zero_shot import _label_indices

    prompts = ["a photo of a cat.", "a photo of a dog.", "a photo of a cat."]
    labels = ["a photo of a dog.", "a photo of a cat.", "a photo of a dog."]
    reference = AbsTaskZeroShotClassification._normalize_labels(labels, prompts)
    task = type("T", (), {"name": "T", "dataset": None})
    mine = _label_indices(task, "test", labels, ["cat", "dog", "cat"], prompts)  # type: ignore[arg-type]
    assert mine == reference == [1, 2, 1]


def test_prompt_ensemble_is_the_renormalised_mean_of_normalised_prompts() -> None:
    rng = np.random.default_rng(2)
    prompts = rng.normal(size=(3, 4, 5)).astype(np.float32) * np.array([1, 10, 0.1])[:, None, None]
    ensemble = ensemble_label_vectors(prompts)
    unit = prompts / np.linalg.norm(prompts, axis=2, keepdims=True)
    expected = unit.mean(axis=0)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(ensemble, expected, atol=1e-6)
    # unlike averaging raw vectors, where the long template (x10) would dominate
    raw = prompts.mean(axis=0)
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    assert not np.allclose(ensemble, raw, atol=1e-3)


def test_invalid_inputs_raise() -> None:
    good = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="width"):
        label_scores(good, np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        label_scores(np.full((2, 3), np.nan, np.float32), good)
    with pytest.raises(ValueError, match="maxsim"):
        label_scores(good, good, similarity="maxsim")
    with pytest.raises(ValueError, match="do not match"):
        zero_shot_metrics([0, 1, 0], np.ones((2, 2)))
