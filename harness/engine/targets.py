"""Checks on the paths a command writes to, made before any work.

A target that is a symbolic link is refused rather than followed (a link could send results,
a site or a verdict file anywhere); a folder target must not be a file, a file target must not
be a folder, and the folder that receives the files must take a small write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.core.errors import HarnessError

# Bytes written by the probe: enough to fail on a full disk, where an empty file would not.
_PROBE_BYTES = 4096


def refuse_link(path: Path, option: str) -> None:
    """Refuse a target that is a symbolic link (dangling or not)."""
    if path.is_symlink():
        raise HarnessError(
            f"{option} {path} is a symbolic link (to {os.readlink(path)}); refusing to follow "
            "it. Pass the real path, or another one."
        )


def folder_target(path: Path, option: str, *, probe: bool = True) -> None:
    """Refuse a folder target that is a link or a file; with ``probe``, also one where a file
    cannot be written (tried in its nearest existing folder: nothing is created)."""
    refuse_link(path, option)
    if path.exists() and not path.is_dir():
        raise HarnessError(f"{option} {path} is a file, not a folder. Pass a folder.")
    if probe:
        _probe(path, option)


def file_target(path: Path, option: str) -> None:
    """Refuse a file target that is a link or a folder, or whose folder cannot be written."""
    refuse_link(path, option)
    if path.is_dir():
        raise HarnessError(f"{option} {path} is a folder. Pass the path of a file to write.")
    _probe(path.parent, option)


def _probe(folder: Path, option: str) -> None:
    """Write (then remove) a small file in ``folder``, or in its nearest existing ancestor."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise HarnessError(
            f"{option} {folder} is not writable: {existing} is a file, so no folder can be "
            "made there. Pass another path."
        )
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".write-test-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(b"\0" * _PROBE_BYTES)
                stream.flush()
                os.fsync(stream.fileno())
        finally:
            os.unlink(probe)
    except OSError as error:
        raise HarnessError(
            f"{option} {folder} is not writable ({error.strerror} in {existing}). Pass a path "
            "you can write to, on a disk with free space."
        ) from None
