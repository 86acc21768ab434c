"""Few-shot classification scores against mteb's own tasks fed the same embeddings.

mteb's ``AbsTaskClassification`` / ``AbsTaskMultilabelClassification`` run end to end (sampling,
encoding, fitting, metrics) with an encoder that looks vectors up in a table, and our pure
functions get the same table. Accuracies must be equal, every other metric within 1e-6.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from mteb._evaluators.classification_metrics import hamming_score as mteb_hamming
from mteb.abstasks.abstask import _multilabel_subsampling
from mteb.mocks.mock_tasks.classification import (
    MockClassificationTask,
    MockMultilabelClassification,
)
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from threadpoolctl import threadpool_limits

from harness.scoring.classification import (
    ClassificationError,
    hamming_score,
    iterative_stratified_subsample,
    kshot_samples,
    linear_probe_scores,
    multilabel_kshot_samples,
    multilabel_scores,
)

TOLERANCE = 1e-6
EXACT = ("accuracy",)


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """Tiny fits run faster on one BLAS thread than contending for a small machine's cores."""
    with threadpool_limits(1):
        yield


class TableEncoder:
    """An mteb encoder whose inputs are keys of a table of vectors.

    ``as_tensor`` returns torch tensors, as mteb's CLIP-style wrappers do; otherwise a float32
    numpy array, as sentence-transformers models do.
    """

    mteb_model_meta = None

    def __init__(self, table: dict[str, np.ndarray], as_tensor: bool = True) -> None:
        self.table, self.as_tensor = table, as_tensor

    def encode(self, inputs: Any, **kwargs: Any) -> torch.Tensor | np.ndarray:
        keys = [text for batch in inputs for text in batch["text"]]
        matrix = np.stack([self.table[key] for key in keys]).astype(np.float32)
        return torch.from_numpy(matrix) if self.as_tensor else matrix

    def similarity(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        raise NotImplementedError


def clustered(
    labels: Sequence[Hashable], dim: int, seed: int, spread: float = 1.5, noise_seed: int = 0
) -> np.ndarray:
    """float32 vectors around one random centre per label (centres depend on ``seed`` only)."""
    rng = np.random.default_rng(seed)
    centres = {
        label: rng.normal(size=dim) for label in sorted(set(labels) | set(range(10)), key=str)
    }
    noise = np.random.default_rng((seed, noise_seed)).normal(scale=spread, size=(len(labels), dim))
    return (np.stack([centres[label] for label in labels]) + noise).astype(np.float32)


def table(prefix: str, vectors: np.ndarray) -> tuple[list[str], dict[str, np.ndarray]]:
    keys = [f"{prefix}{i}" for i in range(len(vectors))]
    return keys, dict(zip(keys, vectors, strict=True))


def mteb_linear_probe(
    train: tuple[np.ndarray, list],
    test: tuple[np.ndarray, list],
    samples_per_label: int,
    n_experiments: int,
    as_tensor: bool = True,
) -> dict[str, Any]:
    """Scores of mteb's AbsTaskClassification on the given vectors and labels."""
    train_keys, train_table = table("train", train[0])
    test_keys, test_table = table("test", test[0])
    task = MockClassificationTask()
    task.samples_per_label, task.n_experiments = samples_per_label, n_experiments
    task.dataset = DatasetDict(
        train=Dataset.from_dict({"text": train_keys, "label": train[1]}),
        test=Dataset.from_dict({"text": test_keys, "label": test[1]}),
    )
    task.data_loaded = True
    encoder = TableEncoder({**train_table, **test_table}, as_tensor)
    return task.evaluate(encoder, "test", encode_kwargs={"batch_size": 16})["default"]


def assert_same_scores(ours: dict[str, Any], reference: dict[str, Any]) -> float:
    """Compare averages and per-experiment scores; returns the largest difference seen."""
    pairs = [(ours, reference)]
    pairs += list(
        zip(ours["scores_per_experiment"], reference["scores_per_experiment"], strict=True)
    )
    largest = 0.0
    for mine, theirs in pairs:
        for name, value in theirs.items():
            if name in ("scores_per_experiment", "main_score"):
                continue
            if value is None or (isinstance(value, float) and np.isnan(value)):
                assert mine[name] is None or np.isnan(mine[name]), name
                continue
            if name in EXACT:
                assert mine[name] == value, name
            else:
                assert mine[name] == pytest.approx(value, abs=TOLERANCE), name
            largest = max(largest, abs(mine[name] - value))
    return largest


def our_linear_probe(
    train: tuple[np.ndarray, list],
    test: tuple[np.ndarray, list],
    samples_per_label: int,
    n_experiments: int,
    fit_dtype: str = "float64",
) -> dict[str, Any]:
    experiments = kshot_samples(train[1], samples_per_label, n_experiments)
    scores = linear_probe_scores(
        train[0], train[1], experiments, test[0], test[1], fit_dtype=fit_dtype
    )
    assert np.mean(scores.per_item["accuracy"]) == pytest.approx(scores.metrics["accuracy"])
    return scores.metrics


LINEAR_CASES = {
    # Unbalanced classes, two of them with fewer train rows than the shots asked for.
    "few-rows": ([0] * 30 + [1] * 25 + [2] * 5 + [3] * 3 + [4] * 40, [0, 1, 2, 3, 4] * 12, 8, 4),
    # Binary 0/1 labels: ap and ap_weighted are reported.
    "binary": ([0] * 40 + [1] * 30, [0, 1] * 25 + [1] * 7, 16, 5),
    # A test label never seen in training, and more experiments than rows of a label.
    "unseen-label": ([0] * 20 + [1] * 20 + [2] * 20, [0, 1, 2, 3] * 10, 16, 6),
    # String labels, shuffled.
    "strings": (["cat", "dog", "eel"] * 20, ["eel", "cat", "dog"] * 9, 7, 3),
}


@pytest.mark.parametrize("case", LINEAR_CASES, ids=list(LINEAR_CASES))
def test_linear_probe_equals_mteb_clip_path(case: str) -> None:
    train_labels, test_labels, shots, experiments = LINEAR_CASES[case]
    order = np.random.default_rng(len(case)).permutation(len(train_labels))
    train_labels = [train_labels[i] for i in order]
    train = (clustered(train_labels, 24, len(case)), train_labels)
    test = (clustered(test_labels, 24, len(case), noise_seed=1), test_labels)
    reference = mteb_linear_probe(train, test, shots, experiments)
    ours = our_linear_probe(train, test, shots, experiments)
    assert_same_scores(ours, reference)
    assert len(ours["scores_per_experiment"]) == experiments
    assert (ours["ap"] is not None and not np.isnan(ours["ap"])) == (case == "binary")


def test_fit_dtype_follows_the_array_type_mteb_receives() -> None:
    """Torch tensors are fitted in float64, float32 numpy arrays in float32: both paths match."""
    labels = [i % 6 for i in range(120)]
    train = (clustered(labels, 64, 3, spread=4.0) * 30, labels)
    test = (clustered(labels[:90], 64, 3, spread=4.0, noise_seed=1) * 30, labels[:90])
    as_tensor = mteb_linear_probe(train, test, 16, 5, as_tensor=True)
    as_numpy = mteb_linear_probe(train, test, 16, 5, as_tensor=False)
    ours64 = our_linear_probe(train, test, 16, 5, fit_dtype="float64")
    ours32 = our_linear_probe(train, test, 16, 5, fit_dtype="float32")
    assert_same_scores(ours64, as_tensor)
    assert_same_scores(ours32, as_numpy)
    per_experiment = [s["f1"] for s in ours64["scores_per_experiment"]]
    assert per_experiment != [s["f1"] for s in ours32["scores_per_experiment"]]


@pytest.mark.parametrize("shots", [1, 4, 16])
def test_kshot_samples_follow_mteb_rng_progression(shots: int) -> None:
    rng = np.random.default_rng(shots)
    labels = rng.integers(0, 7, size=203).tolist()
    task = MockClassificationTask()
    task.samples_per_label = shots
    dataset = Dataset.from_dict({"label": labels})
    expected, previous = [], None
    for number in range(6):
        _, previous, chosen = task._undersample_data(dataset, number, previous)
        expected.append(chosen)
    assert kshot_samples(labels, shots, 6) == expected
    assert kshot_samples(labels, shots, 6, seed=43) != expected


def test_single_label_train_sample_is_a_clear_error() -> None:
    vectors = clustered([0] * 10, 4, 0)
    with pytest.raises(ClassificationError, match="single label"):
        linear_probe_scores(vectors, [0] * 10, [[0, 1, 2]], vectors, [0] * 10)


# --- multilabel ---------------------------------------------------------------------------


def random_label_sets(n: int, n_labels: int, seed: int, empty_rows: int = 0) -> list[list[int]]:
    """Label sets of 1-3 labels with skewed frequencies; ``empty_rows`` rows have none."""
    rng = np.random.default_rng(seed)
    weights = np.linspace(3, 1, n_labels) / np.linspace(3, 1, n_labels).sum()
    sets = [
        sorted(set(rng.choice(n_labels, size=int(rng.integers(1, 4)), p=weights).tolist()))
        for _ in range(n)
    ]
    for row in rng.choice(n, size=empty_rows, replace=False):
        sets[row] = []
    return sets


def multilabel_vectors(label_sets: list[list[int]], dim: int, seed: int) -> np.ndarray:
    """Sum of per-label centres plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    noise = rng.normal(scale=0.8, size=(len(label_sets), dim))
    sums = np.stack([centres[labels].sum(axis=0) for labels in label_sets])
    return (sums + noise).astype(np.float32)


def mteb_multilabel(
    train: tuple[np.ndarray, list],
    test: tuple[np.ndarray, list],
    max_eval_samples: int | None,
    evaluator_model: Any = None,
) -> dict[str, Any]:
    train_keys, train_table = table("train", train[0])
    test_keys, test_table = table("test", test[0])
    task = MockMultilabelClassification()
    task.n_experiments, task.max_eval_samples = 5, max_eval_samples
    if evaluator_model is not None:
        task.evaluator_model = evaluator_model
    task.dataset = DatasetDict(
        train=Dataset.from_dict({"text": train_keys, "label": train[1]}),
        test=Dataset.from_dict({"text": test_keys, "label": test[1]}),
    )
    task.data_loaded = True
    encoder = TableEncoder({**train_table, **test_table})
    return task.evaluate(encoder, "test", encode_kwargs={"batch_size": 16})["default"]


def our_multilabel(
    train: tuple[np.ndarray, list],
    test: tuple[np.ndarray, list],
    max_eval_samples: int | None,
    classifier: str = "knn",
) -> dict[str, Any]:
    rows = list(range(len(test[1])))
    if max_eval_samples is not None and len(rows) > max_eval_samples:
        rows = iterative_stratified_subsample(test[1], max_eval_samples, 42)
    experiments = multilabel_kshot_samples(train[1], 8, 5, 42)
    scores = multilabel_scores(
        train[0],
        train[1],
        experiments,
        test[0][rows],
        [test[1][i] for i in rows],
        classifier=classifier,  # type: ignore[arg-type]
    )
    for metric in ("accuracy", "lrap"):
        assert np.mean(scores.per_item[metric]) == pytest.approx(scores.metrics[metric], abs=1e-12)
    return scores.metrics


@pytest.mark.parametrize(
    ("n_labels", "max_eval_samples", "empty_rows"),
    [(6, None, 0), (9, 70, 0), (5, 60, 4)],
    ids=["whole-split", "stratified-cut", "rows-without-labels"],
)
def test_multilabel_knn_equals_mteb(
    n_labels: int, max_eval_samples: int | None, empty_rows: int
) -> None:
    train_sets = random_label_sets(150, n_labels, n_labels, empty_rows)
    test_sets = random_label_sets(110, n_labels, n_labels + 1, empty_rows)
    train = (multilabel_vectors(train_sets, 12, 0), train_sets)
    test = (multilabel_vectors(test_sets, 12, 0), test_sets)
    reference = mteb_multilabel(train, test, max_eval_samples)
    assert_same_scores(our_multilabel(train, test, max_eval_samples), reference)


def test_multilabel_logistic_option_equals_mteb_with_the_declared_classifier() -> None:
    train_sets = random_label_sets(160, 5, 11)
    test_sets = random_label_sets(80, 5, 12)
    train = (multilabel_vectors(train_sets, 10, 1), train_sets)
    test = (multilabel_vectors(test_sets, 10, 1), test_sets)
    declared = MultiOutputClassifier(estimator=LogisticRegression())
    reference = mteb_multilabel(train, test, None, evaluator_model=declared)
    ours = our_multilabel(train, test, None, classifier="logistic")
    assert_same_scores(ours, reference)
    assert ours["lrap"] != our_multilabel(train, test, None)["lrap"]


def test_multilabel_samples_follow_mteb_generator_across_splits() -> None:
    label_sets = random_label_sets(120, 7, 5, empty_rows=3)
    task = MockMultilabelClassification()
    draws = [task._undersample_data_indices(label_sets, 8, None)[0] for _ in range(8)]
    expected = [[int(i) for i in draw] for draw in draws]
    assert multilabel_kshot_samples(label_sets, 8, 4) == expected[:4]
    earlier = [len(label_sets)] * 4
    assert multilabel_kshot_samples(label_sets, 8, 4, earlier_shuffles=earlier) == expected[4:]


@pytest.mark.parametrize(("n_rows", "n_samples"), [(300, 100), (257, 200), (90, 89)])
def test_iterative_stratified_subsample_equals_mteb(n_rows: int, n_samples: int) -> None:
    label_sets = random_label_sets(n_rows, 8, n_rows, empty_rows=5)
    data = DatasetDict(test=Dataset.from_dict({"label": label_sets, "row": list(range(n_rows))}))
    expected = _multilabel_subsampling(data, 42, ["test"], "label", n_samples)["test"]["row"]
    assert iterative_stratified_subsample(label_sets, n_samples, 42) == expected


def test_hamming_score_equals_mteb() -> None:
    rng = np.random.default_rng(0)
    truth, predicted = rng.integers(0, 2, (50, 6)), rng.integers(0, 2, (50, 6))
    truth[:3], predicted[:3] = 0, 0  # empty rows on both sides score 1
    assert hamming_score(truth, predicted) == mteb_hamming(truth, predicted)
