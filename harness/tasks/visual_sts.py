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

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.scoring.bootstrap import UnitScores
from harness.scoring.sts import PAIR_SIMILARITIES, SIMILARITIES, pair_similarities, sts_scores
from harness.tasks.base import LoadedSplit, Protocol, Scores, SplitOutcome, TaskType
from harness.tasks.chance import CORRELATION_CHANCE
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import column, load_part, require_columns, undecoded

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


@dataclass(frozen=True)
class Pairs:
    """One subset's pairs: the first items, then the second items, and the gold scores."""

    config: str
    items: list[RawItem]
    gold: list[float]


@dataclass(frozen=True, kw_only=True)
class PairsSplit(LoadedSplit):
    """The pairs of each subset (``default``, or each config of ``protocol.subsets``)."""

    subsets: dict[str, Pairs]

    def input_counts(self) -> dict[str, int]:
        """Both sides' items of every pair."""
        return {"items": sum(len(pairs.items) for pairs in self.subsets.values())}


class VisualSTS(TaskType[PairsSplit]):
    """Pairs scored by similarity; Pearson and Spearman with the gold scores."""

    name = "visual_sts"
    default_main_score = "cosine_spearman"
    metrics = tuple(f"{s}_{c}" for s in PAIR_SIMILARITIES for c in ("pearson", "spearman"))
    protocol_model = VisualSTSProtocol

    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> PairsSplit:
        """The pairs of every subset of ``split``; ``limit`` keeps the first of each subset."""
        protocol = self.protocol(task)
        assert isinstance(protocol, VisualSTSProtocol)
        if any(len(side) != 1 for side in (task.sides.query, task.sides.document)):
            raise HarnessError(
                f"task {task.name}: each STS column holds one kind of input (images or texts), "
                f"so the category must be i2i, t2t, i2t or t2i (it is {task.category!r})."
            )
        subsets = protocol.subsets or {"default": task.languages}
        pairs = {subset: self._pairs(task, split, limit, subset) for subset in subsets}
        return PairsSplit(split=split, subsets=pairs)

    def score(self, task: TaskDefinition, loaded: PairsSplit, encoder: Encoder) -> SplitOutcome:
        """Score every subset: Pearson and Spearman correlations with the gold scores."""
        protocol = self.protocol(task)
        assert isinstance(protocol, VisualSTSProtocol)
        similarity = encoder.adapter.meta.similarity
        if similarity not in SIMILARITIES:
            raise HarnessError(
                f"task {task.name}: STS scores need a {' or '.join(SIMILARITIES)} model; "
                f"this model's similarity is {similarity!r}."
            )
        subsets = protocol.subsets or {"default": task.languages}
        outcome = SplitOutcome([])
        for subset, languages in subsets.items():
            scores, skipped, units = self._subset(
                task, protocol, encoder, subset, loaded.subsets[subset]
            )
            outcome.subsets.append({**scores, "languages": languages})
            outcome.skipped_inputs.extend(skipped)
            if units is not None:
                outcome.units[subset] = units
            if self.main_score(task).endswith(("pearson", "spearman")):
                outcome.chance[subset] = CORRELATION_CHANCE
        return outcome

    def _pairs(self, task: TaskDefinition, split: str, limit: int | None, subset: str) -> Pairs:
        """One subset's first ``limit`` pairs, read from its config."""
        config = task.dataset.configs.get(subset, subset)
        data = load_part(task, subset, config, split)
        pair = [column(task, name) for name in PAIR_COLUMNS]
        score_column = column(task, "score")
        require_columns(task, data, config, [*pair, score_column])
        if limit is not None:
            data = data.select(range(min(limit, len(data))))
        gold = _gold(task, list(data[score_column]), config, split)
        items: list[RawItem] = []
        for name, (part,) in zip(pair, (task.sides.query, task.sides.document), strict=True):
            values = undecoded(data, [name])[name]
            items += [
                RawItem.read(f"{subset}/{row}/{name}", {part: (name, v)})
                for row, v in enumerate(values)
            ]
        return Pairs(config, items, gold)

    def _subset(
        self,
        task: TaskDefinition,
        protocol: VisualSTSProtocol,
        encoder: Encoder,
        subset: str,
        pairs: Pairs,
    ) -> tuple[Scores, tuple[str, ...], UnitScores | None]:
        """One subset's scores, skipped inputs, and per-pair units of a ``*_spearman`` main
        score (None for other main scores)."""
        config, gold = pairs.config, pairs.gold
        encoded = encoder.encode(
            pairs.items, role=None, instruction=task.prompts.query, task=task.name
        )
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
            from scipy import stats

            first, second = encoded.vectors[:n][kept], encoded.vectors[n:][kept]
            # Ranks, not values: Spearman is unchanged, and ranks survive the 6-decimal rounding
            # of stored results without new ties.
            units = UnitScores.build(
                "spearman",
                np.flatnonzero(kept).tolist(),
                predicted=stats.rankdata(pair_similarities(first, second, main)),
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
