"""Atomic, durable file writes: the one way the engine puts a file on disk.

The bytes go to a temporary file beside the target, are flushed to the disk (``fsync``) and only
then renamed over the target, so a crash or a full disk leaves the old file or the new one,
never a torn one. The temporary file is created with mode 0666, so the target gets the
permissions the process's umask allows (``tempfile.mkstemp`` would make it 0600).
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from pathlib import Path

# Opened without inheritance by child processes (tesseract, DataLoader workers started later).
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably; on any failure ``path`` is untouched,
    the temporary file is removed and the error (an ``OSError`` for a full or read-only disk)
    is raised."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with os.fdopen(os.open(temporary, _FLAGS, 0o666), "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
