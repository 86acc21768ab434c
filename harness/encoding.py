"""The single road from raw items to vectors: cache look-up, batching, decoding in workers.

Every task hands its items to :class:`Encoder`. Items whose key is in the cache never reach the
model; the rest are decoded in DataLoader worker processes, encoded batch by batch, and written
to the cache after each batch, so an interrupted run loses at most one batch of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from harness.cache import EmbeddingCache, cache_key
from harness.errors import BadInputError, HarnessError
from harness.items import RawItem
from model_adapters.base import Adapter, Role


@dataclass
class EncodeStats:
    """Counters over the life of an encoder."""

    model_calls: int = 0
    items_encoded: int = 0
    cache_hits: int = 0
    images_decoded: int = 0

    def since(self, earlier: EncodeStats) -> dict[str, int]:
        """The counts accumulated after ``earlier`` was copied."""
        return {name: value - getattr(earlier, name) for name, value in asdict(self).items()}


@dataclass(frozen=True)
class Encoded:
    """Vectors for a list of items; ``kept[i]`` is false for an item skipped as bad input.

    ``vectors`` is a float32 ``(n, d)`` matrix, or for a multi-vector adapter (similarity
    ``maxsim``) an object array of n float32 ``(tokens, d)`` arrays (empty for skipped items).
    """

    vectors: np.ndarray
    kept: np.ndarray
    skipped: tuple[str, ...] = ()


@dataclass
class Encoder:
    """Encodes raw items through an adapter, with a shared content-addressed cache."""

    adapter: Adapter
    cache: EmbeddingCache | None = None
    device: str = "cpu"
    batch_size: int = 32
    num_workers: int = 0
    skip_bad_inputs: bool = False
    show_progress: bool = True
    stats: EncodeStats = field(default_factory=EncodeStats)

    def encode(
        self,
        items: Sequence[RawItem],
        *,
        role: Role = None,
        instruction: str | None = None,
        task: str = "",
    ) -> Encoded:
        """Vectors for ``items`` in order; a cache hit never calls the model."""
        keys = self._keys(items, role, instruction)
        vectors: dict[str, np.ndarray] = (
            self.cache.get_many(set(keys)) if self.cache is not None else {}
        )
        self.stats.cache_hits += sum(1 for key in keys if key in vectors)
        first_of_key: dict[str, RawItem] = {}
        for key, item in zip(keys, items, strict=True):
            if key not in vectors:
                first_of_key.setdefault(key, item)
        skipped_keys = self._encode_missing(first_of_key, vectors, role, instruction, task)
        multi_vector = self.adapter.meta.similarity == "maxsim"
        return _assemble(items, keys, vectors, skipped_keys, multi_vector=multi_vector)

    def _keys(self, items: Sequence[RawItem], role: Role, instruction: str | None) -> list[str]:
        meta = self.adapter.meta
        key_role = role if meta.role_aware else None
        key_instruction = instruction if meta.uses_instructions else None
        return [
            cache_key(
                meta.fingerprint, key_role, key_instruction, item.modality, item.content_digest()
            )
            for item in items
        ]

    def _encode_missing(
        self,
        missing: dict[str, RawItem],
        vectors: dict[str, np.ndarray],
        role: Role,
        instruction: str | None,
        task: str,
    ) -> set[str]:
        """Encode the missing items into ``vectors``; returns the keys skipped as bad input."""
        if not missing:
            return set()
        order = sorted(missing, key=lambda key: _length_order(missing[key]))
        entries = [(key, missing[key]) for key in order]
        has_images = any(item.image is not None for _, item in entries)
        loader = DataLoader(
            entries,
            batch_size=self.batch_size,
            num_workers=self.num_workers if has_images else 0,
            collate_fn=_decode_batch,
            persistent_workers=False,
        )
        skipped: set[str] = set()
        progress = tqdm(
            total=len(entries),
            desc=f"{task} {role or 'items'}".strip(),
            unit="item",
            disable=not self.show_progress,
        )
        with progress:
            for batch in loader:
                good = [(key, decoded) for key, _, decoded, _ in batch if decoded is not None]
                for key, item_id, decoded, error in batch:
                    if decoded is None:
                        self._bad_input(item_id, task, error)
                        skipped.add(key)
                self.stats.images_decoded += sum(1 for _, d in good if "image" in d)
                if good:
                    fresh = self._call_model([d for _, d in good], role, instruction)
                    batch_vectors = dict(zip([key for key, _ in good], fresh, strict=True))
                    if self.cache is not None:
                        self.cache.put_many(batch_vectors)
                    vectors.update(batch_vectors)
                progress.update(len(batch))
        return skipped

    def _call_model(
        self, items: list[dict[str, Any]], role: Role, instruction: str | None
    ) -> np.ndarray | list[np.ndarray]:
        raw = self.adapter.encode(items, role=role, instruction=instruction)
        if self.adapter.meta.similarity == "maxsim":
            output: np.ndarray | list[np.ndarray] = _token_arrays(raw, len(items), self.adapter)
        else:
            output = np.asarray(raw, dtype=np.float32)
        self.stats.model_calls += 1
        self.stats.items_encoded += len(items)
        return output

    def _bad_input(self, item_id: str, task: str, error: str) -> None:
        if not self.skip_bad_inputs:
            raise BadInputError(
                f"task {task}: the image of item {item_id!r} cannot be decoded ({error}). "
                "Fix or remove the item, or pass --skip-bad-inputs to record and skip such items."
            )


def _length_order(item: RawItem) -> tuple[int, int]:
    """Images first, then texts from longest to shortest, so padding is small per batch."""
    return (0 if item.image is not None else 1, -len(item.text or ""))


def _decode_batch(
    entries: list[tuple[str, RawItem]],
) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """Runs in a worker: decode each item, keeping the error text of those that fail."""
    decoded = []
    for key, item in entries:
        try:
            decoded.append((key, item.id, item.decoded(), ""))
        except Exception as error:  # any decoder failure is reported per item
            decoded.append((key, item.id, None, f"{type(error).__name__}: {error}"))
    return decoded


def _assemble(
    items: Sequence[RawItem],
    keys: list[str],
    vectors: dict[str, np.ndarray],
    skipped_keys: set[str],
    *,
    multi_vector: bool,
) -> Encoded:
    """Rows in item order: a float32 matrix, or for multi-vector outputs an object array of
    ``(tokens, d)`` arrays; a skipped item gets a zero row (or zero tokens)."""
    kept = np.array([key not in skipped_keys for key in keys], dtype=bool)
    dim = next((vectors[key].shape[-1] for key in keys if key not in skipped_keys), 0)
    rows = (
        np.empty(len(items), dtype=object)
        if multi_vector
        else np.zeros((len(items), dim), np.float32)
    )
    blank = np.zeros((0, dim) if multi_vector else dim, dtype=np.float32)
    for row, key in enumerate(keys):
        rows[row] = blank if key in skipped_keys else vectors[key]
    return Encoded(rows, kept, _ids(items, kept))


def _token_arrays(raw: Any, n: int, adapter: Adapter) -> list[np.ndarray]:
    """A multi-vector adapter's output as n float32 ``(tokens, d)`` arrays, checked."""
    arrays = [np.asarray(item, dtype=np.float32) for item in raw]
    bad = [i for i, item in enumerate(arrays) if item.ndim != 2 or len(item) == 0]
    if len(arrays) != n or bad:
        raise HarnessError(
            f"multi-vector adapter {adapter.meta.name!r} must return one (tokens, d) array with "
            f"at least one token per item; got {len(arrays)} outputs for {n} items"
            + (f", item {bad[0]} of shape {arrays[bad[0]].shape}" if bad else "")
        )
    return arrays


def _ids(items: Sequence[RawItem], kept: np.ndarray) -> tuple[str, ...]:
    return tuple(item.id for item, keep in zip(items, kept, strict=True) if not keep)
