"""Multilabel classification (MIEB's VOC2007, mteb's ``AbsTaskMultilabelClassification``).

A type of its own rather than a linear-probe option: mteb runs it with another classifier,
sampler, label format, main score and metric set. Reads the layout of VOC2007 on the hub:
config ``default`` with ``train`` and evaluation splits, columns ``image`` and a list of label
ids (VOC2007's ``classes``, mapped with ``dataset.columns.label``).

The protocol, as mteb 2.26 runs it (constants under ``protocol:``):

- Sampling: one ``np.random.default_rng(seed=42)`` per task; each of ``n_experiments`` (5 in
  both VOC2007 tasks) experiments shuffles the train rows and keeps a row when any of its labels
  has been kept fewer than ``samples_per_label`` times (8: VOC2007 inherits mteb's base value).
  See ``harness.scoring.classification.multilabel_kshot_samples``.
- An evaluation split larger than ``max_eval_samples`` is cut to that many rows by second-order
  iterative stratification with seed 42 (VOC2007.v2 and mteb's default: 3000; VOC2007: null).
- The union of the sampled train rows is encoded once, the evaluation rows once.
- Labels are binarised over the evaluation split's labels; metrics ``accuracy`` (subset
  accuracy), ``lrap`` (main score), ``f1`` (macro) and ``hamming`` (mean per-row Jaccard
  overlap), averaged over the experiments, plus ``scores_per_experiment``.

Reproduced defects of mteb:

- VOC2007 declares ``evaluator = MultiOutputClassifier(LogisticRegression())``, but the
  abstract task fits ``evaluator_model``, a ``KNeighborsClassifier(n_neighbors=5)``: the
  declared classifier has no effect, and MIEB's VOC2007 numbers are kNN numbers. With kNN,
  LRAP is computed on the hard 0/1 predictions, so it ranks tied labels. ``classifier:
  logistic`` runs the declared one-vs-rest logistic regression instead, with LRAP on its
  probabilities (not MIEB-comparable).
- The generator outlives a split and a subset: a later evaluation split or subset continues
  the random stream where the earlier ones stopped (splits outermost, then subsets), so a
  sample depends on what was evaluated before it. This is reproduced from the positions in
  ``eval_splits`` and ``protocol.subsets``.
- mteb fits on ``np.stack`` of per-row tensors, a float32 numpy array (``fit_dtype: float32``).

``protocol.subsets`` (``{config: [languages]}``) scores each config as its own subset, with its
own train and evaluation splits (MAEB's FSD2019Kaggle: ``curated`` and ``noisy``).

``--limit N`` scores the first N rows of the (cut) evaluation split. Fewer sampled train rows
than neighbours, or (with ``classifier: logistic``) a label present in all or none of them, is
a clear error.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from pydantic import Field, PositiveInt

from harness.core.encoder import Encoder
from harness.scoring.classification import (
    MULTILABEL_METRICS,
    FitDtype,
    MultilabelClassifier,
    iterative_stratified_subsample,
    multilabel_kshot_samples,
    multilabel_scores,
)
from harness.tasks.base import Protocol, SplitOutcome, TaskType
from harness.tasks.definition import TaskDefinition
from harness.tasks.labelled import LabelledSplit
from harness.tasks.linear_probe import (
    ProbeSplit,
    ProbeSubsets,
    encode_sample,
    experiment_outcome,
    load_train_and_test,
    require_label_shape,
    score_subsets,
    subset_configs,
    warn_on_label_coverage,
)


class MultilabelProtocol(Protocol):
    """mteb's multilabel constants (MIEB's VOC2007.v2 values)."""

    samples_per_label: PositiveInt = 8
    n_experiments: PositiveInt = 5
    seed: int = 42
    classifier: MultilabelClassifier = "knn"
    n_neighbors: PositiveInt = 5
    max_eval_samples: PositiveInt | None = 3000
    fit_dtype: FitDtype = "float32"
    train_split: str = "train"
    subsets: dict[str, list[str]] = Field(default_factory=dict)

    unrecorded_defaults = ("subsets",)


class MultilabelClassification(TaskType[ProbeSubsets]):
    """k-shot multilabel classification on frozen embeddings; LRAP, F1, accuracy, hamming."""

    name = "multilabel_classification"
    default_main_score = "lrap"
    metrics = MULTILABEL_METRICS
    protocol_model = MultilabelProtocol

    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> ProbeSubsets:
        """Each subset's train split with its k-shot samples, and its (cut) evaluation split's
        first ``limit`` rows, with lists of labels."""
        protocol = self.protocol(task)
        assert isinstance(protocol, MultilabelProtocol)
        data = {
            name: load_train_and_test(task, protocol.train_split, split, None, config)
            for name, config in subset_configs(task, protocol.subsets).items()
        }
        sizes = [len(train.items) for train, _ in data.values()]
        earlier_splits = task.eval_splits.index(split) if split in task.eval_splits else 0
        parts = {}
        for position, (name, (train, test)) in enumerate(data.items()):
            for part in (train, test):
                require_label_shape(task, part.split, part.labels, lists=True)
            test = _cut(test, protocol.max_eval_samples, protocol.seed, limit)
            warn_on_label_coverage(
                task, _flat(train.labels), _flat(test.labels), protocol.samples_per_label, split
            )
            earlier = sizes * earlier_splits + sizes[:position]
            samples = multilabel_kshot_samples(
                train.labels,
                protocol.samples_per_label,
                protocol.n_experiments,
                protocol.seed,
                earlier_shuffles=[size for size in earlier for _ in range(protocol.n_experiments)],
            )
            parts[name] = ProbeSplit(split=split, train=train, samples=samples, test=test)
        return ProbeSubsets(split=split, subsets=parts)

    def score(self, task: TaskDefinition, loaded: ProbeSubsets, encoder: Encoder) -> SplitOutcome:
        """Per subset: encode the sampled train rows and the evaluation rows once each, fit,
        score."""
        protocol = self.protocol(task)
        assert isinstance(protocol, MultilabelProtocol)
        return score_subsets(
            protocol.subsets,
            loaded,
            lambda subset, part: self._score_subset(task, protocol, encoder, subset, part),
        )

    def _score_subset(
        self,
        task: TaskDefinition,
        protocol: MultilabelProtocol,
        encoder: Encoder,
        subset: str,
        part: ProbeSplit,
    ) -> SplitOutcome:
        sample = encode_sample(task, encoder, part.train, part.samples, part.test)
        return experiment_outcome(
            self,
            task,
            part.split,
            sample,
            lambda: multilabel_scores(
                sample.train_vectors,
                sample.train_labels,
                sample.experiments,
                sample.test_vectors,
                sample.test_labels,
                classifier=protocol.classifier,
                n_neighbors=protocol.n_neighbors,
                fit_dtype=protocol.fit_dtype,
            ),
            subset,
        )


def _cut(
    test: LabelledSplit, max_eval_samples: int | None, seed: int, limit: int | None
) -> LabelledSplit:
    """mteb's stratified cut to ``max_eval_samples`` rows, then the first ``limit`` rows."""
    rows = list(range(len(test.items)))
    if max_eval_samples is not None and len(rows) > max_eval_samples:
        rows = iterative_stratified_subsample(test.labels, max_eval_samples, seed)
    return test.rows(rows[:limit] if limit is not None else rows)


def _flat(label_sets: Sequence[Sequence[Hashable]]) -> list[Hashable]:
    return [label for labels in label_sets for label in labels]
