"""Sampled frames kept on disk for the rest of a run, so that a clip several tasks share (a
video-only and an audio-video variant of one dataset, a classification and a zero-shot task
over one clip set) is decoded once, even when its items differ and miss the embedding cache.

A run opens a store with :func:`frame_store`; the DataLoader workers, which inherit its
location through the environment, read and write it from :meth:`harness.core.video.Video.frames`.
Frames stay in the workers' files and never cross to the main process. The store holds at most
``max_bytes`` (past that, clips decode again), and is deleted when the run ends.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

LOCATION_VARIABLE = "HARNESS_FRAME_STORE"
LIMIT_VARIABLE = "HARNESS_FRAME_STORE_BYTES"
# The default cap: 8 GiB of sampled frames (about 3,000 ten-second 360p clips at 2 fps).
DEFAULT_MAX_BYTES = 8 << 30
_USED = "used-bytes"


@contextmanager
def frame_store(parent: Path | None = None, max_bytes: int | None = None) -> Iterator[Path]:
    """A fresh store under ``parent`` (the system's temporary folder when None) for the
    duration of the block, announced to worker processes through the environment. Its cap is
    ``max_bytes``, else ``$HARNESS_FRAME_STORE_BYTES``, else :data:`DEFAULT_MAX_BYTES`."""
    if max_bytes is None:
        max_bytes = int(os.environ.get(LIMIT_VARIABLE) or DEFAULT_MAX_BYTES)
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="harness-frames-", dir=parent))
    (root / _USED).write_text("0")
    saved = {name: os.environ.get(name) for name in (LOCATION_VARIABLE, LIMIT_VARIABLE)}
    os.environ[LOCATION_VARIABLE] = str(root)
    os.environ[LIMIT_VARIABLE] = str(max_bytes)
    try:
        yield root
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(root, ignore_errors=True)


def is_open() -> bool:
    """Whether this process runs inside a run's store (so a clip's hash is worth computing)."""
    return bool(os.environ.get(LOCATION_VARIABLE))


def _path(clip: str, indices: Sequence[int]) -> Path | None:
    root = os.environ.get(LOCATION_VARIABLE)
    if not root or not os.path.isdir(root):
        return None
    key = hashlib.sha256(f"{clip}:{','.join(map(str, indices))}".encode()).hexdigest()
    return Path(root) / key[:2] / f"{key}.npy"


def lookup(clip: str, indices: Sequence[int]) -> np.ndarray | None:
    """The frames kept for ``indices`` of the clip whose bytes hash to ``clip``, if any."""
    path = _path(clip, indices)
    if path is None or not path.exists():
        return None
    try:
        return np.load(path)
    except (OSError, ValueError):  # a file another worker is replacing: decode instead
        return None


def keep(clip: str, indices: Sequence[int], frames: np.ndarray) -> bool:
    """Keep ``frames`` (those picked at ``indices``) while the store has room; whether kept."""
    path = _path(clip, indices)
    if path is None or path.exists():
        return False
    if not _reserve(path.parent.parent, frames.nbytes):
        return False
    path.parent.mkdir(exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    with open(partial, "wb") as handle:
        np.save(handle, frames)
    os.replace(partial, path)
    return True


def _reserve(root: Path, size: int) -> bool:
    """Add ``size`` to the store's tally when it stays under the cap (under a file lock)."""
    limit = int(os.environ.get(LIMIT_VARIABLE, DEFAULT_MAX_BYTES))
    with open(root / _USED, "r+") as tally:
        fcntl.flock(tally, fcntl.LOCK_EX)
        used = int(tally.read() or 0)
        if used + size > limit:
            return False
        tally.seek(0)
        tally.write(str(used + size))
        tally.truncate()
    return True
