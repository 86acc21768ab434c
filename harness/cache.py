"""A content-addressed embedding cache shared by all tasks.

Each embedding is one ``.npy`` file named by its key, written to a temporary file and moved
into place with ``os.replace``. A crash mid-write leaves at most a stray temporary file, never a
half-written entry, and several processes can write to one cache at once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from harness.errors import HarnessError


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
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise HarnessError(
                f"cannot create the embedding cache at {self.root}: {error.strerror}. "
                "Pass --cache-dir DIR with a writable folder, or --no-cache."
            ) from error

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached embeddings among ``keys``; unreadable entries count as misses."""
        found: dict[str, np.ndarray] = {}
        for key in keys:
            path = self._path(key)
            if not path.exists():
                continue
            try:
                found[key] = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                continue
        return found

    def put_many(self, entries: Mapping[str, np.ndarray]) -> None:
        """Store embeddings atomically, one file each."""
        for key, vector in entries.items():
            path = self._path(key)
            path.parent.mkdir(exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as stream:
                    np.save(stream, np.asarray(vector), allow_pickle=False)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.npy"))
