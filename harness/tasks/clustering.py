"""Image clustering as MIEB scores it (mteb's ``AbsTaskClusteringLegacy`` for images).

Reads the layout of MIEB's image clustering datasets, which are its classification datasets
(see ``harness/tasks/labelled.py``): config ``default``, columns ``image`` and ``label``. The
images of a split are encoded without a role (``prompts.query`` is the instruction), clustered once
by ``MiniBatchKMeans`` with k = the number of distinct labels in the split, ``batch_size=500``,
``n_init="auto"`` and ``random_state=42``, and scored with V-measure, NMI (main score), ARI and
Hungarian cluster accuracy. There is one run per split: no repetitions, no subsampling.

Reproduced behaviour of mteb: its CLIP-style wrappers hand torch tensors to scikit-learn, which
fits them in float64, so ``fit_dtype`` defaults to ``float64``; ``fit_dtype: float32`` fits the
float32 vectors as they are (mteb's path for models that return numpy arrays).

Only image clustering (category ``i2c``) is served: mteb's legacy text clustering clusters each
row's list of sentences separately and reports V-measure only, a different protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import PositiveInt

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.scoring.bootstrap import UnitScores
from harness.scoring.clustering import (
    KMEANS_BATCH_SIZE,
    KMEANS_SEED,
    METRIC_KEYS,
    FitDtype,
    cluster_assignments,
    clustering_metrics,
)
from harness.tasks.base import Protocol, SplitOutcome, TaskType
from harness.tasks.definition import TaskDefinition
from harness.tasks.labelled import LabelledSplit, load_labelled
from harness.tasks.loading import column


class ClusteringProtocol(Protocol):
    """mteb's MiniBatchKMeans constants, and the array type the fit sees (``float64``, as for
    mteb's CLIP-style wrappers, or ``float32``)."""

    batch_size: PositiveInt = KMEANS_BATCH_SIZE
    seed: int = KMEANS_SEED
    fit_dtype: FitDtype = "float64"


class Clustering(TaskType[LabelledSplit]):
    """Images clustered by MiniBatchKMeans and compared with their labels."""

    name = "clustering"
    default_main_score = "nmi"
    metrics = METRIC_KEYS
    protocol_model = ClusteringProtocol

    def protocol(self, task: TaskDefinition) -> ClusteringProtocol:
        """The validated protocol; the category must be image clustering (``i2c``)."""
        protocol = super().protocol(task)
        assert isinstance(protocol, ClusteringProtocol)
        if task.sides.query != ("image",) or not task.sides.labels:
            raise HarnessError(
                f"task {task.name}: clustering serves image clustering (category i2c), not "
                f"{task.category}; mteb's text clustering follows another protocol"
            )
        return protocol

    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> LabelledSplit:
        """The first ``limit`` images of ``split``, each with one label."""
        self.protocol(task)
        data = load_labelled(task, split)
        _check_single_labels(task, split, data.labels)
        return data.head(limit)

    def score(self, task: TaskDefinition, loaded: LabelledSplit, encoder: Encoder) -> SplitOutcome:
        """Encode the images, fit MiniBatchKMeans once, compare the clusters with the labels."""
        protocol = self.protocol(task)
        encoded = encoder.encode(
            loaded.items, role=None, instruction=task.prompts.query, task=task.name
        )
        labels = [label for label, keep in zip(loaded.labels, encoded.kept, strict=True) if keep]
        if not labels:
            raise HarnessError(
                f"task {task.name}: no image of split {loaded.split!r} could be encoded"
            )
        assignments = cluster_assignments(
            encoded.vectors[encoded.kept],
            len(set(labels)),
            batch_size=protocol.batch_size,
            seed=protocol.seed,
            fit_dtype=protocol.fit_dtype,
        )
        metrics = clustering_metrics(labels, assignments)
        main = self.main_score(task)
        units = {}
        if main in metrics:
            codes = np.unique(np.asarray(labels), return_inverse=True)[1]
            unit_ids = [f"{row}:{label}" for row, label in enumerate(labels)]
            units["default"] = UnitScores.build(main, unit_ids, labels=codes, clusters=assignments)
        return SplitOutcome([self.subset_scores(task, metrics)], list(encoded.skipped), units)


def _check_single_labels(task: TaskDefinition, split: str, labels: Sequence[Any]) -> None:
    """Each item needs one hashable label (not a list of labels)."""
    for row, label in enumerate(labels):
        if isinstance(label, list | dict):
            raise HarnessError(
                f"task {task.name}: row {row} of split {split!r} has the label {label!r}; "
                f"clustering needs one label per image in column {column(task, 'label')!r}. "
                "Point dataset.columns.label at a single-label column."
            )
