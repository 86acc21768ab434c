"""The image modality: a part stored as its encoded file bytes (or a path to them), decoded into
an RGB ``PIL.Image.Image`` in the DataLoader workers."""

from __future__ import annotations

import io
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from PIL import Image

from harness.core.modalities import Modality
from harness.core.stored import StoredFile


@dataclass(frozen=True)
class EncodedImage(StoredFile):
    """An image as stored: encoded bytes (PNG, JPEG, ...) or a path to such a file."""

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

    def decode(self) -> Image.Image:
        """Decode into an RGB PIL image (fully loaded, so errors surface here)."""
        image = Image.open(io.BytesIO(self.read_bytes()))
        image.load()
        return image.convert("RGB")


StoredImage = EncodedImage | Image.Image


def _read(value: Any) -> StoredImage:
    """A cell as a stored image; ``ValueError`` (finishing "column X ...") when it holds none."""
    if value is None:
        raise ValueError("is empty (None) where an image belongs; fill the cell or drop the row")
    stored = value.get("bytes") if isinstance(value, dict) else value
    if (
        isinstance(stored, bytes | bytearray)
        and len(stored) == 0
        and not (isinstance(value, dict) and value.get("path"))
    ):
        raise ValueError("holds an empty image (0 bytes); store the image's file bytes in it")
    try:
        return EncodedImage.from_value(value)
    except TypeError:
        raise ValueError(
            f"holds {type(value).__name__} where an image belongs (image bytes, a path, or "
            "a datasets Image); map the image column under dataset.columns"
        ) from None


def _digest(image: StoredImage) -> bytes:
    """The stored bytes; an unreadable file hashes to its path and error (its decode reports
    it), and an in-memory image, which has no stored bytes, to its pixels and geometry."""
    if isinstance(image, EncodedImage):
        return image.key_bytes()
    return f"{image.mode}:{image.size}".encode() + image.tobytes()


def _decode(image: StoredImage) -> Image.Image:
    return image.convert("RGB") if isinstance(image, Image.Image) else image.decode()


def _pixels(image: StoredImage) -> float:
    """The pixel count, read from the file's header (never decoded); 0 for a bad image, whose
    decode reports it, per item."""
    if isinstance(image, Image.Image):
        return float(image.width * image.height)
    with suppress(Exception), Image.open(io.BytesIO(image.read_bytes())) as opened:
        return float(opened.width * opened.height)
    return 0.0


def _undecoded_feature(feature: Any) -> Any | None:
    import datasets  # only where a dataset is read: harness.core stays light

    return datasets.Image(decode=False) if isinstance(feature, datasets.Image) else None


IMAGE = Modality(
    name="image",
    letter="i",
    read=_read,
    digest=_digest,
    cost=_pixels,
    decode=_decode,
    undecoded_feature=_undecoded_feature,
)
