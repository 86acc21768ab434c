"""Visual semantic textual similarity (MIEB's VisualSTS), scored as mteb's STS evaluator does.

MIEB's rendered-STS datasets (``mteb/rendered-sts12`` ... ``sts16``, ``Pixel-Linguist/
rendered-sts17``, ``Pixel-Linguist/rendered-stsb``) hold pairs of sentences rendered as images:
columns ``sentence1`` and ``sentence2`` (images) and ``score`` (0 to 5). A monolingual dataset
has one config; a multilingual one has a config per language pair (``en-en``, ``en-de``...),
declared under ``protocol.subsets`` as ``{config: [languages]}``, each scored as its own subset.
The category names the modality of each column: ``i2i`` for rendered text, ``t2t`` for text.

Gold scores are normalised with ``protocol.min_score``/``max_score`` (mteb: 0 and 5). Both
columns are encoded in one batched call with no role and the query prompt (mteb encodes both
sides with the same prompt), so an image in both columns is encoded once. A pair whose image
is skipped as bad input (``--skip-bad-inputs``) is left out of the correlations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator
from scipy import stats

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.scoring.bootstrap import UnitScores
from harness.scoring.sts import PAIR_SIMILARITIES, SIMILARITIES, pair_similarities, sts_scores
from tasks.base import Protocol, Scores, SplitOutcome, TaskType
from tasks.definition import TaskDefinition
from tasks.loading import column, load_part, require_columns, undecoded_images

PAIR_COLUMNS = ("sentence1", "sentence2")


class VisualSTSProtocol(Protocol):
    """mteb's STS constants, and the subsets (configs) of a multilingual dataset."""

    min_score: float = 0.0
    max_score: float = 5.0
    subsets: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _score_range(self) -> VisualSTSProtocol:
        if not self.min_score < self.max_score:
            raise ValueError(
                f"min_score ({self.min_score}) must be below max_score ({self.max_score})"
            )
        return self


class VisualSTS(TaskType):
    """Pairs scored by similarity; Pearson and Spearman with the gold scores."""

    name = "visual_sts"
    default_main_score = "cosine_spearman"
    metrics = tuple(f"{s}_{c}" for s in PAIR_SIMILARITIES for c in ("pearson", "spearman"))
    protocol_model = VisualSTSProtocol

    def evaluate(
        self, task: TaskDefinition, encoder: Encoder, *, split: str, limit: int | None = None
    ) -> SplitOutcome:
        """Score every subset of ``split``; ``limit`` keeps the first pairs of each subset."""
        protocol = self.protocol(task)
        assert isinstance(protocol, VisualSTSProtocol)
        sides = (task.query_modality, task.document_modality)
        if any(side not in ("i", "t") for side in sides):
            raise HarnessError(
                f"task {task.name}: each STS column holds images or texts, so the category "
                f"must be i2i, t2t, i2t or t2i (it is {task.category!r})."
            )
        similarity = encoder.adapter.meta.similarity
        if similarity not in SIMILARITIES:
            raise HarnessError(
                f"task {task.name}: STS scores need a {' or '.join(SIMILARITIES)} model; "
                f"this model's similarity is {similarity!r}."
            )
        subsets = protocol.subsets or {"default": task.languages}
        outcome = SplitOutcome([])
        for subset, languages in subsets.items():
            scores, skipped, units = self._subset(task, protocol, encoder, split, limit, subset)
            outcome.subsets.append({**scores, "languages": languages})
            outcome.skipped_inputs.extend(skipped)
            if units is not None:
                outcome.units[subset] = units
        return outcome

    def _subset(
        self,
        task: TaskDefinition,
        protocol: VisualSTSProtocol,
        encoder: Encoder,
        split: str,
        limit: int | None,
        subset: str,
    ) -> tuple[Scores, tuple[str, ...], UnitScores | None]:
        """One subset's scores, skipped inputs, and per-pair units of a ``*_spearman`` main
        score (None for other main scores)."""
        config = task.dataset.configs.get(subset, subset)
        data = load_part(task, subset, config, split)
        pair = [column(task, name) for name in PAIR_COLUMNS]
        score_column = column(task, "score")
        require_columns(task, data, config, [*pair, score_column])
        if limit is not None:
            data = data.select(range(min(limit, len(data))))
        gold = _gold(task, list(data[score_column]), config, split)
        items: list[RawItem] = []
        for name, side in zip(pair, (task.query_modality, task.document_modality), strict=True):
            values = undecoded_images(data, name)[name] if side == "i" else data[name]
            part = "image" if side == "i" else "text"
            items += [
                RawItem.read(f"{subset}/{row}/{name}", **{part: v, f"{part}_column": name})
                for row, v in enumerate(values)
            ]
        encoded = encoder.encode(items, role=None, instruction=task.prompts.query, task=task.name)
        n = len(gold)
        kept = encoded.kept[:n] & encoded.kept[n:]
        if kept.sum() < 2:
            raise HarnessError(
                f"task {task.name}: fewer than two pairs of config {config!r} are left after "
                "skipping bad inputs; correlations need at least two."
            )
        metrics = sts_scores(
            encoded.vectors[:n][kept],
            encoded.vectors[n:][kept],
            np.asarray(gold)[kept].tolist(),
            min_score=protocol.min_score,
            max_score=protocol.max_score,
            similarity=encoder.adapter.meta.similarity,
        )
        main = self.main_score(task).removesuffix("_spearman")
        units = None
        if main in PAIR_SIMILARITIES:
            pairs = (encoded.vectors[:n][kept], encoded.vectors[n:][kept])
            # Ranks, not values: Spearman is unchanged, and ranks survive the 6-decimal rounding
            # of stored results without new ties.
            units = UnitScores.build(
                "spearman",
                np.flatnonzero(kept).tolist(),
                predicted=stats.rankdata(pair_similarities(*pairs, main)),
                gold=stats.rankdata(np.asarray(gold, dtype=float)[kept]),
            )
        return self.subset_scores(task, metrics, subset), encoded.skipped, units


def _gold(task: TaskDefinition, scores: list[Any], config: str, split: str) -> list[float]:
    """The gold scores as floats; a clear error for a missing or non-numeric one."""
    bad = [i for i, s in enumerate(scores) if isinstance(s, bool) or not isinstance(s, int | float)]
    if bad:
        raise HarnessError(
            f"task {task.name}: {len(bad)} row(s) of config {config!r}, split {split!r} have no "
            f"numeric score (first at row {bad[0]}: {scores[bad[0]]!r}). Fill the score column "
            "or map another under dataset.columns.score."
        )
    if len(scores) < 2:
        raise HarnessError(
            f"task {task.name}: config {config!r}, split {split!r} has {len(scores)} pair(s); "
            "correlations need at least two."
        )
    return [float(s) for s in scores]
