"""A model loaded on its first cache miss: what lets a warm rerun skip torch and the weights.

A run needs a model's metadata (:class:`harness.core.adapter.AdapterMeta`: its fingerprint
keys the cache and names the result folder) long before it needs the model itself. The first
load of a model records its metadata beside the embedding cache (``<cache>/models/<key>.json``)
under :func:`harness.model_adapters.registry.model_load_key`, a hash of everything that decides
the adapter that load builds: the bytes of a local model's files or a hub model's commit, the
options, device and dtype, the adapters' code and the loading libraries' versions. A later run
with the same key takes the recorded metadata and loads the model only when an input is not
in the cache; a run whose every vector is cached never imports torch or transformers.

A record never outranks the model: when the model does load, its metadata must equal the
record's, else the record is removed and the run stops (a rerun then starts from the model).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.adapter import Adapter, AdapterMeta, Item, Role
from harness.core.errors import HarnessError
from harness.engine.atomic import write_atomic


class ModelRecords:
    """Adapter metadata by model load key, one JSON file each, under ``<cache>/models``."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = Path(cache_dir) / "models"

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> AdapterMeta | None:
        """The metadata recorded under ``key``; None when there is none or it does not read
        back to exactly what was recorded."""
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            meta = meta_from_dict(data)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return meta if json_form(meta) == data else None

    def put(self, key: str, meta: AdapterMeta) -> None:
        """Record ``meta`` under ``key`` (a folder that cannot be written records nothing)."""
        blob = json.dumps(json_form(meta), sort_keys=True, indent=1).encode()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_atomic(self._path(key), blob)
        except OSError:
            return

    def remove(self, key: str) -> None:
        """Forget the record of ``key``."""
        self._path(key).unlink(missing_ok=True)


def json_form(meta: AdapterMeta) -> dict[str, Any]:
    """``meta.to_dict()`` as it reads back from JSON (tuples as lists...)."""
    result: dict[str, Any] = json.loads(json.dumps(meta.to_dict(), default=str))
    return result


def meta_from_dict(data: dict[str, Any]) -> AdapterMeta:
    """The :class:`AdapterMeta` whose ``to_dict`` gave ``data``."""
    fields = {key: value for key, value in data.items() if key != "fingerprint"}
    fields["modalities"] = tuple(fields["modalities"])
    return AdapterMeta(**fields)


@dataclass
class LazyAdapter:
    """An adapter whose model loads on the first ``encode`` (or :meth:`loaded`), with the
    metadata recorded under its load key meanwhile."""

    meta: AdapterMeta
    load: Callable[[], Adapter]
    # Forgets the record when the model, once loaded, disagrees with it.
    forget: Callable[[], None] = lambda: None
    load_seconds: float = 0.0
    _model: Adapter | None = field(default=None, repr=False)

    @property
    def is_loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._model is not None

    def loaded(self) -> Adapter:
        """The model's adapter, loaded now if it was not; refused when its metadata is not
        the recorded one."""
        if self._model is None:
            start = time.perf_counter()
            model = self.load()
            self.load_seconds += time.perf_counter() - start
            if json_form(model.meta) != json_form(self.meta):
                self.forget()
                raise HarnessError(
                    f"model {self.meta.name!r} loaded with other metadata (fingerprint "
                    f"{model.meta.fingerprint}) than the record beside the embedding cache "
                    f"(fingerprint {self.meta.fingerprint}) says; the record is removed. Run "
                    "again: the model then loads first and its metadata is recorded anew."
                )
            self._model = model
        return self._model

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray | list[np.ndarray]:
        """Encode with the model, loading it first if need be."""
        return self.loaded().encode(items, role=role, instruction=instruction)


def model_adapter(
    load: Callable[[], Adapter], key: str | None, records: ModelRecords | None
) -> Adapter:
    """The adapter of a model: a :class:`LazyAdapter` on the metadata recorded under ``key``
    when there is such a record, else the model loaded now (its metadata then recorded)."""
    if key is None or records is None:
        return load()
    recorded = records.get(key)
    if recorded is not None:
        return LazyAdapter(recorded, load, forget=lambda: records.remove(key))
    start = time.perf_counter()
    model = load()
    records.put(key, model.meta)
    seconds = time.perf_counter() - start
    return LazyAdapter(model.meta, lambda: model, load_seconds=seconds, _model=model)
