"""The modality registry: what the harness knows about each kind of input.

A modality is one :class:`Modality` record. Categories (``t2i``, ``it2t``, ``a2t``, ``va2t``...)
parse through the registry letter by letter, and items carry any set of parts, one per
modality. Adding a modality is one :func:`register` call: no task type, encoder, sharding or
scorer changes. Text (:mod:`harness.core.text`), image (:mod:`harness.core.image`), audio
(:mod:`harness.core.audio`) and video (:mod:`harness.core.video`) are the built-in entries,
registered in that order on first use.

The record's callables work on a part's *stored* value (text, or an image's encoded bytes):
``read`` turns a dataset cell into it, ``digest`` hashes it for the cache key without decoding,
``decode`` turns it into what adapters receive (in the DataLoader workers), ``cost`` weighs it
for sharding, ``length`` orders items for batching, and ``undecoded_feature`` says how a
``datasets`` column of it is read without decoding; ``pipeline`` names the libraries that decode
it, for the result files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# The letter of a category's document side that stands for class labels (never embedded).
LABEL_LETTER = "c"


def _no_length(value: Any) -> int:
    return 0


def _kept_feature(feature: Any) -> Any | None:
    return None


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
    # The stored value -> a rough cost of encoding it, for balancing shards.
    cost: Callable[[Any], float]
    # The stored value -> what adapters receive (PIL image, waveform...), run in the DataLoader
    # workers; None when adapters receive the stored value itself (no worker needed).
    decode: Callable[[Any], Any] | None = None
    # The stored value -> its length, where it drives padding (characters of a text; 0 when
    # the model input has a fixed size): items are batched longest first.
    length: Callable[[Any], int] = _no_length
    # A ``datasets`` feature -> the feature that reads it undecoded, or None to keep it.
    undecoded_feature: Callable[[Any], Any | None] = _kept_feature
    # The libraries that decode and convert its values, with their versions (e.g.
    # {"decoder": "soundfile 0.14.0 ..."}), recorded in each result of a task with such inputs.
    pipeline: Callable[[], dict[str, str]] | None = None


_REGISTRY: dict[str, Modality] = {}


def _builtin() -> tuple[Modality, ...]:
    """Text, image, audio and video, in the order of their parts in every cache key (it never
    changes: a new built-in entry goes last)."""
    from harness.core.audio import AUDIO
    from harness.core.image import IMAGE
    from harness.core.text import TEXT
    from harness.core.video import VIDEO

    return (TEXT, IMAGE, AUDIO, VIDEO)


def _entries() -> dict[str, Modality]:
    """The registry, the built-in entries first."""
    if not _REGISTRY:
        _REGISTRY.update((entry.name, entry) for entry in _builtin())
    return _REGISTRY


def register(modality: Modality) -> Modality:
    """Add ``modality``; its name and letter must be new."""
    for other in _entries().values():
        if modality.name == other.name or modality.letter == other.letter:
            raise ValueError(f"modality {modality.name!r} ({modality.letter}) clashes with {other}")
    if modality.letter == LABEL_LETTER or len(modality.letter) != 1 or modality.letter == "2":
        raise ValueError(f"modality {modality.name!r}: {modality.letter!r} cannot be a letter")
    _REGISTRY[modality.name] = modality
    return modality


def unregister(name: str) -> None:
    """Remove the modality called ``name`` (a plugin's or a test's; not a built-in one)."""
    if modality(name) in _builtin():
        raise ValueError(f"modality {name!r} is built in")
    del _REGISTRY[name]


def modality(name: str) -> Modality:
    """The registered modality called ``name``."""
    try:
        return _entries()[name]
    except KeyError:
        raise KeyError(f"no modality {name!r}; registered: {', '.join(_REGISTRY)}") from None


def registered() -> tuple[Modality, ...]:
    """Every registered modality, in registration order (the order of parts everywhere)."""
    return tuple(_entries().values())


def ordered(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` in registration order; a KeyError names one that is not registered."""
    wanted = set(names)
    for name in wanted:
        modality(name)
    return tuple(name for name in _entries() if name in wanted)


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
    by_letter = {entry.letter: entry.name for entry in registered()}
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
