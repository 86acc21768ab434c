"""A content-addressed embedding cache shared by all tasks.

Each embedding is one ``.npy`` file named by its key, written atomically and durably
(``harness.engine.atomic``: flushed to disk, then renamed into place). A crash mid-write
leaves at most a stray temporary file, never a half-written entry, and several processes can
write to one cache at once.

The cache never serves garbage: an entry that does not load (empty, truncated, not ``.npy``), is
not float32, has the wrong number of dimensions, is empty or holds a NaN or an infinity is a miss,
and is encoded again and overwritten. A disk that is full or read-only (or a folder that cannot
be created) turns writing off with one warning on stderr; the run goes on without caching.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from harness.engine.atomic import write_atomic


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
    """Embeddings on disk, one file per key, sharded by the key's first two hex digits."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root) / "embeddings"
        # False once a write failed (full or read-only disk): the run goes on without caching.
        self.writable = True
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self._stop_writing(error)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get_many(self, keys: Iterable[str], ndim: int = 1) -> dict[str, np.ndarray]:
        """The usable cached embeddings among ``keys``: float32 arrays of ``ndim`` dimensions
        (1 for a vector, 2 for a multi-vector item's tokens), none empty, every value finite.
        Any other entry is a miss."""
        found: dict[str, np.ndarray] = {}
        for key in keys:
            array = self._load(self._path(key))
            if array is not None and _usable(array, ndim):
                found[key] = array
        return found

    @staticmethod
    def _load(path: Path) -> np.ndarray | None:
        try:
            data = path.read_bytes()
        except OSError:  # absent, or unreadable: a miss either way
            return None
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, EOFError, OSError):  # empty, truncated or not an .npy file
            return None

    def put_many(self, entries: Mapping[str, np.ndarray]) -> None:
        """Store embeddings, one file each; after a failed write, store nothing more."""
        for key, vector in entries.items():
            if not self.writable:
                return
            path = self._path(key)
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(vector), allow_pickle=False)
            try:
                path.parent.mkdir(exist_ok=True)
                write_atomic(path, buffer.getvalue())
            except OSError as error:
                self._stop_writing(error)

    def _stop_writing(self, error: OSError) -> None:
        """Turn writing off, with the one warning of this cache."""
        self.writable = False
        print(
            f"harness: warning: cannot write the embedding cache at {self.root} "
            f"({error.strerror or error}); going on without caching. Free space there, or pass "
            "--cache-dir DIR or --no-cache.",
            file=sys.stderr,
        )

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.npy"))


def _usable(array: np.ndarray, ndim: int) -> bool:
    """Whether a loaded entry can be served: float32, ``ndim`` dimensions, not empty, finite."""
    return (
        array.dtype == np.float32
        and array.ndim == ndim
        and array.size > 0
        and bool(np.isfinite(array).all())
    )
