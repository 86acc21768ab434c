"""A content-addressed embedding cache shared by all tasks.

The embeddings live in an append-only shard store (``harness.engine.shard_store``) under
``<root>/embedding-store/``: raw float32 payloads in a few large shard files, indexed by key in
SQLite. Each process appends to shard files of its own, so several processes can write to one
cache at once, and a batch's bytes are flushed to the disk before the index points at them, so
a kill at any point leaves a consistent cache (at most some unindexed bytes, which
``harness cache prune`` reclaims).

The cache never serves garbage: an entry whose bytes are missing, short or fail their checksum,
that has the wrong number of dimensions, is empty or holds a NaN or an infinity is a miss, and
is encoded again and overwritten. A disk that is full or read-only (or a folder that cannot be
created) turns writing off with one warning on stderr; the run goes on without caching.

Caches written before the shard store (one ``.npy`` file per key under ``<root>/embeddings/``)
are still read: a key the store lacks is looked up there, under the same rules. New entries go
to the store only; ``harness cache prune --old-format`` removes the old files.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import sys
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path

import numpy as np

from harness.engine.shard_store import SHARD_BYTES, ShardStore

# The folders of the store and of the one-file-per-key caches before it, under the cache root.
STORE_FOLDER = "embedding-store"
OLD_FOLDER = "embeddings"


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE`` if set, else ``~/.cache/harness``."""
    env = os.environ.get("HARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "harness"


def cache_key(
    fingerprint: str, role: str | None, instruction: str | None, modality: str, content: str
) -> str:
    """The key of DESIGN.md: a hash of fingerprint, role, instruction, modality and content."""
    fields = (fingerprint, role or "", instruction or "", modality, content)
    return hashlib.sha256("\0".join(fields).encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeddings on disk by key (64 hex digits, as :func:`cache_key` makes them)."""

    def __init__(self, root: str | os.PathLike[str], shard_bytes: int = SHARD_BYTES) -> None:
        self.root = Path(root)
        self.old_root = self.root / OLD_FOLDER
        # False once a write failed (full or read-only disk): the run goes on without caching.
        self.writable = True
        self._store: ShardStore | None = None
        try:
            self._store = ShardStore(self.root / STORE_FOLDER, shard_bytes)
        except (OSError, sqlite3.Error) as error:
            self._stop_writing(error)
            with suppress(OSError, sqlite3.Error):  # an existing store may still be read
                self._store = ShardStore(self.root / STORE_FOLDER, readonly=True)
        self._has_old = self.old_root.is_dir()

    def get_many(self, keys: Iterable[str], ndim: int = 1) -> dict[str, np.ndarray]:
        """The usable cached embeddings among ``keys``: float32 arrays of ``ndim`` dimensions
        (1 for a vector, 2 for a multi-vector item's tokens), none empty, every value finite.
        Any other entry is a miss."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        if self._store is not None:
            try:
                locations = self._store.locate(wanted)
            except sqlite3.Error:  # an index that cannot be read serves nothing
                locations = {}
            shaped = {key: at for key, at in locations.items() if at.ndim == ndim}
            for key, array in self._store.read_many(shaped).items():
                if _usable(array, ndim):
                    found[key] = array
        if self._has_old:
            for key in wanted:
                old = None if key in found else _load_old(self.old_path(key))
                if old is not None and _usable(old, ndim):
                    found[key] = old
        return {key: found[key] for key in wanted if key in found}

    def old_path(self, key: str) -> Path:
        """Where a cache before the shard store kept ``key``."""
        return self.old_root / key[:2] / f"{key}.npy"

    def put_many(
        self, entries: Mapping[str, np.ndarray], fingerprints: Mapping[str, str] | None = None
    ) -> None:
        """Store embeddings (an unusable one, which would be a miss, is not stored), labelled
        with their model fingerprint where ``fingerprints`` names it (``harness cache info``
        counts them by it, ``prune --fingerprint`` selects them); after a failed write, store
        nothing more."""
        if not self.writable or self._store is None:
            return
        usable = {}
        for key, value in entries.items():
            array = np.asarray(value)
            if array.ndim in (1, 2) and _usable(array, array.ndim):
                usable[key] = array
        try:
            self._store.put(usable, fingerprints)
        except (OSError, sqlite3.Error) as error:
            self._stop_writing(error)

    def _stop_writing(self, error: OSError | sqlite3.Error) -> None:
        """Turn writing off, with the one warning of this cache."""
        self.writable = False
        print(
            f"harness: warning: cannot write the embedding cache at {self.root} "
            f"({getattr(error, 'strerror', None) or error}); going on without caching. Free "
            "space there, or pass --cache-dir DIR or --no-cache.",
            file=sys.stderr,
        )

    def close(self) -> None:
        """Release the shard this cache writes to (so ``prune`` may compact it) and its files."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __len__(self) -> int:
        """Entries in the store, plus old-format files."""
        stored = len(self._store) if self._store is not None else 0
        return stored + (count_old_entries(self.old_root)[0] if self._has_old else 0)


def count_old_entries(folder: Path) -> tuple[int, int]:
    """The number of old-format ``.npy`` entries under ``folder`` and their bytes."""
    count = size = 0
    with suppress(FileNotFoundError):
        for shard in os.scandir(folder):
            if shard.is_dir():
                for entry in os.scandir(shard.path):
                    if entry.name.endswith(".npy"):
                        count += 1
                        size += entry.stat().st_size
    return count, size


def _load_old(path: Path) -> np.ndarray | None:
    """An old-format entry, or None when it is absent, unreadable or not an ``.npy`` file."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError):
        return None


def _usable(array: np.ndarray, ndim: int) -> bool:
    """Whether an entry can be served: float32, ``ndim`` dimensions, not empty, finite."""
    return (
        array.dtype == np.float32
        and array.ndim == ndim
        and array.size > 0
        and bool(np.isfinite(array).all())
    )
