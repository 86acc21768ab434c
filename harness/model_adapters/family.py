"""What a model family is: the one factory protocol every family's adapters are built through,
and the family record that the registry keeps.

Importing this module is cheap: a family's record names its factory by ``"module:attr"``, and
that module (with torch, transformers...) is imported when a model of the family loads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, cast

from harness.core.adapter import (
    DOCUMENT_PARTS,
    DOCUMENT_PARTS_OPTION,
    PAGE_TEXT,
    Adapter,
    DocumentParts,
    embeddable_parts,
    kept_parts,
)
from harness.core.errors import HarnessError
from harness.core.plugins import load_reference


@dataclass(frozen=True, kw_only=True)
class LoadRequest:
    """Everything a family needs to load one model.

    ``source`` is a local directory or a hub id; ``name`` and ``revision`` are what results
    record; ``hub_revision`` is the hub commit to download (None for a local directory or the
    default branch); ``options`` are the family's own settings (refused when unknown).
    """

    source: str
    name: str
    revision: str
    hub_revision: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class AdapterFactory(Protocol):
    """Builds a family's adapter; an adapter class whose constructor takes a ``LoadRequest``
    is one."""

    def __call__(self, request: LoadRequest) -> Adapter: ...


class ModelFiles(Protocol):
    """The files of a model that is not loaded yet: a local directory or a hub repository."""

    @property
    def where(self) -> str:
        """The directory or hub id, for messages."""
        ...

    def file(self, name: str) -> Path | None:
        """The model's file ``name`` (fetched from the hub if need be), or None without one."""
        ...


@dataclass(frozen=True)
class Family:
    """A model family: the inputs its adapters embed, how to build one, and which models it
    recognises.

    ``factory`` is an ``AdapterFactory`` or a ``"module:attr"`` reference to one, imported on
    first load. ``detects`` tells from a model's files whether the family loads that model
    (None: only models registered under the family's name); families are asked in registry
    order, built-in ones first.

    ``document_parts`` is how its adapters embed a document with both an image and a text part
    (``fused``: as mteb's wrapper for the family fuses them; ``image`` or ``text``: that part
    alone); None derives it from ``modalities`` (``fused`` for a family that embeds both, else
    the one it embeds). A family that embeds both also accepts the option ``document_parts``,
    which overrides it; the adapter's ``meta.document_parts`` records the one in use.
    """

    name: str
    modalities: tuple[str, ...]
    factory: AdapterFactory | str
    detects: Callable[[ModelFiles], bool] | None = None
    description: str = ""
    # The option keys its adapters accept, or a "module:attr" reference to them (imported on
    # first check); None leaves the check to the adapter, which refuses unknown keys itself.
    options: frozenset[str] | str | None = None
    document_parts: DocumentParts | None = None

    def __post_init__(self) -> None:
        declared = self.document_parts
        if declared is not None and not kept_parts(declared) <= set(self.modalities):
            raise ValueError(
                f"model family {self.name!r}: document_parts {declared!r} needs "
                f"{' and '.join(sorted(kept_parts(declared)))}, but it embeds "
                f"{', '.join(self.modalities)}"
            )

    @property
    def default_document_parts(self) -> DocumentParts | None:
        """How its adapters embed a page-plus-text document unless told otherwise."""
        return self.document_parts or embeddable_parts(self.modalities)

    @property
    def chooses_document_parts(self) -> bool:
        """Whether it embeds images and texts, so that ``document_parts`` can choose."""
        return set(self.modalities) >= PAGE_TEXT

    def accepted_options(self) -> frozenset[str] | None:
        """The option keys the family accepts; None when it does not declare them."""
        accepted = self.options
        if isinstance(accepted, str):
            accepted = frozenset(cast(Iterable[str], load_reference(accepted)))
        if accepted is not None and self.chooses_document_parts:
            return accepted | {DOCUMENT_PARTS_OPTION}
        return accepted

    def check_options(self, model: str, options: Mapping[str, Any]) -> None:
        """Refuse option keys the family declares it does not accept, before anything loads,
        naming the model, the keys and the accepted ones."""
        accepted = self.accepted_options()
        unknown = sorted(set(options) - accepted) if accepted is not None else []
        if unknown:
            keys = ", ".join(sorted(accepted or ())) or "none"
            raise HarnessError(
                f"model {model!r} ({self.name} family): unknown option(s) {', '.join(unknown)}; "
                f"the options it accepts: {keys}"
            )
        self.chosen_document_parts(model, options)

    def chosen_document_parts(self, model: str, options: Mapping[str, Any]) -> DocumentParts | None:
        """The document parts ``options`` choose (the family's default without the option);
        a value other than ``fused``, ``image`` or ``text`` is refused, naming them."""
        if DOCUMENT_PARTS_OPTION not in options or not self.chooses_document_parts:
            return self.default_document_parts
        value = options[DOCUMENT_PARTS_OPTION]
        if isinstance(value, str) and value in DOCUMENT_PARTS:
            return value
        raise HarnessError(
            f"model {model!r} ({self.name} family): option {DOCUMENT_PARTS_OPTION} must be "
            f"one of {', '.join(DOCUMENT_PARTS)} (how a document with both a page image and "
            f"its text is embedded), got {value!r}"
        )

    def load(self, request: LoadRequest) -> Adapter:
        """Build the adapter; refused when it embeds other inputs than the family declares.

        The ``document_parts`` option is the family's, not the adapter's: it is taken out of
        the adapter's options and set on its metadata (see ``Family``)."""
        factory = self.factory
        if isinstance(factory, str):
            factory = cast(AdapterFactory, load_reference(factory))
        chosen = self.chosen_document_parts(request.name, request.options)
        if DOCUMENT_PARTS_OPTION in request.options and self.chooses_document_parts:
            options = {k: v for k, v in request.options.items() if k != DOCUMENT_PARTS_OPTION}
            request = replace(request, options=options)
        adapter = factory(request)
        meta = adapter.meta
        if set(meta.modalities) != set(self.modalities):
            raise HarnessError(
                f"model family {self.name!r} declares the modalities {list(self.modalities)}, "
                f"but its adapter for {request.name} embeds {list(meta.modalities)}"
            )
        if chosen != meta.document_parts:
            # An override is an option (in the fingerprint); the default is not, so that the
            # keys and results of every run before document parts existed stay as they were.
            recorded = dict(meta.options)
            if chosen != self.default_document_parts:
                recorded[DOCUMENT_PARTS_OPTION] = chosen
            adapter.meta = replace(meta, document_parts=chosen, options=recorded)
        return adapter


def config_model_type(files: ModelFiles) -> str | None:
    """The ``model_type`` of a model's config.json (None without one)."""
    config = files.file("config.json")
    if config is None:
        return None
    content = json.loads(config.read_text(encoding="utf-8"))
    model_type = content.get("model_type") if isinstance(content, dict) else None
    return str(model_type) if model_type else None
