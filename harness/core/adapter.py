"""The adapter contract: what every model family implements.

An adapter turns a batch of decoded items into vectors. It knows nothing about tasks or
metrics. An item is a dict of decoded parts by modality name (:mod:`harness.core.modalities`):
``text`` (str), ``image`` (``PIL.Image.Image``)...

An adapter may also have a per-item ``preprocess`` step (:class:`Preprocessing`: an image
processor, audio resampling, frame sampling), which the engine runs in the DataLoader workers,
so that the main process only runs the model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from harness.core.errors import BadInputError, HarnessError

Role = Literal["query", "document"] | None
Similarity = Literal["cosine", "dot", "maxsim"]
Item = dict[str, Any]
# How a document with both an image and a text part (a page and its OCR text, ViDoRe v3.1's
# ``t2it`` corpora) is embedded: ``fused`` (both parts, as the family fuses them), ``image`` or
# ``text`` (that part alone).
DocumentParts = Literal["fused", "image", "text"]
DOCUMENT_PARTS: tuple[DocumentParts, ...] = ("fused", "image", "text")
# The model option that overrides a family's document parts.
DOCUMENT_PARTS_OPTION = "document_parts"
PAGE_TEXT = frozenset({"image", "text"})


@dataclass(frozen=True)
class AdapterMeta:
    """Everything that identifies an adapter's outputs.

    ``options`` holds every setting that changes the vectors (pooling, prompts, max length...).
    ``uses_instructions`` says whether ``encode`` reads its ``instruction`` argument, and
    ``role_aware`` whether it treats queries and documents differently; when they are false,
    the cache ignores the instruction and the role, so a shared item is encoded once.
    """

    name: str
    revision: str
    family: str
    similarity: Similarity
    modalities: tuple[str, ...]
    dtype: str
    embed_dim: int | None = None
    n_parameters: int | None = None
    uses_instructions: bool = False
    role_aware: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    # Settings that change the vectors of one modality only (a video's frame sampling and
    # resolution), by modality name. Recorded beside ``options``, and hashed into the cache keys
    # of items and the run identities of tasks with that modality, but not into the
    # fingerprint: a family that gains a modality keeps the keys and results of the others.
    modality_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # How it embeds a document with both an image and a text part (``DocumentParts``); None
    # when it embeds neither. Recorded in results; an override of the family's default is
    # also in ``options`` (so in the fingerprint), the default is not (keys stay as they were).
    document_parts: DocumentParts | None = None

    @property
    def fingerprint(self) -> str:
        """A stable hash of everything that changes the adapter's outputs."""
        payload = {
            "name": self.name,
            "revision": self.revision,
            "family": self.family,
            "dtype": self.dtype,
            "uses_instructions": self.uses_instructions,
            "role_aware": self.role_aware,
            "options": dict(self.options),
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def options_for(self, modalities: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The modality options of those of ``modalities`` that have some, by name."""
        return {
            name: dict(self.modality_options[name])
            for name in sorted(set(modalities))
            if self.modality_options.get(name)
        }

    def key_fingerprint(self, modalities: Iterable[str]) -> str:
        """The fingerprint that keys an item with parts of ``modalities``: the fingerprint,
        hashed with their modality options when they have some."""
        extra = self.options_for(modalities)
        if not extra:
            return self.fingerprint
        payload = {"fingerprint": self.fingerprint, "modality_options": extra}
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, fingerprint included (modality options only when there are)."""
        data = asdict(self)
        data["modalities"] = list(self.modalities)
        data["options"] = dict(self.options)
        data["modality_options"] = self.options_for(self.modality_options)
        if not data["modality_options"]:
            del data["modality_options"]
        if data["document_parts"] is None:
            del data["document_parts"]
        data["fingerprint"] = self.fingerprint
        return data


@runtime_checkable
class Adapter(Protocol):
    """A loaded model that encodes batches of decoded items.

    A dense adapter (similarity ``cosine`` or ``dot``) returns one vector per item. A
    multi-vector (late-interaction) adapter, whose ``meta.similarity`` is ``maxsim``, returns
    one float32 ``(tokens, dim)`` array per item instead, with at least one token each and the
    same ``dim`` throughout; the number of tokens may differ from item to item.
    """

    meta: AdapterMeta

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray | list[np.ndarray]:
        """Encode one batch: a float32 array of shape ``(len(items), dim)``, or for a
        multi-vector adapter a list of ``len(items)`` float32 ``(tokens, dim)`` arrays."""
        ...


@runtime_checkable
class Preprocessing(Adapter, Protocol):
    """An adapter with a per-item step that the engine runs in the DataLoader workers.

    ``preprocess`` takes one decoded item and returns it with model inputs in place of some
    parts (pixel values for an image, say); ``encode`` takes a batch of such items. It must be
    idempotent, since ``encode`` also takes decoded items and runs it on them itself: an
    adapter called directly, or wrapped, encodes the same vectors without the workers. Its
    output crosses to the main process by pickle: numpy arrays, not torch tensors (each of which
    would hold a shared-memory file descriptor); it must never touch the model or the device.
    """

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        """One item made ready for ``encode`` (an already preprocessed one is returned as is)."""
        ...


def check_options(family: str, options: Mapping[str, Any], known: frozenset[str]) -> None:
    """Refuse options the family does not know, naming the ones it does."""
    unknown = set(options) - known
    if unknown:
        raise HarnessError(
            f"unknown option(s) {sorted(unknown)} for the {family} family; known: {sorted(known)}"
        )


def embeddable_parts(modalities: Iterable[str]) -> DocumentParts | None:
    """The document parts of a model that embeds ``modalities``: ``fused`` when it embeds
    images and texts, the one it embeds when only one, None when neither."""
    embedded = PAGE_TEXT & set(modalities)
    if len(embedded) == len(PAGE_TEXT):
        return "fused"
    return "image" if "image" in embedded else "text" if embedded else None


def kept_parts(document_parts: DocumentParts) -> frozenset[str]:
    """The parts of a page-plus-text document that ``document_parts`` embeds."""
    return PAGE_TEXT if document_parts == "fused" else frozenset({document_parts})


def rows_by_part(items: Sequence[Item], parts: Sequence[str], missing: str) -> list[list[int]]:
    """For each of ``parts``, the rows of ``items`` that carry it; an item that carries none of
    them is a ``BadInputError`` ("item i has {missing}")."""
    rows = [[i for i, item in enumerate(items) if item.get(part) is not None] for part in parts]
    empty = sorted(set(range(len(items))).difference(*rows))
    if empty:
        raise BadInputError(f"item {empty[0]} has {missing}")
    return rows
