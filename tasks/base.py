"""The task-type contract: load a task's data, encode it through the encoder, score it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.core.encoder import Encoder
from harness.core.errors import HarnessError, UnknownNameError
from harness.scoring.bootstrap import UnitScores
from tasks.definition import TaskDefinition

Scores = dict[str, Any]


class Protocol(BaseModel):
    """Protocol constants of a task type; entries override them under ``protocol:``."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class SplitOutcome:
    """The scores of one split: one entry per subset, in mteb's score-dict form.

    ``units`` holds, per subset name, the per-unit data that the subset's main score is
    recomputed from on resamples (bootstrap intervals, paired tests in ``harness check``).
    """

    subsets: list[Scores]
    skipped_inputs: list[str] = field(default_factory=list)
    units: dict[str, UnitScores] = field(default_factory=dict)


class TaskType(ABC):
    """A kind of evaluation (retrieval, linear probe, ...). Entries of a type are data only."""

    name: ClassVar[str]
    default_main_score: ClassVar[str]
    # The metrics the type reports (``metric_names`` computes them where settings decide).
    metrics: ClassVar[tuple[str, ...]] = ()
    protocol_model: ClassVar[type[Protocol]] = Protocol
    # Whether the type can score per-token (MaxSim) embeddings, not only single vectors.
    scores_multi_vector: ClassVar[bool] = False

    def check_adapter(self, task: TaskDefinition, similarity: str) -> None:
        """Refuse a multi-vector model for a type that scores single vectors only."""
        if similarity == "maxsim" and not self.scores_multi_vector:
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
    def evaluate(
        self, task: TaskDefinition, encoder: Encoder, *, split: str, limit: int | None = None
    ) -> SplitOutcome:
        """Score one split of ``task`` with the vectors ``encoder`` produces."""

    def mean_units(
        self,
        task: TaskDefinition,
        per_unit: Mapping[str, Sequence[float]],
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
        self, task: TaskDefinition, metrics: dict[str, float], subset: str = "default"
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
