"""Raw items as tasks hand them to the encoder, before any image is decoded.

A raw item keeps an image as its stored encoded bytes, so that the cache key can be computed
without decoding it, and decoding can happen in DataLoader worker processes.
"""

from __future__ import annotations

import hashlib
import io
import reprlib
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from harness.core.errors import BadInputError


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
    """One input: an id, and text and/or an image not yet decoded.

    ``fault`` says why a row read from a dataset cannot be encoded (an empty text, a number
    where text belongs, a missing image...), naming its column; the encoder reports it as bad
    input, or skips the item under ``--skip-bad-inputs``. ``image_column`` names the image's
    column when it fails to decode.
    """

    id: str
    text: str | None = None
    image: EncodedImage | Image.Image | None = None
    fault: str | None = field(default=None, compare=False)
    image_column: str = field(default="image", compare=False)

    @classmethod
    def read(
        cls,
        item_id: Any,
        *,
        text: Any = None,
        image: Any = None,
        text_column: str | None = None,
        image_column: str | None = None,
        optional: bool = False,
    ) -> RawItem:
        """An item from dataset cells: the text of ``text_column`` and/or the image of
        ``image_column`` (a column of ``None`` is not read).

        A cell that cannot be used becomes the item's ``fault`` instead of an exception, so
        that ``--skip-bad-inputs`` can skip the item. With ``optional`` an empty cell means the
        part is absent, as long as the item keeps one part.
        """
        parts: dict[str, Any] = {"image_column": image_column or "image"}
        faults = []
        for name, column, value, check in (
            ("text", text_column, text, _text_value),
            ("image", image_column, image, _image_value),
        ):
            if column is None or (optional and _is_empty(value)):
                continue
            try:
                parts[name] = check(value)
            except ValueError as error:
                faults.append(f"column {column!r} {error}")
        if optional and not faults and "text" not in parts and "image" not in parts:
            columns = " and ".join(repr(c) for c in (text_column, image_column) if c)
            faults.append(f"has neither text nor image (columns {columns} are empty)")
        if faults:
            return cls(str(item_id), fault="; ".join(faults), image_column=parts["image_column"])
        return cls(str(item_id), **parts)

    @property
    def modality(self) -> str:
        """``text``, ``image`` or ``image,text``."""
        parts = [name for name, value in (("image", self.image), ("text", self.text)) if value]
        return ",".join(parts)

    def content_digest(self) -> str:
        """A hash of the content: text bytes, and the image's stored bytes (never decoded).

        A faulty item, or an image file that cannot be read, hashes to a key of its own that
        is never cached: the fault surfaces when the item is decoded, where it can be skipped.
        """
        digest = hashlib.sha256()
        if self.fault is not None:
            digest.update(b"fault\0" + self.id.encode("utf-8", "replace") + b"\0")
            digest.update(self.fault.encode("utf-8", "replace"))
            return digest.hexdigest()
        if self.text is not None:
            digest.update(b"text\0" + self.text.encode("utf-8") + b"\0")
        if self.image is not None:
            digest.update(b"image\0" + _image_bytes(self.image))
        return digest.hexdigest()

    def decoded(self) -> dict[str, Any]:
        """The adapter's view: ``{"text": str, "image": PIL.Image}`` with what is present.

        Raises :class:`BadInputError` naming the column for a faulty item or an image that
        does not decode.
        """
        if self.fault is not None:
            raise BadInputError(self.fault)
        item: dict[str, Any] = {}
        if self.text is not None:
            item["text"] = self.text
        if self.image is not None:
            image = self.image
            try:
                item["image"] = (
                    image.convert("RGB") if isinstance(image, Image.Image) else image.decode()
                )
            except Exception as error:  # any decoder failure is this item's fault
                raise BadInputError(
                    f"the image in column {self.image_column!r} cannot be decoded "
                    f"({type(error).__name__}: {error})"
                ) from error
        return item


def _is_empty(value: Any) -> bool:
    """A missing cell: ``None``, or an empty or blank string."""
    return value is None or (isinstance(value, str) and not value.strip())


def _text_value(value: Any) -> str:
    """A cell as text; ``ValueError`` (finishing "column X ...") when it is not usable text."""
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"holds bytes that are not UTF-8 text ({error.reason} at byte {error.start}); "
                "store the text as UTF-8"
            ) from None
    if value is None:
        raise ValueError("is empty (None) where text belongs; fill the cell or drop the row")
    if not isinstance(value, str):
        raise ValueError(
            f"holds {type(value).__name__} {reprlib.repr(value)} where text belongs; store "
            "text in it, or map the text column under dataset.columns"
        )
    if not value.strip():
        raise ValueError("holds an empty text; fill the cell or drop the row")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"holds text that is not valid UTF-8 ({error.reason})") from None
    return value


def _image_value(value: Any) -> EncodedImage | Image.Image:
    """A cell as a stored image; ``ValueError`` when it holds no image."""
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


def _image_bytes(image: EncodedImage | Image.Image) -> bytes:
    if isinstance(image, EncodedImage):
        try:
            return image.read_bytes()
        except OSError as error:  # a missing or unreadable file: its decode reports it
            return f"unreadable:{image.path}:{error.strerror}".encode("utf-8", "replace")
    # An in-memory image has no stored bytes; hash its pixels and geometry instead.
    return f"{image.mode}:{image.size}".encode() + image.tobytes()
