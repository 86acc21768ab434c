"""Few-shot classification scored the way mteb scores it: samplers, classifiers and metrics.

Single-label (mteb's ``AbsTaskClassification``, MIEB's linear probe):

- ``kshot_samples``: each experiment re-seeds ``np.random.RandomState(seed)`` and shuffles the
  previous experiment's permutation of the train rows (the first shuffles ``0..n-1``), then
  keeps, in shuffled order, the first ``samples_per_label`` rows of every label. A label with
  fewer rows contributes all of them.
- ``linear_probe_scores``: per experiment, ``LogisticRegression(max_iter, random_state=seed)``
  is fitted on the sampled rows in sampled order and predicts the test rows; accuracy, macro and
  weighted F1, precision and recall, and (when the test labels take exactly two values) macro
  and weighted average precision of the hard predictions. Each metric is averaged over the
  experiments (``ap`` over the experiments that have it, NaN when none do), and the per-
  experiment scores are kept under ``scores_per_experiment``.

Multilabel (mteb's ``AbsTaskMultilabelClassification``, MIEB's VOC2007):

- ``multilabel_kshot_samples``: one ``np.random.default_rng(seed)`` for the whole run; each
  experiment shuffles ``0..n-1`` with it and keeps a row when any of its labels has been kept
  fewer than ``samples_per_label`` times (so frequent labels are over-represented, and rows
  without labels are never kept).
- ``iterative_stratified_subsample``: the second-order iterative stratification (Sechidis et
  al. 2011, as in scikit-multilearn) that mteb uses to cut a large evaluation split.
- ``multilabel_scores``: k-nearest neighbours (k=5) or one-vs-rest logistic regression on the
  binarised labels; subset accuracy, LRAP, macro F1 and the "hamming score" (mean per-row
  Jaccard overlap, 1 for two empty rows), averaged over the experiments.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # scikit-learn is imported where it is used, so importing this module is light
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.neighbors import KNeighborsClassifier

FitDtype = Literal["float64", "float32"]
MultilabelClassifier = Literal["knn", "logistic"]
Scores = dict[str, Any]

CLASSIFICATION_METRICS = (
    "accuracy",
    "f1",
    "f1_weighted",
    "precision",
    "precision_weighted",
    "recall",
    "recall_weighted",
    "ap",
    "ap_weighted",
)
MULTILABEL_METRICS = ("accuracy", "lrap", "f1", "hamming")


class ClassificationError(ValueError):
    """The data cannot be scored under the protocol (for example one label in a train sample)."""


@dataclass(frozen=True)
class ExperimentScores:
    """Metrics averaged over the experiments, and per test item the experiments' mean of each
    metric that is a mean over items (its mean over the items is the metric)."""

    metrics: Scores
    per_item: dict[str, np.ndarray]


# --- single-label -------------------------------------------------------------------------


def kshot_samples(
    labels: Sequence[Hashable], samples_per_label: int, n_experiments: int, seed: int = 42
) -> list[list[int]]:
    """The train rows of each experiment, in the order mteb hands them to the classifier."""
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    order = np.arange(len(codes))
    samples = []
    for _ in range(n_experiments):
        np.random.RandomState(seed).shuffle(order)
        samples.append(order[_first_per_label(codes[order], samples_per_label)].tolist())
    return samples


def _first_per_label(codes: np.ndarray, limit: int) -> np.ndarray:
    """Mask of the positions that are among the first ``limit`` of their code."""
    by_code = np.argsort(codes, kind="stable")
    sorted_codes = codes[by_code]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    mask = np.zeros(len(codes), dtype=bool)
    mask[by_code] = np.arange(len(codes)) - group_start < limit
    return mask


def linear_probe_scores(
    train_vectors: np.ndarray,
    train_labels: Sequence[Hashable],
    experiments: Sequence[Sequence[int]],
    test_vectors: np.ndarray,
    test_labels: Sequence[Hashable],
    *,
    seed: int = 42,
    max_iter: int = 100,
    fit_dtype: FitDtype = "float64",
) -> ExperimentScores:
    """Fit a logistic regression per experiment and score its test predictions.

    ``experiments`` index rows of ``train_vectors``/``train_labels``. ``fit_dtype`` is the dtype
    the classifier is fitted in: mteb fits torch tensors (CLIP-style wrappers) in float64 and
    float32 numpy arrays in float32. Test vectors are passed as given; scikit-learn multiplies
    them with the fitted coefficients in the coefficients' precision either way.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(train_labels)
    per_experiment, correct = [], []
    for number, sample in enumerate(experiments):
        rows = np.asarray(sample, dtype=np.int64)
        if len(np.unique(labels[rows])) < 2:
            raise ClassificationError(
                f"experiment {number} samples rows of a single label; a linear probe needs at "
                "least two labels in the train split"
            )
        classifier = LogisticRegression(max_iter=max_iter, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.fit(train_vectors[rows].astype(fit_dtype), labels[rows].tolist())
        predictions = classifier.predict(test_vectors)
        per_experiment.append(classification_metrics(test_labels, predictions))
        correct.append(np.asarray(predictions) == np.asarray(test_labels))
    return ExperimentScores(
        {**average_experiments(per_experiment), "scores_per_experiment": per_experiment},
        {"accuracy": np.mean(correct, axis=0)},
    )


def prediction_metrics(
    y_true: Sequence[Hashable] | np.ndarray, y_pred: Sequence[Hashable] | np.ndarray
) -> dict[str, float]:
    """Accuracy and macro/weighted F1, precision and recall, as mteb reports them."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        scores = {"accuracy": float(accuracy_score(y_true, y_pred))}
        for name, metric in (
            ("f1", f1_score),
            ("precision", precision_score),
            ("recall", recall_score),
        ):
            scores[name] = float(metric(y_true, y_pred, average="macro"))
            scores[f"{name}_weighted"] = float(metric(y_true, y_pred, average="weighted"))
    return scores


def classification_metrics(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable]
) -> dict[str, float | None]:
    """mteb's single-label metrics; ``ap`` only when ``y_true`` has exactly two values."""
    from sklearn.metrics import average_precision_score

    y_true = list(y_true)
    scores: dict[str, float | None] = {**prediction_metrics(y_true, y_pred)}
    scores["ap"] = scores["ap_weighted"] = None
    if len(np.unique(np.asarray(y_true))) == 2:
        try:
            scores["ap"] = float(average_precision_score(y_true, y_pred, average="macro"))
            scores["ap_weighted"] = float(
                average_precision_score(y_true, y_pred, average="weighted")
            )
        except ValueError as error:
            raise ClassificationError(
                f"binary test labels must be 0 and 1 for average precision ({error})"
            ) from error
    return {name: scores[name] for name in CLASSIFICATION_METRICS}


def average_experiments(per_experiment: Sequence[dict[str, float | None]]) -> dict[str, float]:
    """The mean of each metric over the experiments that have it (NaN when none has it)."""
    averages = {}
    for name in per_experiment[0]:
        values = [value for scores in per_experiment if (value := scores[name]) is not None]
        averages[name] = float(np.mean(values)) if values else float("nan")
    return averages


# --- multilabel ---------------------------------------------------------------------------


def multilabel_kshot_samples(
    label_sets: Sequence[Sequence[Hashable]],
    samples_per_label: int,
    n_experiments: int,
    seed: int = 42,
    *,
    earlier_shuffles: Sequence[int] = (),
) -> list[list[int]]:
    """The train rows of each experiment, in the order mteb hands them to the classifier.

    mteb's generator lives as long as the task object, so a later evaluation split or subset
    continues where the earlier ones stopped: ``earlier_shuffles`` gives the size of each train
    split that an earlier experiment shuffled; those shuffles are drawn and discarded first.
    """
    rng = np.random.default_rng(seed)
    for size in earlier_shuffles:
        rng.shuffle(np.arange(size))
    samples = []
    for _ in range(n_experiments):
        order = np.arange(len(label_sets))
        rng.shuffle(order)
        samples.append(_greedy_cover(label_sets, order.tolist(), samples_per_label))
    return samples


def _greedy_cover(
    label_sets: Sequence[Sequence[Hashable]], order: list[int], samples_per_label: int
) -> list[int]:
    counts: dict[Hashable, int] = {}
    chosen = []
    for row in order:
        if any(counts.get(label, 0) < samples_per_label for label in label_sets[row]):
            chosen.append(row)
            for label in label_sets[row]:
                counts[label] = counts.get(label, 0) + 1
    return chosen


def iterative_stratified_subsample(
    label_sets: Sequence[Sequence[Hashable]], n_samples: int, seed: int = 42
) -> list[int]:
    """Rows (ascending) of a ``n_samples``-row sample stratified on label pairs, as mteb cuts it.

    Second-order iterative stratification into two folds of shares ``n_samples / n`` and the
    rest; the first fold is the sample. Ties between folds and rows without labels are settled
    by ``np.random.RandomState(seed)``. Reproduces scikit-multilearn's choice of the next label
    combination, which picks the first combination with evidence unless a later one has both
    more distinct labels and less evidence.
    """
    from sklearn.preprocessing import MultiLabelBinarizer

    matrix = MultiLabelBinarizer().fit_transform(label_sets)
    n_rows = len(matrix)
    share = n_samples / n_rows
    shares = [share, 1.0 - share]
    rng = np.random.RandomState(seed)
    fold_desire = np.array([p * n_rows for p in shares])
    evidence: dict[tuple[int, ...], list[int]] = {}
    row_combinations: list[list[tuple[int, int]]] = []
    for row, labels in enumerate(matrix):
        present = np.flatnonzero(labels).tolist()
        combinations = list(itertools.combinations_with_replacement(present, 2))
        row_combinations.append(combinations)
        for pair in combinations:
            evidence.setdefault(pair, []).append(row)
    desire = {c: np.array([len(rows) * p for p in shares]) for c, rows in evidence.items()}
    fold_of = np.full(n_rows, -1)
    combination = _next_combination(evidence)
    while combination is not None:
        while evidence[combination]:
            row = evidence[combination].pop()
            if fold_of[row] >= 0:
                continue
            wanted = desire[combination]
            fold = _break_tie(np.flatnonzero(wanted == wanted.max()), rng)
            fold_of[row] = fold
            for other in row_combinations[row]:
                if row in evidence[other]:
                    evidence[other].remove(row)
                desire[other][fold] -= 1
            fold_desire[fold] -= 1
        combination = _next_combination(evidence)
    for row in np.flatnonzero(fold_of < 0)[::-1]:
        fold = int(rng.choice(np.flatnonzero(fold_desire > 0), 1)[0])
        fold_desire[fold] -= 1
        fold_of[row] = fold
    return np.flatnonzero(fold_of == 0).tolist()


def _next_combination(evidence: dict[tuple[int, ...], list[int]]) -> tuple[int, ...] | None:
    chosen, best = None, (0, 0)
    for combination, rows in evidence.items():
        if not rows:
            continue
        current = (len(set(combination)), len(rows))
        if chosen is None or (best[0] < current[0] and best[1] > current[1]):
            chosen, best = combination, current
    return chosen


def _break_tie(folds: np.ndarray, rng: np.random.RandomState) -> int:
    if len(folds) == 1:
        return int(folds[0])
    return int(rng.choice(folds, 1)[0])


def multilabel_scores(
    train_vectors: np.ndarray,
    train_label_sets: Sequence[Sequence[Hashable]],
    experiments: Sequence[Sequence[int]],
    test_vectors: np.ndarray,
    test_label_sets: Sequence[Sequence[Hashable]],
    *,
    classifier: MultilabelClassifier = "knn",
    n_neighbors: int = 5,
    fit_dtype: FitDtype = "float32",
) -> ExperimentScores:
    """Fit a multilabel classifier per experiment and score its test predictions.

    Labels are binarised over the test split's label set (train labels absent from it are
    dropped). ``knn`` is mteb's ``KNeighborsClassifier(n_neighbors)`` with LRAP computed on its
    hard predictions; ``logistic`` is ``MultiOutputClassifier(LogisticRegression())`` with LRAP
    on the predicted probabilities.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import MultiLabelBinarizer

    binarizer = MultiLabelBinarizer()
    y_test = binarizer.fit_transform(test_label_sets)
    known = set(binarizer.classes_.tolist())
    per_experiment, per_item = [], []
    for number, rows in enumerate(experiments):
        y_train = binarizer.transform(
            [[label for label in train_label_sets[row] if label in known] for row in rows]
        )
        model = _multilabel_model(classifier, n_neighbors, y_train, number)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(train_vectors[np.asarray(rows, dtype=np.int64)].astype(fit_dtype), y_train)
        metrics, item_scores = _multilabel_metrics(model, test_vectors, y_test)
        per_experiment.append(metrics)
        per_item.append(item_scores)
    averages = {
        name: float(np.mean([scores[name] for scores in per_experiment]))
        for name in MULTILABEL_METRICS
    }
    return ExperimentScores(
        {**averages, "scores_per_experiment": per_experiment},
        {name: np.mean([items[name] for items in per_item], axis=0) for name in per_item[0]},
    )


def _multilabel_model(
    classifier: MultilabelClassifier, n_neighbors: int, y_train: np.ndarray, number: int
) -> KNeighborsClassifier | MultiOutputClassifier:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.neighbors import KNeighborsClassifier

    if classifier == "knn":
        if len(y_train) < n_neighbors:
            raise ClassificationError(
                f"experiment {number} samples {len(y_train)} train rows, fewer than the "
                f"{n_neighbors} neighbours the classifier asks for"
            )
        return KNeighborsClassifier(n_neighbors=n_neighbors)
    constant = [j for j in range(y_train.shape[1]) if len(np.unique(y_train[:, j])) < 2]
    if constant:
        raise ClassificationError(
            f"experiment {number}: {len(constant)} label(s) are present in all or none of the "
            "sampled train rows; one-vs-rest logistic regression needs both cases per label"
        )
    return MultiOutputClassifier(estimator=LogisticRegression())


def _multilabel_metrics(
    model: KNeighborsClassifier | MultiOutputClassifier,
    test_vectors: np.ndarray,
    y_test: np.ndarray,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The metrics of one experiment, and the per-item values of subset accuracy and LRAP."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import accuracy_score, f1_score, label_ranking_average_precision_score
    from sklearn.multioutput import MultiOutputClassifier

    y_pred = model.predict(test_vectors)
    if isinstance(model, MultiOutputClassifier):
        ranking = np.stack([p[:, 1] for p in model.predict_proba(test_vectors)], axis=1)
    else:
        ranking = y_pred
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        f1 = f1_score(y_test, y_pred, average="macro")
    metrics = {
        "accuracy": float(accuracy_score(y_test, y_pred)),
        "lrap": float(label_ranking_average_precision_score(y_test, ranking)),
        "f1": float(f1),
        "hamming": hamming_score(y_test, y_pred),
    }
    per_item = {
        "accuracy": np.all(y_test == y_pred, axis=1),
        "lrap": lrap_per_item(y_test, ranking),
    }
    return metrics, per_item


def lrap_per_item(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each row's label ranking average precision (scikit-learn's LRAP is their mean).

    A row whose labels are all relevant or all irrelevant scores 1, as in scikit-learn.
    """
    values = np.ones(len(y_true))
    for row, (relevant, row_scores) in enumerate(zip(y_true.astype(bool), scores, strict=True)):
        if 0 < relevant.sum() < len(relevant):
            at_least = row_scores[None, :] >= row_scores[relevant][:, None]
            ranks = at_least.sum(axis=1)
            relevant_ranks = (at_least & relevant[None, :]).sum(axis=1)
            values[row] = float(np.mean(relevant_ranks / ranks))
    return values


def hamming_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over rows of |true ∩ predicted| / |true ∪ predicted|; two empty rows score 1."""
    true, pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    union = (true | pred).sum(axis=1)
    overlap = (true & pred).sum(axis=1)
    return float(np.where(union == 0, 1.0, overlap / np.maximum(union, 1)).mean())
