"""Open registries: built-in entries by name, plus the ones installed plugins declare under a
Python entry-point group, each imported on first use.

A registry is a read-only mapping from names to entries. Listing its names or testing one
imports nothing: a built-in entry may be a ``"module:attr"`` reference and a plugin is an entry
point, both imported when their entry is first looked up. A plugin that cannot be imported,
that holds the wrong kind of object, or whose name clashes with another entry, is a
``HarnessError`` that names the plugin and its distribution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib import import_module, metadata
from typing import Generic, TypeVar

from harness.core.errors import HarnessError

T = TypeVar("T")


class PluginError(HarnessError):
    """An installed plugin that cannot be used."""


def load_reference(reference: str) -> object:
    """The object that a ``"module:attr"`` (or ``"module:attr.attr"``) reference names."""
    module_name, _, attributes = reference.partition(":")
    target: object = import_module(module_name)
    for attribute in filter(None, attributes.split(".")):
        target = getattr(target, attribute)
    return target


class Registry(Mapping[str, T], Generic[T]):
    """Built-in entries, then plugins of the entry-point group ``group``, by name.

    ``builtins`` maps a name to its entry or to a ``"module:attr"`` reference to it. ``adopt``
    turns an imported object (a reference's or an entry point's) into an entry, raising
    ``ValueError`` (or ``TypeError``) with the reason when the object is not a valid entry of
    that name.
    """

    def __init__(
        self,
        kind: str,
        group: str,
        builtins: Mapping[str, T | str],
        adopt: Callable[[str, object], T],
    ) -> None:
        self.kind = kind
        self.group = group
        self._builtins = dict(builtins)
        self._adopt = adopt
        self._loaded: dict[str, T] = {}
        self._plugins: dict[str, metadata.EntryPoint] | None = None

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        """The group's entry points by name (read once); a name that a built-in entry or another
        plugin already has is refused."""
        if self._plugins is None:
            plugins: dict[str, metadata.EntryPoint] = {}
            for point in metadata.entry_points(group=self.group):
                clash = "is built in" if point.name in self._builtins else None
                if point.name in plugins and plugins[point.name].value != point.value:
                    clash = f"is also registered by {_origin(plugins[point.name])}"
                if clash:
                    raise PluginError(
                        f"plugin {_origin(point)} registers the {self.kind} {point.name!r}, "
                        f"which {clash}. Uninstall one of them or rename the entry point "
                        f"(group {self.group})."
                    )
                plugins[point.name] = point
            self._plugins = plugins
        return self._plugins

    def __getitem__(self, name: str) -> T:
        plugins = self._entry_points()  # a clash is refused whatever is looked up
        if name not in self._loaded:
            if name in self._builtins:
                builtin = self._builtins[name]
                entry = (
                    self._adopt(name, load_reference(builtin))
                    if isinstance(builtin, str)
                    else builtin
                )
            elif name in plugins:
                entry = self._load_plugin(plugins[name])
            else:
                raise KeyError(name)
            self._loaded[name] = entry
        return self._loaded[name]

    def _load_plugin(self, point: metadata.EntryPoint) -> T:
        """The plugin's entry; a clear error when it does not import or is no valid entry."""
        where = f"plugin {_origin(point)} ({self.group}: {point.name} = {point.value})"
        try:
            loaded = point.load()
        except Exception as error:  # any import-time failure of third-party code
            raise PluginError(
                f"{where} failed to load: {type(error).__name__}: {error}. Fix or uninstall it."
            ) from None
        try:
            return self._adopt(point.name, loaded)
        except (TypeError, ValueError) as error:
            raise PluginError(f"{where} is not a valid {self.kind}: {error}") from None

    def __contains__(self, name: object) -> bool:
        plugins = self._entry_points()
        return name in self._builtins or name in plugins

    def __iter__(self) -> Iterator[str]:
        yield from self._builtins
        yield from self._entry_points()

    def __len__(self) -> int:
        return len(self._builtins) + len(self._entry_points())


def _origin(point: metadata.EntryPoint) -> str:
    """The distribution that declares an entry point, for messages."""
    dist = point.dist
    return f"{dist.name} {dist.version}" if dist is not None else repr(point.value)
