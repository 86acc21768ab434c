"""A run's vectors in memory: what shares them between tasks when there is no embedding cache.

:class:`MemoryStore` has the interface of :class:`harness.engine.cache.EmbeddingCache`
(``get_many``, ``put_many``, ``writable``), so :class:`harness.engine.encoding.BatchEncoder`
serves an input that several tasks of a run share from it, and encodes it once, with
``--no-cache`` too. It holds what ``put_many`` gave it, up to ``max_bytes`` (2 GiB by default:
a million 512-d float32 vectors, far more than the inputs of a run of the demo or of a MIEB
benchmark's shared datasets); past that it drops the entries used least recently, which are
then encoded again if a later task needs them (the numbers are the same either way: an item
is always encoded in the same batch, beside the same neighbours).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Protocol

import numpy as np

DEFAULT_MAX_BYTES = 2 << 30


class VectorStore(Protocol):
    """Where an encoder keeps vectors by cache key: an ``EmbeddingCache`` or a ``MemoryStore``."""

    writable: bool

    def get_many(self, keys: Iterable[str], ndim: int = 1) -> dict[str, np.ndarray]:
        """The usable stored vectors among ``keys``, of ``ndim`` dimensions."""
        ...

    def put_many(self, entries: Mapping[str, np.ndarray]) -> None:
        """Store vectors by key."""
        ...


class MemoryStore:
    """Vectors by cache key, in memory, least recently used dropped past ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self.writable = True  # as EmbeddingCache's: a memory store never stops accepting
        self.nbytes = 0
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()

    def get_many(self, keys: Iterable[str], ndim: int = 1) -> dict[str, np.ndarray]:
        """The stored vectors among ``keys`` that have ``ndim`` dimensions."""
        found: dict[str, np.ndarray] = {}
        for key in keys:
            vector = self._entries.get(key)
            if vector is not None and vector.ndim == ndim:
                self._entries.move_to_end(key)
                found[key] = vector
        return found

    def put_many(self, entries: Mapping[str, np.ndarray]) -> None:
        """Keep ``entries`` (as read-only float32 copies), then drop the least recently used
        ones until the store fits ``max_bytes``."""
        for key, vector in entries.items():
            kept = np.array(vector, dtype=np.float32)
            kept.flags.writeable = False  # a caller's edit must not change a later task's input
            self._drop(key)
            self._entries[key] = kept
            self.nbytes += kept.nbytes
        while self.nbytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        vector = self._entries.pop(key, None)
        if vector is not None:
            self.nbytes -= vector.nbytes

    def __len__(self) -> int:
        return len(self._entries)
