"""Image-text pair classification (mteb's "Compositionality" type), scored as mteb scores it.

Each row of a split is one sample: ``I`` images and ``T`` captions where image ``i`` belongs
with caption ``i``. Three styles, as MIEB's datasets use them:

- ``pairs`` (Winoground: columns ``image_0``, ``image_1``, ``caption_0``, ``caption_1``): as many
  images as captions; main score ``accuracy`` (the group score);
- ``one_image`` (ARO, SugarCrepe: ``images`` or ``image``, then the true caption and its
  negatives, e.g. ``correct_caption``, ``hard_text_1``..``hard_text_4``): main score ``text_acc``;
- ``one_text`` (ImageCoDe: one caption, the true image, then distractors): main score
  ``image_acc``.

``protocol.image_columns`` and ``protocol.text_columns`` list the columns in order (mteb's
``images_column_names`` / ``texts_column_names``; a cell may also hold a list, which is spread in
place). The style follows from the numbers of columns, or is declared as ``protocol.style``;
every row must fit it with the same numbers of images and captions. ``protocol.source: qrels``
reads ImageCoDe's hub layout instead (configs ``corpus``, ``query`` and ``qrels``): each query's
caption with its image of score 1 followed by the first ``candidates - 1`` other images of its
qrels, in qrels order, as mteb's ImageCoDe loader builds them. A dataset with a single split
serves any eval split (SugarCrepe keeps its rows under ``train``, which mteb renames ``test``).

All images of a split go to the encoder in one call and all captions in another (the encoder
batches and de-duplicates them); mteb encodes one image per model call. ``prompts.query`` is
the task's instruction for both images and captions, defaulting to mteb's prompt for this type
(mteb passes no query/document role here). A sample with an image skipped as bad input
(``--skip-bad-inputs``) is left out of the scores; mteb has no such option.

Defects of mteb's protocol, reproduced by default (see harness.scoring.compositionality):
ties go to the lowest index, so ties count as correct for the true caption of a one-image
sample and for the true image of a one-caption sample (a model whose vectors are all equal
scores 1.0 on ARO, SugarCrepe and ImageCoDe); ``strict_ties: true`` counts every tie as wrong,
as the Winoground paper does. ``image_acc`` and ``accuracy`` are always 0 for one-image samples,
and ``text_acc`` and ``accuracy`` for one-caption samples; they are reported as mteb does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.scoring.compositionality import (
    cosine_similarities,
    pair_classification_flags,
    pair_classification_scores,
)
from harness.tasks.base import LoadedSplit, Protocol, SplitOutcome, TaskType
from harness.tasks.chance import matching_chance
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import column, load_part, require_columns, resolve_config, undecoded
from harness.tasks.retrieval import CONFIG_CANDIDATES

if TYPE_CHECKING:
    import datasets

Style = Literal["pairs", "one_image", "one_text"]
STYLE_MAIN_SCORES: dict[str, str] = {
    "pairs": "accuracy",
    "one_image": "text_acc",
    "one_text": "image_acc",
}
_STYLE_RULES = {
    "pairs": "as many images as captions, at least 2 of each (Winoground style)",
    "one_image": "1 image and at least 2 captions (ARO style)",
    "one_text": "1 caption and at least 2 images (ImageCoDe style)",
}
DEFAULT_INSTRUCTION = "Identify the caption that matches the given image."


def fits(style: str, n_images: int, n_texts: int) -> bool:
    """Whether a sample of ``n_images`` images and ``n_texts`` captions fits ``style``."""
    if style == "pairs":
        return n_images == n_texts >= 2
    if style == "one_image":
        return n_images == 1 and n_texts >= 2
    return n_texts == 1 and n_images >= 2


class CompositionalityProtocol(Protocol):
    """Columns, style and tie rule of an image-text pair classification task."""

    image_columns: tuple[str, ...] = Field(default=("image",), min_length=1)
    text_columns: tuple[str, ...] = Field(default=("caption",), min_length=1)
    style: Style | None = None
    source: Literal["columns", "qrels"] = "columns"
    candidates: int = Field(default=10, ge=2)
    strict_ties: bool = False

    @model_validator(mode="after")
    def _check_style(self) -> CompositionalityProtocol:
        if self.source == "qrels" and self.style not in (None, "one_text"):
            raise ValueError("source 'qrels' builds one_text samples (ImageCoDe style)")
        if self.source == "columns" and self.style is None:
            counts = len(self.image_columns), len(self.text_columns)
            if not any(fits(style, *counts) for style in _STYLE_RULES):
                raise ValueError(
                    f"{counts[0]} image column(s) and {counts[1]} text column(s) fit no style: "
                    f"rows need {'; or '.join(_STYLE_RULES.values())}. Declare `style:` "
                    "when cells hold lists of images or captions."
                )
        return self

    @property
    def resolved_style(self) -> str:
        """The declared style, or the one the numbers of columns give."""
        if self.style is not None:
            return self.style
        if self.source == "qrels":
            return "one_text"
        counts = len(self.image_columns), len(self.text_columns)
        return next(style for style in _STYLE_RULES if fits(style, *counts))


@dataclass(frozen=True)
class Sample:
    """One row: its images and captions as raw items, the true match of image i is caption i."""

    id: str
    images: list[RawItem]
    texts: list[RawItem]


@dataclass(frozen=True, kw_only=True)
class SampleSplit(LoadedSplit):
    """The samples of a split, each with ``n_images`` images and ``n_texts`` captions."""

    samples: list[Sample]
    n_images: int
    n_texts: int

    def input_counts(self) -> dict[str, int]:
        """Images and captions."""
        return {
            "images": len(self.samples) * self.n_images,
            "captions": len(self.samples) * self.n_texts,
        }


class Compositionality(TaskType[SampleSplit]):
    """Images and captions of a sample are matched by cosine; text, image and group accuracy."""

    name = "compositionality"
    default_main_score = "accuracy"
    metrics = ("image_acc", "text_acc", "accuracy")
    protocol_model = CompositionalityProtocol

    def settings(self, task: TaskDefinition) -> CompositionalityProtocol:
        """The task's protocol, typed."""
        protocol = self.protocol(task)
        assert isinstance(protocol, CompositionalityProtocol)
        return protocol

    def main_score(self, task: TaskDefinition) -> str:
        """The declared main score, else mteb's for the task's style."""
        return task.main_score or STYLE_MAIN_SCORES[self.settings(task).resolved_style]

    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> SampleSplit:
        """The first ``limit`` samples of ``split``, from columns or from qrels; every one of
        the same shape, fitting the style."""
        protocol = self.settings(task)
        if protocol.source == "qrels":
            samples = _qrels_samples(task, protocol.candidates, split, limit)
        else:
            samples = _column_samples(task, protocol, split, limit)
        n_images, n_texts = _check_shapes(task, protocol, samples)
        return SampleSplit(split=split, samples=samples, n_images=n_images, n_texts=n_texts)

    def score(self, task: TaskDefinition, loaded: SampleSplit, encoder: Encoder) -> SplitOutcome:
        """Encode every image in one call and every caption in another, then score."""
        protocol = self.settings(task)
        samples, n_images, n_texts = loaded.samples, loaded.n_images, loaded.n_texts
        instruction = task.prompts.query or DEFAULT_INSTRUCTION
        images, texts = (
            encoder.encode(
                [item for sample in samples for item in getattr(sample, side)],
                instruction=instruction,
                task=task.name,
            )
            for side in ("images", "texts")
        )
        kept = images.kept.reshape(len(samples), n_images).all(axis=1)
        kept &= texts.kept.reshape(len(samples), n_texts).all(axis=1)
        if not kept.any():
            raise HarnessError(
                f"task {task.name}: no sample of split {loaded.split!r} is left to score; every "
                "one has an image that could not be decoded."
            )
        similarities = cosine_similarities(
            images.vectors.reshape(len(samples), n_images, -1)[kept],
            texts.vectors.reshape(len(samples), n_texts, -1)[kept],
        )
        metrics = pair_classification_scores(similarities, strict_ties=protocol.strict_ties)
        flags = pair_classification_flags(similarities, strict_ties=protocol.strict_ties)
        skipped = [*images.skipped, *texts.skipped]
        unit_ids = np.flatnonzero(kept).tolist()
        units = self.mean_units(task, {k: v.astype(float) for k, v in flags.items()}, unit_ids)
        chance = matching_chance(self.main_score(task), n_images, n_texts)
        entries = [self.subset_scores(task, metrics)]
        return SplitOutcome(entries, skipped, units, chance={"default": chance})


def _column_samples(
    task: TaskDefinition, protocol: CompositionalityProtocol, split: str, limit: int | None
) -> list[Sample]:
    """Rows of one config with image and caption columns (Winoground, ARO, SugarCrepe)."""
    config = task.dataset.configs.get("default", "default")
    data = load_part(task, "default", config, split)
    require_columns(task, data, config, [*protocol.image_columns, *protocol.text_columns])
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    data = undecoded(data, protocol.image_columns)
    id_column = column(task, "id")
    ids = list(data[id_column]) if id_column in data.column_names else range(len(data))
    image_cells = {name: list(data[name]) for name in protocol.image_columns}
    text_cells = {name: list(data[name]) for name in protocol.text_columns}
    samples = []
    for row, row_id in enumerate(ids):
        sample_id = str(row_id)
        samples.append(
            Sample(
                sample_id,
                _row_items(sample_id, {n: c[row] for n, c in image_cells.items()}),
                _row_items(sample_id, {n: c[row] for n, c in text_cells.items()}, text=True),
            )
        )
    return samples


def _row_items(sample_id: str, cells: dict[str, Any], *, text: bool = False) -> list[RawItem]:
    """The raw items of one row's image (or caption) cells; a list cell is spread in place."""
    kind = "caption" if text else "image"
    items = []
    for name, cell in cells.items():
        values = cell if isinstance(cell, list) else [cell]
        for k, value in enumerate(values):
            item_id = f"{sample_id}/{name}" + (f"/{k}" if isinstance(cell, list) else "")
            items.append(_raw_item(name, kind, item_id, value))
    return items


def _raw_item(column_name: str, kind: str, item_id: str, value: Any) -> RawItem:
    """One cell as an item; an unusable cell makes a faulty item (skippable as bad input)."""
    part = "text" if kind == "caption" else "image"
    return RawItem.read(item_id, {part: (column_name, value)})


def _qrels_samples(
    task: TaskDefinition, candidates: int, split: str, limit: int | None
) -> list[Sample]:
    """ImageCoDe's layout: each query's caption with its true image then other candidates."""
    true_image, pools = _candidate_pools(task, split)
    queries = _part(task, "queries", split, [column(task, "id"), column(task, "text")])
    corpus = _part(task, "corpus", split, [column(task, "id"), column(task, "image")])
    corpus = undecoded(corpus, [column(task, "image")])
    # Like mteb, a corpus id that occurs twice resolves to its last row.
    corpus_ids = map(str, corpus[column(task, "id")])
    images = dict(zip(corpus_ids, corpus[column(task, "image")], strict=True))
    query_ids = [str(q) for q in queries[column(task, "id")]]
    texts = list(queries[column(task, "text")])
    if limit is not None:
        query_ids, texts = query_ids[:limit], texts[:limit]
    samples = []
    for row, (query_id, text) in enumerate(zip(query_ids, texts, strict=True)):
        where = f"task {task.name}: query {query_id!r} (row {row} of the queries)"
        if query_id not in true_image:
            raise HarnessError(f"{where} has no qrels row with score 1 (its true image).")
        others = [doc for doc in pools[query_id] if doc != true_image[query_id]]
        chosen = [true_image[query_id], *others[: candidates - 1]]
        if len(chosen) != candidates:
            raise HarnessError(
                f"{where} has {len(chosen)} candidate images in its qrels, but the protocol "
                f"takes {candidates} (set protocol.candidates, or complete the qrels)."
            )
        missing = [doc for doc in chosen if doc not in images]
        if missing:
            raise HarnessError(f"{where}: its candidate {missing[0]!r} is not in the corpus.")
        image_column, text_column = column(task, "image"), column(task, "text")
        image_items = [_raw_item(image_column, "image", doc, images[doc]) for doc in chosen]
        caption = _raw_item(text_column, "caption", query_id, text)
        samples.append(Sample(query_id, image_items, [caption]))
    return samples


def _candidate_pools(
    task: TaskDefinition, split: str
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Per query: its image of score 1 (the last, as in mteb) and all its candidates in order."""
    names = [column(task, name) for name in ("query-id", "corpus-id", "score")]
    qrels = _part(task, "qrels", split, names)
    true_image: dict[str, str] = {}
    pools: dict[str, list[str]] = {}
    for query_id, doc_id, score in zip(*(qrels[name] for name in names), strict=True):
        pools.setdefault(str(query_id), []).append(str(doc_id))
        if score == 1:
            true_image[str(query_id)] = str(doc_id)
    return true_image, pools


def _part(task: TaskDefinition, part: str, split: str, columns: list[str]) -> datasets.Dataset:
    config = resolve_config(task, part, CONFIG_CANDIDATES[part])
    data = load_part(task, part, config, split)
    require_columns(task, data, config, columns)
    return data


def _check_shapes(
    task: TaskDefinition, protocol: CompositionalityProtocol, samples: list[Sample]
) -> tuple[int, int]:
    """The numbers of images and captions per sample: the same in every row, fitting the style."""
    if not samples:
        raise HarnessError(f"task {task.name}: the split has no rows to score.")
    style = protocol.resolved_style
    expected = (len(samples[0].images), len(samples[0].texts))
    if protocol.source == "qrels":
        where = "its qrels candidates and the query text"
    else:
        where = (
            f"columns {', '.join(protocol.image_columns)} and {', '.join(protocol.text_columns)}"
        )
    for row, sample in enumerate(samples):
        shape = (len(sample.images), len(sample.texts))
        if not fits(style, *shape):
            reason = f"a {style} task needs {_STYLE_RULES[style]}"
        elif shape != expected:
            reason = f"row 0 has {expected[0]} and {expected[1]}; every row needs the same"
        else:
            continue
        raise HarnessError(
            f"task {task.name}: row {row} (id {sample.id!r}) has {shape[0]} image(s) and "
            f"{shape[1]} caption(s) in {where}, but {reason}. Fix the row or the task's "
            "protocol (image_columns, text_columns, style)."
        )
    return expected
