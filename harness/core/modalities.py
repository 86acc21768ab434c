"""The modality registry: what the harness knows about each kind of input.

A modality is one :class:`Modality` record. Categories (``t2i``, ``it2t``, ``a2t``, ``va2t``...)
parse through the registry letter by letter, and items carry any set of parts, one per
modality. Adding a modality is one :func:`register` call: no task type, encoder, sharding or
scorer changes.

The record's callables work on a part's *stored* value (text, or an image's encoded bytes):
``read`` turns a dataset cell into it, ``digest`` hashes it for the cache key without decoding,
``decode`` turns it into what adapters receive (in the DataLoader workers), ``cost`` weighs it
for sharding, and ``undecoded_feature`` says how a ``datasets`` column of it is read without
decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The letter of a category's document side that stands for class labels (never embedded).
LABEL_LETTER = "c"


@dataclass(frozen=True)
class Modality:
    """One kind of input: its name, its letter in categories, and how its values are handled."""

    name: str
    letter: str
    # A dataset cell -> the stored (undecoded) value; raises ValueError with a message that
    # continues "column 'x' ..." (what the cell holds, and the fix) when the cell is unusable.
    read: Callable[[Any], Any]
    # The stored value -> the bytes hashed into the cache key (never decoding it).
    digest: Callable[[Any], bytes]
    # The stored value -> what adapters receive (str, PIL image, waveform...).
    decode: Callable[[Any], Any]
    # The stored value -> a rough cost of encoding it, for balancing shards.
    cost: Callable[[Any], float]
    # A ``datasets`` feature -> the feature that reads it undecoded, or None to keep it.
    undecoded_feature: Callable[[Any], Any | None]


_REGISTRY: dict[str, Modality] = {}


def register(modality: Modality) -> Modality:
    """Add ``modality``; its name and letter must be new."""
    for other in _REGISTRY.values():
        if modality.name == other.name or modality.letter == other.letter:
            raise ValueError(f"modality {modality.name!r} ({modality.letter}) clashes with {other}")
    if modality.letter == LABEL_LETTER or len(modality.letter) != 1 or modality.letter == "2":
        raise ValueError(f"modality {modality.name!r}: {modality.letter!r} cannot be a letter")
    _REGISTRY[modality.name] = modality
    return modality


def modality(name: str) -> Modality:
    """The registered modality called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no modality {name!r}; registered: {', '.join(_REGISTRY)}") from None


def registered() -> tuple[Modality, ...]:
    """Every registered modality, in registration order (the order of parts everywhere)."""
    return tuple(_REGISTRY.values())


def ordered(names: Any) -> tuple[str, ...]:
    """``names`` in registration order."""
    wanted = set(names)
    return tuple(name for name in _REGISTRY if name in wanted)


@dataclass(frozen=True)
class CategorySides:
    """A parsed category: the modalities of each side, in registration order.

    ``document`` is empty when the document side is class labels (``c``).
    """

    query: tuple[str, ...]
    document: tuple[str, ...]

    @property
    def labels(self) -> bool:
        """Whether the document side is class labels rather than embedded items."""
        return not self.document

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every modality a model must embed for the task."""
        return ordered({*self.query, *self.document})


def parse_category(category: str) -> CategorySides:
    """``it2t`` -> query (text, image), document (text); a ValueError names a bad letter."""
    query, separator, document = category.partition("2")
    if not separator or not query or not document or "2" in document:
        raise ValueError(
            f"category {category!r} is not <query letters>2<document letters> (e.g. t2i, it2t)"
        )
    by_letter = {entry.letter: entry.name for entry in _REGISTRY.values()}
    letters = ", ".join(f"{letter} ({name})" for letter, name in by_letter.items())

    def side(text: str, labels_allowed: bool) -> tuple[str, ...]:
        if labels_allowed and text == LABEL_LETTER:
            return ()
        unknown = [letter for letter in text if letter not in by_letter]
        if unknown or len(set(text)) != len(text):
            raise ValueError(
                f"category {category!r}: {text!r} is not a set of modality letters; known "
                f"letters are {letters}" + (", and c (class labels) after the 2" * labels_allowed)
            )
        return ordered(by_letter[letter] for letter in text)

    return CategorySides(side(query, False), side(document, True))


def _text_read(value: Any) -> Any:
    from harness.core.items import _text_value

    return _text_value(value)


def _text_digest(value: Any) -> bytes:
    return str(value).encode("utf-8") + b"\0"


def _image_read(value: Any) -> Any:
    from harness.core.items import _image_value

    return _image_value(value)


def _image_digest(value: Any) -> bytes:
    from harness.core.items import _image_bytes

    return _image_bytes(value)


def _image_decode(value: Any) -> Any:
    from PIL import Image

    return value.convert("RGB") if isinstance(value, Image.Image) else value.decode()


def _image_cost(value: Any) -> float:
    import io
    from contextlib import suppress

    from PIL import Image

    if isinstance(value, Image.Image):
        return float(value.width * value.height)
    with suppress(Exception), Image.open(io.BytesIO(value.read_bytes())) as image:
        return float(image.width * image.height)
    return 0.0  # a bad image costs nothing here: its decode reports it, per item


def _image_undecoded(feature: Any) -> Any | None:
    import datasets

    return datasets.Image(decode=False) if isinstance(feature, datasets.Image) else None


TEXT = register(
    Modality(
        name="text",
        letter="t",
        read=_text_read,
        digest=_text_digest,
        decode=str,
        cost=lambda value: float(len(value)),
        undecoded_feature=lambda feature: None,
    )
)
IMAGE = register(
    Modality(
        name="image",
        letter="i",
        read=_image_read,
        digest=_image_digest,
        decode=_image_decode,
        cost=_image_cost,
        undecoded_feature=_image_undecoded,
    )
)
