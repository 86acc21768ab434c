"""A part kept as its stored file: encoded bytes, or a path to them (images, audio clips...)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredFile:
    """Encoded file bytes, or a path to such a file; never decoded here."""

    data: bytes | None = None
    path: str | None = None

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
