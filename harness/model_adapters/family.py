"""What a model family is: the one factory protocol every family's adapters are built through,
and the family record that the registry keeps.

Importing this module is cheap: a family's record names its factory by ``"module:attr"``, and
that module (with torch, transformers...) is imported when a model of the family loads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, cast

from harness.core.adapter import Adapter
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
    """

    name: str
    modalities: tuple[str, ...]
    factory: AdapterFactory | str
    detects: Callable[[ModelFiles], bool] | None = None
    description: str = ""
    # The option keys its adapters accept, or a "module:attr" reference to them (imported on
    # first check); None leaves the check to the adapter, which refuses unknown keys itself.
    options: frozenset[str] | str | None = None

    def accepted_options(self) -> frozenset[str] | None:
        """The option keys the family accepts; None when it does not declare them."""
        if isinstance(self.options, str):
            return frozenset(cast(Iterable[str], load_reference(self.options)))
        return self.options

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

    def load(self, request: LoadRequest) -> Adapter:
        """Build the adapter; refused when it embeds other inputs than the family declares."""
        factory = self.factory
        if isinstance(factory, str):
            factory = cast(AdapterFactory, load_reference(factory))
        adapter = factory(request)
        if set(adapter.meta.modalities) != set(self.modalities):
            raise HarnessError(
                f"model family {self.name!r} declares the modalities {list(self.modalities)}, "
                f"but its adapter for {request.name} embeds {list(adapter.meta.modalities)}"
            )
        return adapter


def config_model_type(files: ModelFiles) -> str | None:
    """The ``model_type`` of a model's config.json (None without one)."""
    config = files.file("config.json")
    if config is None:
        return None
    content = json.loads(config.read_text(encoding="utf-8"))
    model_type = content.get("model_type") if isinstance(content, dict) else None
    return str(model_type) if model_type else None
