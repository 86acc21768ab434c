"""The task-type contract: load a task's split into a canonical form, then score it by encoding
its inputs through the encoder.

``load`` reads whichever supported layout the dataset uses and returns a :class:`LoadedSplit`
(items with ids, labels, qrels, candidates...: what the type scores, the same for every layout);
``score`` never looks at the dataset. ``evaluate`` is the two in a row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError, UnknownNameError
from harness.core.similarity import MAXSIM
from harness.scoring.bootstrap import UnitScores
from harness.tasks.definition import TaskDefinition

Scores = dict[str, Any]


class Protocol(BaseModel):
    """Protocol constants of a task type; entries override them under ``protocol:``.

    ``unrecorded_defaults`` names options added after results were recorded: they are left out
    of the dumped record while at their default, so that those results keep their identity.
    """

    model_config = ConfigDict(extra="forbid")
    unrecorded_defaults: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_unrecorded_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        fields = type(self).model_fields
        for name in self.unrecorded_defaults:
            if getattr(self, name) == fields[name].get_default(call_default_factory=True):
                data.pop(name, None)
        return data


@dataclass(frozen=True, kw_only=True)
class LoadedSplit(ABC):
    """One split of a task, normalised from the dataset's layout: everything ``score`` reads."""

    split: str

    @abstractmethod
    def input_counts(self) -> dict[str, int]:
        """The number of inputs of each kind the split will encode (queries, corpus...)."""


@dataclass
class SplitOutcome:
    """The scores of one split: one entry per subset, in mteb's score-dict form.

    ``units`` holds, per subset name, the per-unit data that the subset's main score is
    recomputed from on resamples (bootstrap intervals, paired tests in ``harness check``).
    ``chance`` holds, per subset name, the main score's exact expected value under uniform
    random guessing on the scored data (``harness.tasks.chance``), where the type knows one.
    """

    subsets: list[Scores]
    skipped_inputs: list[str] = field(default_factory=list)
    units: dict[str, UnitScores] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)

    def split_chance(self) -> float | None:
        """The split's chance level, taken as its main score is: the ``default`` subset's,
        else the mean over the subsets; None when a subset it needs has none."""
        names = [entry["hf_subset"] for entry in self.subsets]
        needed = ["default"] if "default" in names else names
        if not needed or any(name not in self.chance for name in needed):
            return None
        return sum(self.chance[name] for name in needed) / len(needed)


Loaded = TypeVar("Loaded", bound=LoadedSplit)


class TaskType(ABC, Generic[Loaded]):
    """A kind of evaluation (retrieval, linear probe, ...), generic in the canonical form its
    ``load`` returns. Entries of a type are data only."""

    name: ClassVar[str]
    default_main_score: ClassVar[str]
    # The metrics the type reports (``metric_names`` computes them where settings decide).
    metrics: ClassVar[tuple[str, ...]] = ()
    protocol_model: ClassVar[type[Protocol]] = Protocol
    # Whether the type can score per-token (MaxSim) embeddings, not only single vectors.
    scores_multi_vector: ClassVar[bool] = False

    def check_adapter(self, task: TaskDefinition, similarity: str) -> None:
        """Refuse a multi-vector model for a type that scores single vectors only."""
        if similarity == MAXSIM and not self.scores_multi_vector:
            raise HarnessError(
                f"task {task.name} ({self.name}) scores single-vector embeddings, but the model "
                "is a multi-vector (MaxSim) model; run it on retrieval tasks only"
            )

    def protocol(self, task: TaskDefinition) -> Protocol:
        """The task's protocol constants, validated against this type's model."""
        try:
            return self.protocol_model.model_validate(task.protocol)
        except ValidationError as error:
            raise HarnessError(f"task {task.name}: invalid protocol settings: {error}") from error

    def main_score(self, task: TaskDefinition) -> str:
        """The metric reported as ``main_score``."""
        return task.main_score or self.default_main_score

    def metric_names(self, task: TaskDefinition) -> Collection[str]:
        """The metrics this type reports for ``task`` (``main_score`` must be one of them)."""
        return self.metrics

    def check(self, task: TaskDefinition) -> None:
        """Refuse, before any work, settings that could only fail after encoding: invalid
        protocol constants and a main score the type does not report."""
        self.protocol(task)
        main, known = self.main_score(task), self.metric_names(task)
        if main not in known:
            raise UnknownNameError(
                "main score",
                main,
                known,
                hint=f"(task {task.name}, type {self.name}: the main_score must be one of "
                f"{', '.join(sorted(known))}).",
            )

    @abstractmethod
    def load(self, task: TaskDefinition, split: str, limit: int | None = None) -> Loaded:
        """Read ``split`` of ``task`` into the type's canonical form; ``limit`` keeps the first
        ``limit`` evaluation rows (queries, items, samples...)."""

    @abstractmethod
    def score(self, task: TaskDefinition, loaded: Loaded, encoder: Encoder) -> SplitOutcome:
        """Score a loaded split with the vectors ``encoder`` produces."""

    def evaluate(
        self, task: TaskDefinition, encoder: Encoder, *, split: str, limit: int | None = None
    ) -> SplitOutcome:
        """Load one split of ``task``, then score it."""
        return self.score(task, self.load(task, split, limit), encoder)

    def mean_units(
        self,
        task: TaskDefinition,
        per_unit: Mapping[str, Sequence[float] | np.ndarray],
        unit_ids: Sequence[object],
        subset: str = "default",
    ) -> dict[str, UnitScores]:
        """``{subset: units}`` when the main score is the mean of one of ``per_unit``'s
        metrics; empty otherwise (the result then carries no interval for it)."""
        main = self.main_score(task)
        if main not in per_unit:
            return {}
        return {subset: UnitScores.build("mean", unit_ids, values=per_unit[main])}

    def subset_scores(
        self, task: TaskDefinition, metrics: Mapping[str, Any], subset: str = "default"
    ) -> Scores:
        """Wrap metrics into mteb's per-subset form with ``main_score``."""
        main = self.main_score(task)
        if main not in metrics:
            raise HarnessError(
                f"task {task.name}: main score {main!r} is not a metric of type {self.name} "
                f"(choose one of {', '.join(sorted(metrics))})"
            )
        return {
            **metrics,
            "main_score": metrics[main],
            "hf_subset": subset,
            "languages": task.languages,
        }
