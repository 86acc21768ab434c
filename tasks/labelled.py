"""Labelled splits (an input column and a label column), shared by the classification-style types.

MIEB's image classification, zero-shot and clustering datasets keep one config (``default``)
with ``train``/``test`` splits and the columns ``image`` (or ``text``) and ``label``; the
definition maps other names under ``dataset.columns`` and another config under
``dataset.configs.default``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import datasets

from harness.core.errors import HarnessError
from harness.core.items import RawItem
from tasks.definition import TaskDefinition
from tasks.loading import column, load_part, require_columns, undecoded_images


@dataclass(frozen=True)
class LabelledSplit:
    """Items and their labels; ``label_names`` come from a ``ClassLabel`` feature when present."""

    items: list[RawItem]
    labels: list[Any]
    label_names: list[str] | None


def load_labelled(task: TaskDefinition, split: str) -> LabelledSplit:
    """Load ``split`` as raw items (images stay undecoded) with their labels."""
    config = task.dataset.configs.get("default", "default")
    data = load_part(task, "default", config, split)
    input_column = column(task, "image" if task.query_modality == "i" else "text")
    label_column = column(task, "label")
    require_columns(task, data, config, [input_column, label_column])
    labels = list(data[label_column])
    if not labels or all(label is None or label == [] for label in labels):
        raise HarnessError(
            f"task {task.name}: the label column {label_column!r} of config {config!r}, split "
            f"{split!r} is empty. Point dataset.columns.label at the column that holds labels."
        )
    missing = [i for i, label in enumerate(labels) if label is None]
    if missing:
        raise HarnessError(
            f"task {task.name}: {len(missing)} row(s) of split {split!r} have no label "
            f"(first at row {missing[0]}); remove them or fill the {label_column!r} column."
        )
    feature = data.features[label_column]
    names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    if task.query_modality == "i":
        data = undecoded_images(data, input_column)
    ids = data[column(task, "id")] if column(task, "id") in data.column_names else range(len(data))
    part = "image" if task.query_modality == "i" else "text"
    items = [
        RawItem.read(item_id, **{part: value, f"{part}_column": input_column})
        for item_id, value in zip(ids, data[input_column], strict=True)
    ]
    return LabelledSplit(items, labels, names)
