"""Linear probe (MIEB's "ImageClassification", mteb's ``AbsTaskClassification``), scored as mteb.

Reads the layout of MIEB's classification datasets (see ``harness/tasks/labelled.py``): config
``default`` with a ``train`` split and the evaluation split, columns ``image`` (or ``text``) and
``label``; CIFAR10's ``img``, GTSRB's ``webp``/``cls`` and the like are mapped under
``dataset.columns``.

The protocol, as mteb 2.26 runs it (constants under ``protocol:``):

- k-shot sampling of the train split, ``samples_per_label`` rows per label in each of
  ``n_experiments`` experiments (MIEB's image tasks: 16 and 5, the defaults here; STL10 keeps
  mteb's base defaults 8 and 10). Each experiment re-seeds ``RandomState(seed=42)`` and shuffles
  the previous experiment's permutation; see ``harness.scoring.classification.kshot_samples``.
  A label with fewer train rows than asked contributes all it has, as in mteb; a warning says
  so. Labels of the evaluation split that never occur in the train split are kept, as in mteb:
  the classifier cannot predict them, and a warning says so.
- The union of the sampled train rows is encoded in one encoder call, the evaluation split in
  another, without a role (mteb passes no prompt type); ``prompts.query`` is the instruction.
- ``LogisticRegression(max_iter=100, random_state=42)`` is fitted per experiment; accuracy
  (main score), macro/weighted F1, precision and recall, ``ap``/``ap_weighted`` for binary
  evaluation labels; means over the experiments plus ``scores_per_experiment``.
- ``fit_dtype`` (default ``float64``): mteb's CLIP-style wrappers return torch tensors, which
  scikit-learn converts to float64 before fitting (a float32 numpy array, as
  sentence-transformers models return, is fitted in float32). On identical embeddings the two
  differ in the 4th decimal; the dtype is recorded with the protocol in every result.
- ``exclude_train_rows`` drops train rows by index before sampling, as mteb's Birdsnap does
  with its corrupted image (row 3854).
- ``cross_validation_folds`` (mteb's ``is_cross_validation`` with ``n_splits``; MAEB's audio
  classification tasks: 5): the evaluation split must be the train split; its rows are encoded
  once and split into that many folds, each fold's train rows k-shot sampled (see
  ``harness.scoring.cross_validation``), one experiment per fold (``n_experiments`` is unused,
  as in mteb). The interval's units are then the folds.
- ``subsets`` (``{config: [languages]}``) scores each config as its own subset (MAEB's MInDS14
  and SIBFLEURS: one per language); mteb samples each subset afresh.

``--limit N`` scores the first N rows of the evaluation split; the train sample is unchanged.
A dataset without the train split, a train sample of a single label, or a label column of label
lists (use ``multilabel_classification``) is a clear error, never a silent fallback.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, PositiveInt

from harness.core.encoder import Encoded, Encoder
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.scoring.classification import (
    CLASSIFICATION_METRICS,
    ClassificationError,
    ExperimentScores,
    FitDtype,
    average_experiments,
    kshot_samples,
    linear_probe_scores,
)
from harness.scoring.cross_validation import kfold_kshot_samples
from harness.tasks.base import LoadedSplit, SplitOutcome, TaskType
from harness.tasks.chance import uniform_guess
from harness.tasks.definition import TaskDefinition
from harness.tasks.labelled import LabelledSplit, load_labelled
from harness.tasks.labelled_rows import LabelledRows

logger = logging.getLogger(__name__)


class LinearProbeProtocol(LabelledRows):
    """mteb's k-shot logistic-regression constants (MIEB's image-task values), and mteb's
    per-task reshaping of the splits (``harness.tasks.labelled_rows``)."""

    samples_per_label: PositiveInt = 16
    n_experiments: PositiveInt = 5
    seed: int = 42
    max_iter: PositiveInt = 100
    fit_dtype: FitDtype = "float64"
    train_split: str = "train"
    exclude_train_rows: tuple[int, ...] = ()
    cross_validation_folds: int | None = Field(default=None, ge=2)
    subsets: dict[str, list[str]] = Field(default_factory=dict)

    unrecorded_defaults = (*LabelledRows.unrecorded_defaults, "cross_validation_folds", "subsets")


@dataclass(frozen=True, kw_only=True)
class ProbeSplit(LoadedSplit):
    """The train split, the train rows of each experiment (``samples``), and the evaluation
    rows; when cross-validating, ``train`` is ``test`` and ``folds`` holds each experiment's
    evaluation rows."""

    train: LabelledSplit
    samples: list[list[int]]
    test: LabelledSplit
    folds: list[list[int]] | None = None

    def input_counts(self) -> dict[str, int]:
        """The sampled train rows (each encoded once), and the evaluation rows."""
        if self.folds is not None:
            return {"items": len(self.test.items)}
        return {"train": len(set().union(*self.samples)), "test": len(self.test.items)}


@dataclass(frozen=True)
class EncodedSample:
    """Vectors of the sampled train rows and of the evaluation rows, with their labels."""

    train_vectors: np.ndarray
    train_labels: list
    experiments: list[list[int]]
    test_vectors: np.ndarray
    test_labels: list
    skipped: list[str]


@dataclass(frozen=True, kw_only=True)
class ProbeSubsets(LoadedSplit):
    """Each subset's probe split: ``default``, or each config of ``protocol.subsets``."""

    subsets: dict[str, ProbeSplit]

    def input_counts(self) -> dict[str, int]:
        """The inputs of every subset, by kind."""
        counts: dict[str, int] = {}
        for part in self.subsets.values():
            for kind, count in part.input_counts().items():
                counts[kind] = counts.get(kind, 0) + count
        return counts


class LinearProbe(TaskType[ProbeSubsets]):
    """k-shot logistic regression on frozen embeddings; accuracy, F1, precision, recall."""

    name = "linear_probe"
    default_main_score = "accuracy"
    metrics = CLASSIFICATION_METRICS
    protocol_model = LinearProbeProtocol

    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> ProbeSubsets:
        """Per subset: the train split (less ``exclude_train_rows``) with its k-shot samples,
        and the first ``limit`` rows of ``split``, single labels each (or the folds of the
        train split, when cross-validating)."""
        protocol = self.protocol(task)
        assert isinstance(protocol, LinearProbeProtocol)
        load = self._load_folds if protocol.cross_validation_folds is not None else self._load
        parts = {
            name: load(task, protocol, split, limit, config)
            for name, config in subset_configs(task, protocol.subsets).items()
        }
        return ProbeSubsets(split=split, subsets=parts)

    def score(self, task: TaskDefinition, loaded: ProbeSubsets, encoder: Encoder) -> SplitOutcome:
        """Per subset: encode the sampled train rows and the evaluation rows once each (or
        the split once, when cross-validating), fit, score."""
        protocol = self.protocol(task)
        assert isinstance(protocol, LinearProbeProtocol)
        return score_subsets(
            protocol.subsets,
            loaded,
            lambda subset, part: self._score(task, protocol, encoder, subset, part),
        )

    def _load(
        self,
        task: TaskDefinition,
        protocol: LinearProbeProtocol,
        split: str,
        limit: int | None,
        config: str | None,
    ) -> ProbeSplit:
        train, test = load_train_and_test(task, protocol.train_split, split, None, config)
        for data in (train, test):
            require_label_shape(task, data.split, data.labels, lists=False)
        train = protocol.reshape(task, train, evaluated=False, seed=protocol.seed)
        test = protocol.reshape(task, test, evaluated=True, seed=protocol.seed).head(limit)
        train = exclude_rows(task, train, protocol.exclude_train_rows)
        warn_on_label_coverage(task, train.labels, test.labels, protocol.samples_per_label, split)
        samples = kshot_samples(
            train.labels, protocol.samples_per_label, protocol.n_experiments, protocol.seed
        )
        return ProbeSplit(split=split, train=train, samples=samples, test=test)

    def _score(
        self,
        task: TaskDefinition,
        protocol: LinearProbeProtocol,
        encoder: Encoder,
        subset: str,
        part: ProbeSplit,
    ) -> SplitOutcome:
        if part.folds is not None:
            return self._score_folds(task, protocol, encoder, subset, part)
        sample = encode_sample(task, encoder, part.train, part.samples, part.test)
        outcome = experiment_outcome(
            self,
            task,
            part.split,
            sample,
            lambda: linear_probe_scores(
                sample.train_vectors,
                sample.train_labels,
                sample.experiments,
                sample.test_vectors,
                sample.test_labels,
                seed=protocol.seed,
                max_iter=protocol.max_iter,
                fit_dtype=protocol.fit_dtype,
            ),
            subset,
        )
        return self._with_chance(task, outcome, subset, sample.test_labels)

    def _with_chance(
        self, task: TaskDefinition, outcome: SplitOutcome, subset: str, labels: Sequence[Any]
    ) -> SplitOutcome:
        """``outcome`` with the chance level of an accuracy main score: a guess uniform over
        the classes of the evaluation rows scored (``labels``)."""
        if self.main_score(task) == "accuracy":
            outcome.chance[subset] = uniform_guess(labels)
        return outcome

    def _load_folds(
        self,
        task: TaskDefinition,
        protocol: LinearProbeProtocol,
        split: str,
        limit: int | None,
        config: str | None,
    ) -> ProbeSplit:
        """The first ``limit`` rows of the train split (less ``exclude_train_rows``) and their
        cross-validation folds."""
        folds = protocol.cross_validation_folds
        assert folds is not None
        if split != protocol.train_split:
            raise HarnessError(
                f"task {task.name}: {folds}-fold cross-validation scores the train split "
                f"{protocol.train_split!r}, not split {split!r}. Set eval_splits to "
                f"[{protocol.train_split}], or drop protocol.cross_validation_folds to train "
                f"on {protocol.train_split!r} and score {split!r}."
            )
        data = load_labelled(task, split, config)
        require_label_shape(task, split, data.labels, lists=False)
        data = protocol.reshape(task, data, evaluated=True, seed=protocol.seed)
        data = exclude_rows(task, data, protocol.exclude_train_rows).head(limit)
        try:
            experiments = kfold_kshot_samples(
                data.labels, folds, protocol.samples_per_label, protocol.seed
            )
        except ValueError as error:
            raise HarnessError(f"task {task.name}, split {split}: {error}.") from error
        samples, tests = [f.train for f in experiments], [f.test for f in experiments]
        return ProbeSplit(split=split, train=data, samples=samples, test=data, folds=tests)

    def _score_folds(
        self,
        task: TaskDefinition,
        protocol: LinearProbeProtocol,
        encoder: Encoder,
        subset: str,
        part: ProbeSplit,
    ) -> SplitOutcome:
        """Encode the split once; fit on each fold's sample, score its evaluation rows."""
        assert part.folds is not None
        encoded = _encode(task, encoder, part.test.items)
        labels = part.test.labels
        per_experiment = []
        for number, (sample, rows) in enumerate(zip(part.samples, part.folds, strict=True)):
            train = [row for row in sample if encoded.kept[row]]
            test = [row for row in rows if encoded.kept[row]]
            try:
                scores = linear_probe_scores(
                    encoded.vectors,
                    labels,
                    [train],
                    encoded.vectors[test],
                    [labels[row] for row in test],
                    seed=protocol.seed,
                    max_iter=protocol.max_iter,
                    fit_dtype=protocol.fit_dtype,
                )
            except ClassificationError as error:
                raise HarnessError(
                    f"task {task.name}, split {part.split}, fold {number}: {error}."
                ) from error
            per_experiment += scores.metrics["scores_per_experiment"]
        metrics = {**average_experiments(per_experiment), "scores_per_experiment": per_experiment}
        per_fold = {
            name: values
            for name in CLASSIFICATION_METRICS
            if None not in (values := [scores[name] for scores in per_experiment])
        }
        units = self.mean_units(task, per_fold, list(range(len(per_experiment))), subset)
        entry = self.subset_scores(task, metrics, subset)
        scored = [labels[row] for rows in part.folds for row in rows if encoded.kept[row]]
        outcome = SplitOutcome([entry], list(encoded.skipped), units)
        return self._with_chance(task, outcome, subset, scored)


def subset_configs(task: TaskDefinition, subsets: Mapping[str, object]) -> dict[str, str | None]:
    """Each subset's config: the config of each of ``subsets`` (named under
    ``dataset.configs`` when it differs), or ``default`` (the config of part ``default``)."""
    return {name: task.dataset.configs.get(name, name) for name in subsets} or {"default": None}


def score_subsets(
    languages: Mapping[str, list[str]],
    loaded: ProbeSubsets,
    score: Callable[[str, ProbeSplit], SplitOutcome],
) -> SplitOutcome:
    """Score each subset with ``score``; a subset listed in ``languages`` gets its languages."""
    outcome = SplitOutcome([])
    for subset, part in loaded.subsets.items():
        scored = score(subset, part)
        outcome.subsets += [
            {**entry, "languages": languages[subset]} if subset in languages else entry
            for entry in scored.subsets
        ]
        outcome.skipped_inputs += scored.skipped_inputs
        outcome.units |= scored.units
        outcome.chance |= scored.chance
    return outcome


def experiment_outcome(
    kind: TaskType[Any],
    task: TaskDefinition,
    split: str,
    sample: EncodedSample,
    score: Callable[[], ExperimentScores],
    subset: str = "default",
) -> SplitOutcome:
    """Run a few-shot scorer; its protocol failures name the task and split, and the units of
    the interval are the evaluation rows."""
    try:
        scores = score()
    except ClassificationError as error:
        raise HarnessError(f"task {task.name}, split {split}: {error}.") from error
    unit_ids = [f"{row}:{label}" for row, label in enumerate(sample.test_labels)]
    return SplitOutcome(
        [kind.subset_scores(task, scores.metrics, subset)],
        sample.skipped,
        kind.mean_units(task, scores.per_item, unit_ids, subset),
    )


def load_train_and_test(
    task: TaskDefinition, train_split: str, split: str, limit: int | None, config: str | None = None
) -> tuple[LabelledSplit, LabelledSplit]:
    """The train split and the first ``limit`` rows of the evaluation split (of ``config``;
    default: the config of part ``default``)."""
    require_split(task, train_split, config)
    train = load_labelled(task, train_split, config)
    return train, load_labelled(task, split, config).head(limit)


def require_label_shape(
    task: TaskDefinition, split: str, labels: Sequence[object], *, lists: bool
) -> None:
    """Refuse lists of labels for a single-label type, and single labels for a multilabel one."""
    if all(isinstance(label, list | tuple) == lists for label in labels):
        return
    problem, fix = (
        ("single labels, not lists of labels", "Use type linear_probe for single-label data")
        if lists
        else ("lists of labels", "Use type multilabel_classification for multilabel data")
    )
    raise HarnessError(
        f"task {task.name}: the label column of split {split!r} holds {problem}. {fix}, or "
        "point dataset.columns.label at the right column."
    )


def require_split(task: TaskDefinition, split: str, config: str | None = None) -> None:
    """Fail clearly when the dataset (``config``; default: the config of part ``default``)
    lacks the train split (never train on another split)."""
    import datasets

    config = config or task.dataset.configs.get("default", "default")
    try:
        names = datasets.get_dataset_split_names(
            task.dataset.path, config, revision=task.dataset.revision
        )
    except Exception:  # unreadable here: loading the split reports the problem itself
        return
    if split not in names:
        raise HarnessError(
            f"task {task.name}: dataset {task.dataset.path} (config {config!r}) has no "
            f"{split!r} split to sample training rows from (it has {', '.join(names)}). "
            "Name the training split under protocol.train_split."
        )


def exclude_rows(task: TaskDefinition, data: LabelledSplit, rows: Sequence[int]) -> LabelledSplit:
    """``data`` without the given row indices."""
    if not rows:
        return data
    bad = [row for row in rows if not 0 <= row < len(data.items)]
    if bad:
        raise HarnessError(
            f"task {task.name}: protocol.exclude_train_rows names rows {bad} outside the train "
            f"split's {len(data.items)} rows."
        )
    drop = set(rows)
    return data.rows([i for i in range(len(data.items)) if i not in drop])


def warn_on_label_coverage(
    task: TaskDefinition,
    train_labels: Sequence[Hashable],
    test_labels: Sequence[Hashable],
    samples_per_label: int,
    split: str,
) -> None:
    """Log labels with fewer train rows than asked, and evaluation labels absent from train."""
    counts = Counter(train_labels)
    short = sorted(
        (count, repr(label)) for label, count in counts.items() if count < samples_per_label
    )
    if short:
        logger.warning(
            "task %s: %d label(s) have fewer than %d train rows (fewest: %s with %d); every "
            "experiment uses all of their rows, as mteb does.",
            task.name,
            len(short),
            samples_per_label,
            short[0][1],
            short[0][0],
        )
    unseen = sorted({repr(label) for label in test_labels if label not in counts})
    if unseen:
        logger.warning(
            "task %s: %d label(s) of split %s never occur in the train split (%s); their rows "
            "are scored as errors, as mteb does.",
            task.name,
            len(unseen),
            split,
            ", ".join(unseen[:5]),
        )


def encode_sample(
    task: TaskDefinition,
    encoder: Encoder,
    train: LabelledSplit,
    samples: list[list[int]],
    test: LabelledSplit,
) -> EncodedSample:
    """Encode the union of the sampled train rows once and the evaluation rows once.

    Experiments index the encoded union; rows skipped as bad input leave the experiments and
    the evaluation set.
    """
    union = sorted(set().union(*samples))
    encoded_train = _encode(task, encoder, [train.items[row] for row in union])
    encoded_test = _encode(task, encoder, test.items)
    position = {row: pos for pos, row in enumerate(union)}
    experiments = [
        [position[row] for row in rows if encoded_train.kept[position[row]]] for rows in samples
    ]
    kept = encoded_test.kept
    return EncodedSample(
        train_vectors=encoded_train.vectors,
        train_labels=[train.labels[row] for row in union],
        experiments=experiments,
        test_vectors=encoded_test.vectors[kept],
        test_labels=[label for label, keep in zip(test.labels, kept, strict=True) if keep],
        skipped=[*encoded_train.skipped, *encoded_test.skipped],
    )


def _encode(task: TaskDefinition, encoder: Encoder, items: list[RawItem]) -> Encoded:
    return encoder.encode(items, role=None, instruction=task.prompts.query, task=task.name)
