"""A part kept as its stored file: encoded bytes, or a path to them (images, audio clips...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self


@dataclass(frozen=True)
class StoredFile:
    """Encoded file bytes, or a path to such a file; never decoded here."""

    data: bytes | None = None
    path: str | None = None

    @classmethod
    def from_cell(cls, value: Any, what: str) -> Self | None:
        """The file a dataset cell holds: its bytes, a path, or a ``datasets`` ``{"bytes",
        "path"}`` value; None for a cell of another kind. A ``ValueError`` (finishing "column X
        ...") when it holds an empty file, called ``what`` ("clip") in the message."""
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
        elif isinstance(value, bytes | bytearray):
            data, path = value, None
        elif isinstance(value, str):
            data, path = None, value
        else:
            return None
        if isinstance(data, bytes | bytearray) and data:
            return cls(data=bytes(data), path=path if isinstance(path, str) else None)
        if isinstance(path, str) and path.strip():
            return cls(path=path)
        raise ValueError(f"holds an empty {what} (0 bytes); store the {what}'s file bytes in it")

    def read_bytes(self) -> bytes:
        """The encoded bytes, read from disk when only a path is stored."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        with open(self.path, "rb") as handle:
            return handle.read()

    def key_bytes(self) -> bytes:
        """What the cache key hashes: the stored bytes. A file that cannot be read hashes to its
        path and error, so the item is keyed apart and its decode reports the error."""
        try:
            return self.read_bytes()
        except OSError as error:
            return f"unreadable:{self.path}:{error.strerror}".encode("utf-8", "replace")
