"""The text modality: a part stored as a ``str``, which adapters receive as it is."""

from __future__ import annotations

import reprlib
from typing import Any

from harness.core.modalities import Modality


def _read(value: Any) -> str:
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


def _digest(value: str) -> bytes:
    return value.encode("utf-8") + b"\0"


TEXT = Modality(
    name="text",
    letter="t",
    read=_read,
    digest=_digest,
    cost=lambda value: float(len(value)),
    length=len,
)
