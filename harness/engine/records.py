"""The typed parts of a result file's ``harness`` block: model, task, run settings, identity.

The runner builds these records when it writes a result; validation, ``harness check``,
submission and the leaderboard read their fields. Every record keeps a key it does not know
as it was written (``extra="allow"``), so a file of another harness version reads and compares
unchanged, and the JSON written is exactly what the plain dictionaries gave. Fields that a file
may lack default to ``None`` (or empty), so that validation can name what is missing instead of
refusing the whole file; :meth:`Record.written` is what a file holds, defaults left out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.core.adapter import AdapterMeta


class Record(BaseModel):
    """A part of the harness block: typed fields, and any other key kept as written."""

    model_config = ConfigDict(extra="allow")

    def written(self) -> dict[str, Any]:
        """The keys a file holds, as JSON values (a default filled in on reading is left out)."""
        return self.model_dump(mode="json", exclude_unset=True)


class ModelRecord(Record):
    """The model that made the numbers: ``AdapterMeta.to_dict`` with its fingerprint."""

    name: str | None = None
    revision: str | None = None
    family: str | None = None
    similarity: str | None = None
    modalities: list[str] = Field(default_factory=list)
    dtype: str | None = None
    embed_dim: int | None = None
    n_parameters: int | None = None
    uses_instructions: bool | None = None
    role_aware: bool | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    # Written only when there are (results of models without any keep their old form).
    modality_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, exclude_if=lambda options: not options
    )
    fingerprint: str | None = None

    @classmethod
    def of(cls, meta: AdapterMeta) -> ModelRecord:
        """The record of an adapter's metadata."""
        return cls.model_validate(meta.to_dict())


class DatasetRecord(Record):
    """Where a task's data was read from (``harness.tasks.definition.DatasetSpec`` as recorded)."""

    path: str | None = None
    revision: str | None = None
    configs: dict[str, str] = Field(default_factory=dict)
    splits: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, str] = Field(default_factory=dict)


class TaskRecord(Record):
    """The task as it was scored: its definition with the resolved protocol and main score
    (``harness.tasks.registry.task_record``)."""

    name: str | None = None
    type: str | None = None
    description: str | None = None
    reference: str | None = None
    dataset: DatasetRecord | None = None
    eval_splits: list[str] | None = None
    languages: list[str] = Field(default_factory=list)
    category: str | None = None
    main_score: str | None = None
    prompts: dict[str, str | None] = Field(default_factory=dict)
    protocol: dict[str, Any] = Field(default_factory=dict)
    n_samples: dict[str, int] = Field(default_factory=dict)
    # {split: the main score's exact expected value under uniform random guessing on the data
    # scored}, for the splits whose type knows one (``harness.tasks.chance``); descriptive, like
    # ``n_samples``. Written only when there is one (older results keep their form).
    chance_level: dict[str, float] | None = Field(
        default=None, exclude_if=lambda levels: not levels
    )


class SettingsRecord(Record):
    """The run settings that shape the numbers (``harness.app.runner.RunSettings.recorded``)."""

    batch_size: int | None = None
    device: str | None = None
    dtype: str | None = None
    num_workers: int | None = None
    limit: int | None = None
    skip_bad_inputs: bool | None = None
    # {task: local folder} of every ``--data-dir`` of the run.
    data_dirs: dict[str, str] = Field(default_factory=dict)
    cache: bool | None = None


class IdentityRecord(Record):
    """What makes a result that result (``harness.engine.identity.run_identity``)."""

    digest: str
    task: dict[str, Any]
    dataset_revision: str
    eval_splits: list[str]
    limit: int | None
    skip_bad_inputs: bool
    model_fingerprint: str
    similarity: str
    model_modality_options: dict[str, dict[str, Any]] | None = Field(
        default=None, exclude_if=lambda options: not options
    )


class PhasesRecord(Record):
    """Where one split's time went, in seconds (wall clock), and the encoding throughput.

    Descriptive, like ``chance_level``: no part of a result's identity, reuse or protocol
    comparison, and files without it stay valid. ``load`` reads the dataset into the canonical
    split; ``model_load`` loads a model that loads on its first cache miss; ``decode`` decodes
    and preprocesses inputs (or waits for the workers that do); ``encode`` is the model's
    forward calls; ``score`` is the rest of the split's time (similarities, metrics, bootstrap).
    The five add up to ``total``. ``items_per_second`` is ``items_encoded / encode`` (None when
    nothing was encoded).
    """

    load: float
    model_load: float
    decode: float
    encode: float
    score: float
    total: float
    items_encoded: int
    items_per_second: float | None = None
