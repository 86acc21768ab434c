"""Labelled splits (input columns and a label column), shared by the classification-style types.

MIEB's image classification, zero-shot and clustering datasets keep one config (``default``)
with ``train``/``test`` splits and the columns ``image`` (or ``text``) and ``label``; the
definition maps other names under ``dataset.columns`` and another config under
``dataset.configs.default``. A category with several query modalities reads one column per
modality into each item (MVEB's ``va2c``: the clip's ``video`` and its ``audio`` track).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.tasks.base import LoadedSplit
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import column, load_part, require_columns, undecoded


@dataclass(frozen=True)
class LabelledSplit(LoadedSplit):
    """Items and their labels; ``label_names`` come from a ``ClassLabel`` feature when present."""

    items: list[RawItem]
    labels: list[Any]
    label_names: list[str] | None

    def input_counts(self) -> dict[str, int]:
        """The items."""
        return {"items": len(self.items)}

    def head(self, limit: int | None) -> LabelledSplit:
        """The first ``limit`` rows (all rows when ``limit`` is None)."""
        if limit is None:
            return self
        return replace(self, items=self.items[:limit], labels=self.labels[:limit])

    def rows(self, indices: Sequence[int]) -> LabelledSplit:
        """The rows at ``indices``, in that order."""
        items, labels = [self.items[i] for i in indices], [self.labels[i] for i in indices]
        return replace(self, items=items, labels=labels)


def load_labelled(task: TaskDefinition, split: str, config: str | None = None) -> LabelledSplit:
    """Load ``split`` of ``config`` (default: the config of part ``default``) as raw items
    (stored values, nothing decoded) with their labels; each input column is named after one
    of the category's query modalities (``image``, ``text``, ``audio``, ``video``...)."""
    config = config or task.dataset.configs.get("default", "default")
    data = load_part(task, "default", config, split)
    input_columns = {part: column(task, part) for part in task.sides.query}
    label_column = column(task, "label")
    require_columns(task, data, config, [*input_columns.values(), label_column])
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
    from datasets import ClassLabel

    feature = data.features[label_column]
    names = list(feature.names) if isinstance(feature, ClassLabel) else None
    data = undecoded(data, input_columns.values())
    ids = data[column(task, "id")] if column(task, "id") in data.column_names else range(len(data))
    cells = {part: list(data[name]) for part, name in input_columns.items()}
    items = [
        RawItem.read(
            item_id, {part: (input_columns[part], values[row]) for part, values in cells.items()}
        )
        for row, item_id in enumerate(ids)
    ]
    return LabelledSplit(items, labels, names, split=split)
