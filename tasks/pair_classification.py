"""Pair classification (mteb's ``AbsTaskPairClassification``; MAEB's AudioPairClassification).

Reads one table per split (config ``default``): two input columns and a 0/1 label column,
named as mteb's base class names them (``sentence1``, ``sentence2``, ``labels``); MAEB's tasks
name them ``audio1``, ``audio2`` and ``label``, mapped under ``dataset.columns``. The category
names the modality of each column (``a2a``, ``t2t``, ``i2t``...).

Both columns are encoded in one batched call without a role and with ``prompts.query`` as the
instruction (mteb passes no prompt type for either column), so an input in both columns is
encoded once. The pairs are scored as ``harness.scoring.pair_classification`` describes:
accuracy, F1, precision, recall and average precision for the model's similarity, cosine,
Manhattan, Euclidean and dot scores, and their maxima (main score ``max_ap``). A pair whose
input is skipped as bad input (``--skip-bad-inputs``) is left out.

mteb's text tasks of format v1 store all pairs in one row of lists; that layout is not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.scoring.pair_classification import METRIC_KEYS, pair_classification_scores
from tasks.base import LoadedSplit, SplitOutcome, TaskType
from tasks.definition import TaskDefinition
from tasks.loading import column, load_part, require_columns, undecoded

PAIR_COLUMNS = ("sentence1", "sentence2")


@dataclass(frozen=True, kw_only=True)
class LabelledPairs(LoadedSplit):
    """The first items, then the second items, and each pair's 0/1 label."""

    items: list[RawItem]
    labels: list[int]

    def input_counts(self) -> dict[str, int]:
        """Both sides' items of every pair."""
        return {"items": len(self.items)}


class PairClassification(TaskType[LabelledPairs]):
    """Pairs scored by similarity; threshold accuracy, F1 and average precision."""

    name = "pair_classification"
    default_main_score = "max_ap"
    metrics = METRIC_KEYS

    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> LabelledPairs:
        """The first ``limit`` pairs of ``split`` with their labels."""
        self.protocol(task)
        if any(len(side) != 1 for side in (task.sides.query, task.sides.document)):
            raise HarnessError(
                f"task {task.name}: each pair column holds one kind of input, so the category "
                f"must have one modality on each side, such as a2a or t2t (it is "
                f"{task.category!r})."
            )
        config = task.dataset.configs.get("default", "default")
        data = load_part(task, "default", config, split)
        pair = [column(task, name) for name in PAIR_COLUMNS]
        label_column = column(task, "labels")
        require_columns(task, data, config, [*pair, label_column])
        if limit is not None:
            data = data.select(range(min(limit, len(data))))
        labels = _labels(task, list(data[label_column]), label_column, split)
        items: list[RawItem] = []
        for name, (part,) in zip(pair, (task.sides.query, task.sides.document), strict=True):
            values = undecoded(data, [name])[name]
            items += [
                RawItem.read(f"{row}/{name}", {part: (name, value)})
                for row, value in enumerate(values)
            ]
        return LabelledPairs(split=split, items=items, labels=labels)

    def score(self, task: TaskDefinition, loaded: LabelledPairs, encoder: Encoder) -> SplitOutcome:
        """Encode both columns, score the kept pairs."""
        encoded = encoder.encode(
            loaded.items, role=None, instruction=task.prompts.query, task=task.name
        )
        n = len(loaded.labels)
        kept = encoded.kept[:n] & encoded.kept[n:]
        if not kept.any():
            raise HarnessError(
                f"task {task.name}: no pair of split {loaded.split!r} is left after skipping "
                "bad inputs."
            )
        metrics = pair_classification_scores(
            encoded.vectors[:n][kept],
            encoded.vectors[n:][kept],
            np.asarray(loaded.labels)[kept].tolist(),
            similarity=encoder.adapter.meta.similarity,
        )
        return SplitOutcome([self.subset_scores(task, metrics)], list(encoded.skipped))


def _labels(task: TaskDefinition, labels: list[Any], label_column: str, split: str) -> list[int]:
    """The labels as 0/1 integers; a clear error for an empty split or any other value."""
    if not labels:
        raise HarnessError(f"task {task.name}: split {split!r} has no pairs.")
    bad = [i for i, label in enumerate(labels) if label not in (0, 1)]
    if bad:
        raise HarnessError(
            f"task {task.name}: pair classification needs a label of 0 or 1 for every pair "
            f"in column {label_column!r} of split {split!r}; {len(bad)} row(s) have another "
            f"(first at row {bad[0]}: {labels[bad[0]]!r}). Map the label column under "
            "dataset.columns.labels."
        )
    return [int(label) for label in labels]
