"""Raw items as tasks hand them to the encoder, before any image is decoded.

A raw item keeps an image as its stored encoded bytes, so that the cache key can be computed
without decoding it, and decoding can happen in DataLoader worker processes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image


@dataclass(frozen=True)
class EncodedImage:
    """An image as stored: encoded bytes (PNG, JPEG, ...) or a path to such a file."""

    data: bytes | None = None
    path: str | None = None

    @classmethod
    def from_value(cls, value: Any) -> EncodedImage | Image.Image:
        """Accept what a ``datasets`` Image column yields with or without decoding."""
        if isinstance(value, EncodedImage | Image.Image):
            return value
        if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
            return cls(data=value.get("bytes"), path=value.get("path"))
        if isinstance(value, bytes | bytearray):
            return cls(data=bytes(value))
        if isinstance(value, str):
            return cls(path=value)
        raise TypeError(f"not an image value: {type(value).__name__}")

    def read_bytes(self) -> bytes:
        """The encoded bytes, read from disk when only a path is stored."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        with open(self.path, "rb") as handle:
            return handle.read()

    def decode(self) -> Image.Image:
        """Decode into an RGB PIL image (fully loaded, so errors surface here)."""
        image = Image.open(io.BytesIO(self.read_bytes()))
        image.load()
        return image.convert("RGB")


@dataclass(frozen=True)
class RawItem:
    """One input: an id, and text and/or an image not yet decoded."""

    id: str
    text: str | None = None
    image: EncodedImage | Image.Image | None = None

    @property
    def modality(self) -> str:
        """``text``, ``image`` or ``image,text``."""
        parts = [name for name, value in (("image", self.image), ("text", self.text)) if value]
        return ",".join(parts)

    def content_digest(self) -> str:
        """A hash of the content: text bytes, and the image's stored bytes (never decoded)."""
        digest = hashlib.sha256()
        if self.text is not None:
            digest.update(b"text\0" + self.text.encode("utf-8") + b"\0")
        if self.image is not None:
            digest.update(b"image\0" + _image_bytes(self.image))
        return digest.hexdigest()

    def decoded(self) -> dict[str, Any]:
        """The adapter's view: ``{"text": str, "image": PIL.Image}`` with what is present."""
        item: dict[str, Any] = {}
        if self.text is not None:
            item["text"] = self.text
        if self.image is not None:
            image = self.image
            item["image"] = (
                image.convert("RGB") if isinstance(image, Image.Image) else image.decode()
            )
        return item


def _image_bytes(image: EncodedImage | Image.Image) -> bytes:
    if isinstance(image, EncodedImage):
        return image.read_bytes()
    # An in-memory image has no stored bytes; hash its pixels and geometry instead.
    return f"{image.mode}:{image.size}".encode() + image.tobytes()
