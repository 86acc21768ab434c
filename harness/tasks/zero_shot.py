"""Zero-shot classification: each input gets the label whose text prompt it is most similar to.

Reads the layout of MIEB's classification datasets (see ``harness/tasks/labelled.py``): config
``default``, columns ``image`` (or ``text``, ``audio``, ``video``; MVEB's ``va2t`` reads a clip's
``video`` and ``audio`` into one item) and ``label``. The label prompts are the entry's
``template`` filled with each label name; the names are listed under ``protocol.label_names``,
or with ``label_names: feature`` (the default) taken from the label column's ``ClassLabel``
feature, as mteb's ``get_candidate_labels`` does for most tasks.

As in mteb, the prompts and the inputs are encoded without a role (mteb passes no prompt
type; an instructed model gets ``prompts.document`` for the label prompts and ``prompts.query``
for the inputs), each set in one encoder call. The prediction is the first label with the
highest score; the metrics are accuracy (main score), macro and weighted F1, precision and
recall, plus ``ap``/``ap_weighted`` when the split has exactly two distinct labels. Integer
labels index the label names; string labels must equal a prompt (as in mteb) or a label name.

Reproduced defects of mteb:

- mteb scores with ``softmax(100 * cosine)`` for tasks whose metadata lists the modalities as
  ``["image", "text"]`` and with the model's similarity otherwise (``["text", "image"]``, or
  a text task's ``["text"]``), a choice that changes the binary ``ap`` (and can change argmax
  on near-ties). Entries pick the path with ``label_scoring: softmax`` or
  ``label_scoring: similarity``. An entry that names neither gets the path mteb takes for a
  task of its category declared the usual way: ``softmax`` for images (``i2t``, modalities
  ``["image", "text"]``), ``similarity`` for every other input: texts (``t2t``), audio
  (``a2t``, MAEB's modalities ``["audio", "text"]``) and video (``v2t``, ``va2t``, MVEB's
  ``["video", "text"]`` and ``["video", "audio", "text"]``). The resolved path is recorded
  in the result's protocol.
- Some mteb tasks read label names with ``readlines()``, so their prompts keep a newline
  (``"a photo showing the country of Andorra\\n."``); an entry reproduces this by listing the
  names with the newline, or by writing it into its template.

``label_name_rewrites`` turns stored names into the names a prompt uses, as some mteb tasks do
in ``get_candidate_labels`` (SUN397's ``/c/church/outdoor`` becomes ``church outdoor``): a list
of ``[pattern, replacement]`` regular-expression substitutions, applied in order to each name.

mteb's reshaping of the split (``harness.tasks.labelled_rows``) applies before ``--limit``:
MVEB's MELD tasks cut their test split to a stratified 2,048 rows (``stratified_subsample``,
``seed`` 42).

``ensemble_templates`` turns on CLIP-style prompt ensembles (off by default, not an mteb
protocol): each label's vector is the renormalised mean of the normalised vectors of its
prompts, one per template.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import field_validator

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.scoring.classification import CLASSIFICATION_METRICS
from harness.scoring.zero_shot import (
    LabelScoring,
    ensemble_label_vectors,
    label_scores,
    predictions,
    zero_shot_metrics,
)
from harness.tasks.base import LoadedSplit, SplitOutcome, TaskType
from harness.tasks.chance import uniform_guess
from harness.tasks.definition import TaskDefinition
from harness.tasks.labelled import LabelledSplit, load_labelled
from harness.tasks.labelled_rows import LabelledRows
from harness.tasks.loading import column

PLACEHOLDER = "{label}"
# mteb's scoring path for a task that does not name one, by the query (input) modalities: image
# tasks declare the modalities ["image", "text"] (softmax); text tasks ["text"], audio tasks
# (MAEB) ["audio", "text"] and video tasks (MVEB) ["video", "text"] or ["video", "audio",
# "text"] take the model's similarity.
DEFAULT_LABEL_SCORING: dict[tuple[str, ...], LabelScoring] = {
    ("image",): "softmax",
    ("text",): "similarity",
    ("audio",): "similarity",
    ("video",): "similarity",
    ("audio", "video"): "similarity",
}
# (pattern, replacement) regular-expression substitutions, applied in order.
Rewrites = tuple[tuple[str, str], ...]


class ZeroShotProtocol(LabelledRows):
    """How the label prompts are built and scored, and mteb's reshaping of the split.

    ``template``: a label's prompt, ``{label}`` standing for its name (mteb's per-task prompt).
    ``label_names``: the names in label-id order, or ``feature`` for the ``ClassLabel`` names.
    ``ensemble_templates``: several templates for a CLIP-style prompt ensemble (then
    ``template`` is unused); empty (off) by default. ``label_scoring``: ``similarity`` or
    ``softmax``, mteb's two scoring paths (see ``harness.scoring.zero_shot``); unset, it
    resolves to ``DEFAULT_LABEL_SCORING`` of the task's input modality.
    ``label_name_rewrites``: ``(pattern, replacement)`` substitutions applied to each name.
    ``seed``: mteb's task seed, for ``stratified_subsample``.
    """

    unrecorded_defaults = (*LabelledRows.unrecorded_defaults, "seed")
    template: str = "a photo of a {label}."
    label_names: list[str] | Literal["feature"] = "feature"
    ensemble_templates: tuple[str, ...] = ()
    label_scoring: LabelScoring | None = None
    label_name_rewrites: Rewrites = ()
    seed: int = 42

    @field_validator("template")
    @classmethod
    def _has_placeholder(cls, template: str) -> str:
        return _checked_template(template)

    @field_validator("ensemble_templates")
    @classmethod
    def _all_have_placeholder(cls, templates: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_checked_template(template) for template in templates)

    @field_validator("label_names")
    @classmethod
    def _not_empty(cls, names: list[str] | str) -> list[str] | str:
        if not names:
            raise ValueError("label_names is empty: list the label names, or write `feature`")
        return names

    @field_validator("label_name_rewrites")
    @classmethod
    def _patterns_compile(cls, rewrites: Rewrites) -> Rewrites:
        for pattern, _ in rewrites:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"label_name_rewrites: bad pattern {pattern!r}: {error}") from None
        return rewrites

    def rewritten(self, names: Sequence[str]) -> list[str]:
        """The names with every ``label_name_rewrites`` substitution applied, in order."""
        result = list(names)
        for pattern, replacement in self.label_name_rewrites:
            result = [re.sub(pattern, replacement, name) for name in result]
        return result

    @property
    def templates(self) -> list[str]:
        """The templates whose prompts make each label's vector."""
        return list(self.ensemble_templates) or [self.template]


@dataclass(frozen=True, kw_only=True)
class ZeroShotSplit(LoadedSplit):
    """The inputs with their labels as indices of the label names, and the label prompts
    (each template's prompts, label by label, template after template)."""

    items: list[RawItem]
    labels: list[int]
    prompts: list[str]

    def input_counts(self) -> dict[str, int]:
        """The inputs, and the label prompts."""
        return {"items": len(self.items), "prompts": len(self.prompts)}


class ZeroShotClassification(TaskType[ZeroShotSplit]):
    """Inputs (images or texts) classified by similarity to one text prompt per label."""

    name = "zero_shot_classification"
    default_main_score = "accuracy"
    metrics = CLASSIFICATION_METRICS
    protocol_model = ZeroShotProtocol

    def protocol(self, task: TaskDefinition) -> ZeroShotProtocol:
        """The validated protocol, ``label_scoring`` resolved; the category must classify
        into text labels (``i2t``, ``t2t``, ``a2t``, ``v2t`` or ``va2t``)."""
        protocol = super().protocol(task)
        assert isinstance(protocol, ZeroShotProtocol)
        if task.sides.document != ("text",) or task.sides.query not in DEFAULT_LABEL_SCORING:
            raise HarnessError(
                f"task {task.name}: zero-shot classification matches images, texts, audio or "
                f"video to text label prompts, so its category must be i2t, t2t or a2t, or v2t "
                f"or va2t for video, not {task.category}"
            )
        if protocol.label_scoring is None:
            scoring = DEFAULT_LABEL_SCORING[task.sides.query]
            return protocol.model_copy(update={"label_scoring": scoring})
        return protocol

    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> ZeroShotSplit:
        """The first ``limit`` inputs of ``split`` with their label indices, and the prompts."""
        protocol = self.protocol(task)
        data = protocol.reshape(
            task, load_labelled(task, split), evaluated=True, seed=protocol.seed
        )
        names = _label_names(task, protocol, data)
        prompts = [_fill(template, name) for template in protocol.templates for name in names]
        labels = _label_indices(task, split, data.labels, names, prompts[: len(names)])
        data = data.head(limit)
        return ZeroShotSplit(
            split=split, items=data.items, labels=labels[: len(data.items)], prompts=prompts
        )

    def score(self, task: TaskDefinition, loaded: ZeroShotSplit, encoder: Encoder) -> SplitOutcome:
        """Encode the label prompts and the inputs, predict by argmax, score with sklearn."""
        protocol = self.protocol(task)
        prompts, labels = loaded.prompts, loaded.labels
        label_vectors = self._label_vectors(task, encoder, prompts, len(protocol.templates))
        encoded = encoder.encode(
            loaded.items, role=None, instruction=task.prompts.query, task=task.name
        )
        if not encoded.kept.any():
            raise HarnessError(
                f"task {task.name}: no input of split {loaded.split!r} could be encoded"
            )
        assert protocol.label_scoring is not None  # resolved by ``protocol``
        scores = label_scores(
            encoded.vectors[encoded.kept],
            label_vectors,
            scoring=protocol.label_scoring,
            similarity=encoder.adapter.meta.similarity,
        )
        kept_labels = [label for label, keep in zip(labels, encoded.kept, strict=True) if keep]
        metrics = zero_shot_metrics(kept_labels, scores)
        correct = (predictions(scores) == np.asarray(kept_labels)).astype(float)
        unit_ids = [f"{row}:{label}" for row, label in enumerate(kept_labels)]
        units = self.mean_units(task, {"accuracy": correct}, unit_ids)
        outcome = SplitOutcome([self.subset_scores(task, metrics)], list(encoded.skipped), units)
        if self.main_score(task) == "accuracy":  # a guess uniform over the label prompts
            outcome.chance["default"] = uniform_guess(range(len(label_vectors)))
        return outcome

    def _label_vectors(
        self, task: TaskDefinition, encoder: Encoder, prompts: list[str], n_templates: int
    ) -> np.ndarray:
        """One vector per label: its prompt's, or the ensemble of its templates' prompts."""
        items = [RawItem.of(f"prompt-{i}", text=prompt) for i, prompt in enumerate(prompts)]
        vectors = encoder.encode(
            items, role=None, instruction=task.prompts.document, task=task.name
        ).vectors
        if n_templates == 1:
            return vectors
        return ensemble_label_vectors(vectors.reshape(n_templates, -1, vectors.shape[-1]))


def _checked_template(template: str) -> str:
    if PLACEHOLDER not in template:
        raise ValueError(
            f"template {template!r} has no {PLACEHOLDER} placeholder; write where the label "
            f"name goes, e.g. 'a photo of a {PLACEHOLDER}.'"
        )
    return template


def _fill(template: str, name: str) -> str:
    return template.replace(PLACEHOLDER, name)


def _label_names(
    task: TaskDefinition, protocol: ZeroShotProtocol, data: LabelledSplit
) -> list[str]:
    if protocol.label_names != "feature":
        return protocol.rewritten(protocol.label_names)
    if data.label_names is None:
        raise HarnessError(
            f"task {task.name}: the label column {column(task, 'label')!r} is not a ClassLabel, "
            "so it has no label names. List them under protocol.label_names in the task "
            "definition, in label-id order."
        )
    return protocol.rewritten(data.label_names)


def _label_indices(
    task: TaskDefinition,
    split: str,
    labels: Sequence[Any],
    names: list[str],
    prompts: list[str],
) -> list[int]:
    """Labels as indices of ``names``: integers as they are, strings by prompt or name."""
    by_text = {name: i for i, name in enumerate(names)} | {p: i for i, p in enumerate(prompts)}
    indices = []
    for row, label in enumerate(labels):
        if isinstance(label, str) and label in by_text:
            indices.append(by_text[label])
        elif isinstance(label, int | np.integer) and 0 <= label < len(names):
            indices.append(int(label))
        else:
            raise HarnessError(
                f"task {task.name}: label {label!r} (split {split!r}, row {row}, column "
                f"{column(task, 'label')!r}) has no label name or prompt; the task has "
                f"{len(names)} label names ({', '.join(map(repr, names[:5]))}"
                f"{', ...' if len(names) > 5 else ''}). Fix protocol.label_names or the labels."
            )
    return indices
