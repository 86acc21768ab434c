"""Pair classification (mteb's ``AbsTaskPairClassification``; MAEB's AudioPairClassification,
MVEB's VideoPairClassification).

Reads one table per split (config ``default``): two input columns and a 0/1 label column,
named as mteb's base class names them (``sentence1``, ``sentence2``, ``labels``); MAEB's tasks
name them ``audio1``, ``audio2`` and ``label``, mapped under ``dataset.columns``. The category
names the modality of each column (``a2a``, ``t2t``, ``v2v``...). A side of several modalities
reads one column per modality, named after the modality and the side's number (MVEB's ``va2va``:
``video1`` and ``audio1``, then ``video2`` and ``audio2``), each mappable under
``dataset.columns``.

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
from harness.tasks.base import LoadedSplit, SplitOutcome, TaskType
from harness.tasks.chance import expected_average_precision
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import column, load_part, require_columns, undecoded

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
        config = task.dataset.configs.get("default", "default")
        data = load_part(task, "default", config, split)
        sides = [
            side_columns(task, side, number)
            for number, side in enumerate((task.sides.query, task.sides.document), start=1)
        ]
        label_column = column(task, "labels")
        require_columns(
            task, data, config, [*(name for side in sides for name in side.values()), label_column]
        )
        if limit is not None:
            data = data.select(range(min(limit, len(data))))
        labels = _labels(task, list(data[label_column]), label_column, split)
        items: list[RawItem] = []
        for side in sides:
            stored = undecoded(data, side.values())
            cells = {part: list(stored[name]) for part, name in side.items()}
            item_id = "+".join(side.values())
            items += [
                RawItem.read(
                    f"{row}/{item_id}",
                    {part: (side[part], values[row]) for part, values in cells.items()},
                )
                for row in range(len(labels))
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
        labels = np.asarray(loaded.labels)[kept].tolist()
        metrics = pair_classification_scores(
            encoded.vectors[:n][kept],
            encoded.vectors[n:][kept],
            labels,
            similarity=encoder.adapter.meta.similarity,
        )
        outcome = SplitOutcome([self.subset_scores(task, metrics)], list(encoded.skipped))
        main = self.main_score(task)
        # One score's AP has an exact chance level; the best of five scores' (max_ap) has none.
        if main.endswith("_ap") and not main.startswith("max_") and sum(labels) > 0:
            outcome.chance["default"] = expected_average_precision(sum(labels), len(labels))
        return outcome


def side_columns(task: TaskDefinition, side: tuple[str, ...], number: int) -> dict[str, str]:
    """Each modality of a pair's side ``number`` (1 or 2) with its column: the type's
    ``sentence1``/``sentence2`` for a single modality, else ``<modality><number>``."""
    if len(side) == 1:
        return {side[0]: column(task, PAIR_COLUMNS[number - 1])}
    return {part: column(task, f"{part}{number}") for part in side}


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
