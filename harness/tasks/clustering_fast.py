"""Clustering as mteb's current ``AbsTaskClustering`` runs it (MAEB's AudioClustering).

Reads a labelled split (see ``harness/tasks/labelled.py``): config ``default``, an input column
named after each of the category's query modalities (``audio``, ``text``, ``image``, ``video``;
MVEB's ``va2c`` reads a clip's ``video`` and ``audio`` into one item) and ``label`` (MAEB's
VoxPopuliGenderClustering maps ``gender``). MAEB writes ``a2a``; ``a2c`` reads the same.

The protocol (constants under ``protocol:``, defaults mteb's base class values; see
``harness.scoring.clustering_fast`` for the random stream):

- ``max_fraction_of_documents_to_embed`` (0.04) or ``max_document_to_embed``: the rows embedded,
  drawn first; MAEB's three tasks set both to null and embed every row;
- ``n_experiments`` (mteb's ``n_clusters``: 10) bootstrap samples of ``sample_size`` (mteb's
  ``max_documents_per_cluster``: 16,384) rows drawn with replacement, each clustered by
  MiniBatchKMeans (``kmeans_batch_size`` 512, ``seed`` 42) into as many clusters as the
  embedded rows have labels;
- V-measure (main score) and AMI, means and standard deviations over the experiments, and the
  per-experiment values (``v_measures``, ``ami_scores``);
- ``fit_dtype`` (``float32``): the array type the fit sees; mteb's audio wrappers (CLAP,
  Whisper, wav2vec2) return float32 numpy arrays, a wrapper that returns torch tensors is
  fitted in float64 (MVEB's video wrappers, X-CLIP and LCO-Embedding: its entries set
  ``float64``).

Each split starts a fresh ``random.Random(seed)``; mteb's stream outlives a split, so a task
with several evaluation splits or subsets would differ after the first (MAEB's clustering
tasks have one of each). ``--limit N`` keeps the first N embedded rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pydantic import Field, PositiveInt, model_validator

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.scoring.clustering_fast import (
    KMEANS_BATCH_SIZE,
    MAX_FRACTION_TO_EMBED,
    METRIC_KEYS,
    N_EXPERIMENTS,
    SAMPLE_SIZE,
    SEED,
    FitDtype,
    bootstrap_clustering,
    embedded_rows,
)
from harness.tasks.base import LoadedSplit, SplitOutcome, TaskType
from harness.tasks.definition import TaskDefinition
from harness.tasks.labelled import LabelledSplit, load_labelled
from harness.tasks.labelled_rows import LabelledRows
from harness.tasks.loading import column


class ClusteringFastProtocol(LabelledRows):
    """mteb's bootstrapped-clustering constants (its base class values), and mteb's per-task
    reshaping of the split (``harness.tasks.labelled_rows``: CREMA_DClustering's 2,048-row cut)."""

    max_fraction_of_documents_to_embed: float | None = Field(
        default=MAX_FRACTION_TO_EMBED, gt=0, le=1
    )
    max_document_to_embed: PositiveInt | None = None
    n_experiments: PositiveInt = N_EXPERIMENTS
    sample_size: PositiveInt = SAMPLE_SIZE
    kmeans_batch_size: PositiveInt = KMEANS_BATCH_SIZE
    seed: int = SEED
    fit_dtype: FitDtype = "float32"

    @model_validator(mode="after")
    def _one_limit(self) -> ClusteringFastProtocol:
        if self.max_fraction_of_documents_to_embed and self.max_document_to_embed:
            raise ValueError(
                "set max_fraction_of_documents_to_embed or max_document_to_embed, not both "
                "(null the other)"
            )
        return self


@dataclass(frozen=True, kw_only=True)
class ClusteringSplit(LoadedSplit):
    """The embedded rows with their labels, and the random stream's state after drawing them
    (the bootstrap samples continue it)."""

    data: LabelledSplit
    rng_state: tuple[Any, ...]

    def input_counts(self) -> dict[str, int]:
        """The embedded rows."""
        return self.data.input_counts()


class ClusteringFast(TaskType[ClusteringSplit]):
    """Bootstrap samples clustered by MiniBatchKMeans; mean V-measure and AMI."""

    name = "clustering_fast"
    default_main_score = "v_measure"
    metrics = METRIC_KEYS
    protocol_model = ClusteringFastProtocol

    def protocol(self, task: TaskDefinition) -> ClusteringFastProtocol:
        """The validated protocol."""
        protocol = super().protocol(task)
        assert isinstance(protocol, ClusteringFastProtocol)
        return protocol

    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> ClusteringSplit:
        """The rows of ``split`` to embed (the first ``limit`` of them), one label each."""
        protocol = self.protocol(task)
        data = protocol.reshape(
            task, load_labelled(task, split), evaluated=True, seed=protocol.seed
        )
        for row, label in enumerate(data.labels):
            if isinstance(label, list | dict):
                raise HarnessError(
                    f"task {task.name}: row {row} of split {split!r} has the label {label!r}; "
                    f"clustering needs one label per item in column {column(task, 'label')!r}. "
                    "Point dataset.columns.label at a single-label column."
                )
        rng = random.Random(protocol.seed)
        rows = embedded_rows(
            len(data.labels),
            rng,
            max_fraction=protocol.max_fraction_of_documents_to_embed,
            max_documents=protocol.max_document_to_embed,
        )
        if rows is not None:
            data = data.rows(rows)
        return ClusteringSplit(split=split, data=data.head(limit), rng_state=rng.getstate())

    def score(
        self, task: TaskDefinition, loaded: ClusteringSplit, encoder: Encoder
    ) -> SplitOutcome:
        """Encode the rows, cluster the bootstrap samples, compare the clusters with the labels."""
        protocol = self.protocol(task)
        encoded = encoder.encode(
            loaded.data.items, role=None, instruction=task.prompts.query, task=task.name
        )
        labels = [
            label for label, keep in zip(loaded.data.labels, encoded.kept, strict=True) if keep
        ]
        if not labels:
            raise HarnessError(
                f"task {task.name}: no item of split {loaded.split!r} could be encoded"
            )
        rng = random.Random()
        rng.setstate(loaded.rng_state)
        scores = bootstrap_clustering(
            encoded.vectors[encoded.kept],
            labels,
            rng,
            n_experiments=protocol.n_experiments,
            sample_size=protocol.sample_size,
            batch_size=protocol.kmeans_batch_size,
            seed=protocol.seed,
            fit_dtype=protocol.fit_dtype,
        )
        units = self.mean_units(
            task,
            {"v_measure": scores.v_measures, "ami": scores.ami_scores},
            list(range(protocol.n_experiments)),
        )
        metrics = scores.metrics()
        return SplitOutcome([self.subset_scores(task, metrics)], list(encoded.skipped), units)
