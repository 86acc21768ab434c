"""Rows and labels of a labelled split as mteb's tasks reshape them before scoring.

Several MAEB and MVEB tasks change their data in ``dataset_transform``:
CommonLanguageAgeDetection drops two age labels and cuts its test split to 2,048 rows,
CREMA_DClustering and MVEB's MELD tasks cut their split the same way, VoxCelebSA drops the
``Disagreement`` label, IEMOCAPGender turns ``Female``/``Male`` into 0/1. These are protocol
options of the labelled task types (``linear_probe``, ``clustering_fast``,
``zero_shot_classification``), applied in mteb's order to each split as it is loaded:

- ``exclude_labels``: rows with one of these labels are dropped (from every split); a label
  of a ``ClassLabel`` column matches by its id or its name (MELDEmotionAudioVideoClustering
  drops ``neutral`` by name, as mteb's ``str2int`` does);
- ``label_ids``: each label is replaced by its id (every label must be listed);
- ``stratified_subsample``: the evaluated split, when larger, is cut to this many rows by
  ``datasets``' stratified shuffle split with ``default_rng(seed)``, as mteb's
  ``stratified_subsampling`` does (labels that are not a ``ClassLabel`` are stratified by
  their position among the sorted string forms, as mteb's cast to ``ClassLabel`` does); the
  kept rows are in the order the split yields them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
from pydantic import Field, PositiveInt

from harness.core.errors import HarnessError
from harness.tasks.base import Protocol
from harness.tasks.definition import TaskDefinition
from harness.tasks.labelled import LabelledSplit


class LabelledRows(Protocol):
    """mteb's per-task reshaping of a labelled split (none by default)."""

    unrecorded_defaults: ClassVar[tuple[str, ...]] = (
        "exclude_labels",
        "label_ids",
        "stratified_subsample",
    )
    exclude_labels: tuple[str | int, ...] = ()
    label_ids: dict[str, int] = Field(default_factory=dict)
    stratified_subsample: PositiveInt | None = None

    def reshape(
        self, task: TaskDefinition, data: LabelledSplit, *, evaluated: bool, seed: int
    ) -> LabelledSplit:
        """``data`` with the options applied; ``evaluated`` marks the split being scored."""
        if self.exclude_labels:
            excluded = set(self.exclude_labels)
            data = data.rows(
                [i for i, label in enumerate(data.labels) if not _named(data, label) & excluded]
            )
        if self.label_ids:
            unknown = sorted({str(label) for label in data.labels} - set(self.label_ids))
            if unknown:
                raise HarnessError(
                    f"task {task.name}: split {data.split!r} has labels that "
                    f"protocol.label_ids does not list: {', '.join(unknown[:5])}. List every "
                    "label with its id."
                )
            labels = [self.label_ids[str(label)] for label in data.labels]
            data = replace(data, labels=labels, label_names=None)
        if evaluated and self.stratified_subsample is not None:
            data = _stratified(task, data, self.stratified_subsample, seed)
        return data


def _named(data: LabelledSplit, label: object) -> set[object]:
    """``label``, and its name when ``data`` has ``ClassLabel`` names."""
    names = data.label_names
    if names is not None and isinstance(label, int) and 0 <= label < len(names):
        return {label, names[label]}
    return {label}


def _stratified(task: TaskDefinition, data: LabelledSplit, size: int, seed: int) -> LabelledSplit:
    """The rows of a ``size``-row stratified sample, in ``datasets``' order."""
    from datasets.utils.stratify import stratified_shuffle_split_generate_indices

    if size >= len(data.labels):
        return data
    if data.label_names is not None:
        codes = np.asarray(data.labels)
    else:
        names = sorted({str(label) for label in data.labels})
        position = {name: code for code, name in enumerate(names)}
        codes = np.asarray([position[str(label)] for label in data.labels])
    rng = np.random.default_rng(seed)
    try:
        _, rows = next(
            stratified_shuffle_split_generate_indices(codes, len(codes) - size, size, rng=rng)
        )
    except ValueError as error:
        raise HarnessError(
            f"task {task.name}: cannot cut split {data.split!r} to {size} rows by stratified "
            f"sampling ({error}); lower protocol.stratified_subsample or drop it."
        ) from error
    return data.rows([int(row) for row in rows])
