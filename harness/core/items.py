"""Raw items as tasks hand them to the encoder, before any part is decoded.

An item carries any set of parts, one per registered modality (:mod:`harness.core.modalities`),
each as its stored value (a text, an image's encoded bytes...), so that the cache key can be
computed without decoding, and decoding can happen in DataLoader worker processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import BadInputError
from harness.core.modalities import modality, ordered, registered


@dataclass(frozen=True)
class RawItem:
    """One input: an id, and its parts by modality name, not yet decoded.

    ``fault`` says why a row read from a dataset cannot be encoded (an empty text, a number
    where text belongs, a missing image...), naming its column; the encoder reports it as bad
    input, or skips the item under ``--skip-bad-inputs``. ``columns`` names each part's column
    (by default the modality's name), for the message when a part fails to decode.
    """

    id: str
    parts: Mapping[str, Any] = field(default_factory=dict)
    fault: str | None = field(default=None, compare=False)
    columns: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in self.parts:
            modality(name)  # a KeyError naming the registered modalities

    @classmethod
    def of(cls, item_id: str, **parts: Any) -> RawItem:
        """An item from stored values by modality name (``None`` values are left out), e.g.
        ``RawItem.of("q1", text="a cat")``."""
        return cls(item_id, {name: value for name, value in parts.items() if value is not None})

    @classmethod
    def read(
        cls, item_id: Any, cells: Mapping[str, tuple[str, Any]], *, optional: bool = False
    ) -> RawItem:
        """An item from dataset cells: ``cells`` maps a modality name to its (column, cell).

        A cell that cannot be used becomes the item's ``fault`` instead of an exception, so
        that ``--skip-bad-inputs`` can skip the item. With ``optional`` an empty cell (``None``
        or a blank string) means the part is absent, as long as the item keeps one part.
        """
        names = ordered(cells)
        columns = {name: column for name, (column, _) in cells.items()}
        parts: dict[str, Any] = {}
        faults = []
        for name in names:
            column, value = cells[name]
            if optional and _is_empty(value):
                continue
            try:
                parts[name] = modality(name).read(value)
            except ValueError as error:
                faults.append(f"column {column!r} {error}")
        if optional and not faults and not parts:
            listed = " and ".join(repr(columns[name]) for name in names)
            faults.append(f"has neither {' nor '.join(names)} (columns {listed} are empty)")
        if faults:
            return cls(str(item_id), fault="; ".join(faults), columns=columns)
        return cls(str(item_id), parts, columns=columns)

    @property
    def modality(self) -> str:
        """The names of its parts, sorted and comma-joined: ``text``, ``image``, ``image,text``."""
        return ",".join(sorted(self.parts))

    def content_digest(self) -> str:
        """A hash of the content: each part's name and stored-value digest, in registration order
        (a text's bytes, an image's stored bytes; nothing is decoded).

        A faulty item, or an image file that cannot be read, hashes to a key of its own that
        is never cached: the fault surfaces when the item is decoded, where it can be skipped.
        """
        digest = hashlib.sha256()
        if self.fault is not None:
            digest.update(b"fault\0" + self.id.encode("utf-8", "replace") + b"\0")
            digest.update(self.fault.encode("utf-8", "replace"))
            return digest.hexdigest()
        for entry in registered():
            if entry.name in self.parts:
                digest.update(entry.name.encode() + b"\0" + entry.digest(self.parts[entry.name]))
        return digest.hexdigest()

    def decoded(self) -> dict[str, Any]:
        """The adapter's view: ``{modality name: decoded value}`` for each part, e.g.
        ``{"text": str, "image": PIL.Image}``.

        Raises :class:`BadInputError` naming the column for a faulty item or a part that does
        not decode.
        """
        if self.fault is not None:
            raise BadInputError(self.fault)
        item: dict[str, Any] = {}
        for name, value in self.parts.items():
            decode = modality(name).decode
            try:
                item[name] = value if decode is None else decode(value)
            except Exception as error:  # any decoder failure is this item's fault
                raise BadInputError(
                    f"the {name} in column {self.columns.get(name, name)!r} cannot be decoded "
                    f"({type(error).__name__}: {error})"
                ) from error
        return item


def _is_empty(value: Any) -> bool:
    """A missing cell: ``None``, or an empty or blank string."""
    return value is None or (isinstance(value, str) and not value.strip())
