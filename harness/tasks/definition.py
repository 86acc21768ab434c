"""The declarative task definition, shared by built-in entries and users' custom YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.core.modalities import CategorySides, parse_category


class DatasetSpec(BaseModel):
    """Where the data lives and how its parts are named.

    ``path`` is a hub id or a local directory (relative to the YAML file that names it).
    ``configs`` maps a part the task type reads (``corpus``, ``queries``, ``qrels``...) to the
    dataset's config name, or with a trailing ``/`` to a folder of the dataset whose data files
    hold the part (``queries/``: read with ``load_dataset(path, data_dir=...)``), ``splits``
    maps a part to a split name when it differs from the eval split, and ``columns`` maps a
    column the task type reads to the dataset's column name.
    ``private`` marks a hub repo that only accounts its owners admit can download (mteb's
    ``is_public=False``): a failed load says so. Recorded only when set.
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    revision: str | None = None
    configs: dict[str, str] = Field(default_factory=dict)
    splits: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, str] = Field(default_factory=dict)
    private: bool = Field(default=False, exclude_if=lambda private: not private)


class Prompts(BaseModel):
    """The instruction given to the model for each role; ``None`` means no instruction."""

    model_config = ConfigDict(extra="forbid")

    query: str | None = None
    document: str | None = None


class TaskDefinition(BaseModel):
    """Everything that defines a task: data, splits, languages, scoring and prompts."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    description: str = ""
    reference: str | None = None
    dataset: DatasetSpec
    eval_splits: list[str] = Field(default_factory=lambda: ["test"], min_length=1)
    languages: list[str] = Field(default_factory=lambda: ["eng-Latn"])
    # Query letters, "2", document letters: one letter per modality of the registry
    # (t text, i image, ...), or "c" for class labels on the document side.
    category: str
    main_score: str | None = None
    prompts: Prompts = Field(default_factory=Prompts)
    protocol: dict[str, Any] = Field(default_factory=dict)
    # Rows per eval split as mteb's metadata counts them (for plans and listings; not enforced).
    n_samples: dict[str, int] = Field(default_factory=dict)
    source_file: Path | None = Field(default=None, exclude=True)

    @field_validator("category")
    @classmethod
    def _parse_category(cls, category: str) -> str:
        parse_category(category)  # a ValueError names the bad letter and the known ones
        return category

    @property
    def sides(self) -> CategorySides:
        """The category's modalities, query side and document side."""
        return parse_category(self.category)

    @model_validator(mode="after")
    def _resolve_local_path(self) -> TaskDefinition:
        """Make a relative local dataset path absolute, relative to its YAML file."""
        if self.source_file is not None:
            candidate = (self.source_file.parent / self.dataset.path).resolve()
            if candidate.exists():
                self.dataset.path = str(candidate)
        return self

    @property
    def is_local(self) -> bool:
        """Whether the dataset is a local directory rather than a hub id."""
        return Path(self.dataset.path).is_dir()

    @property
    def input_modalities(self) -> frozenset[str]:
        """What a model must embed for the task (a class label, ``c``, is not embedded)."""
        return frozenset(self.sides.inputs)
