"""The single road from raw items to vectors: cache look-up, batching, decoding in workers.

Every task hands its items to :class:`Encoder`. Items whose key is in the cache never reach the
model; the rest are decoded in DataLoader worker processes, encoded batch by batch, and written
to the cache after each batch, so an interrupted run loses at most one batch of work.

On an out-of-memory error of the device, the batch is halved and retried (down to one item);
the smaller size stays in force for the rest of the run, and the halvings and the batch size in
force are recorded in the stats, hence in each result file's ``harness.encoding`` block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from harness.cache import EmbeddingCache, cache_key
from harness.distributed import Shards, item_cost
from harness.errors import BadInputError, HarnessError
from harness.items import RawItem
from model_adapters.base import Adapter, Role

# torch >= 2.5 names it torch.OutOfMemoryError; torch.cuda.OutOfMemoryError is the same class.
OUT_OF_MEMORY: type[Exception] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
# Stats that hold a current value rather than a count.
_GAUGES = frozenset({"batch_size"})


@dataclass
class EncodeStats:
    """Counters over the life of an encoder."""

    model_calls: int = 0
    items_encoded: int = 0
    cache_hits: int = 0
    images_decoded: int = 0
    oom_halvings: int = 0
    batch_size: int = 0  # the batch size in force: the requested one, or halved after OOM

    def since(self, earlier: EncodeStats) -> dict[str, int]:
        """The counts accumulated after ``earlier`` was copied (gauges: their current value)."""
        return {
            name: value if name in _GAUGES else value - getattr(earlier, name)
            for name, value in asdict(self).items()
        }


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
    prefetch_factor: int = 2
    skip_bad_inputs: bool = False
    show_progress: bool = True
    # Data-parallel ranks (torchrun): each encodes its share of the batches, then all gather.
    shards: Shards | None = None
    stats: EncodeStats = field(default_factory=EncodeStats)

    def __post_init__(self) -> None:
        if self.stats.batch_size == 0:
            self.stats.batch_size = self.batch_size

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
        if self.shards is not None:
            # Every rank looks the cache up before any rank writes this call's vectors, so all
            # ranks plan the same missing items.
            self.shards.barrier()
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
        batches = self._my_batches(entries)
        workers = self.num_workers if has_images else 0
        loader = DataLoader(
            entries,
            batch_sampler=batches,
            num_workers=workers,
            collate_fn=_decode_batch,
            pin_memory=self.device.startswith("cuda"),
            prefetch_factor=self.prefetch_factor if workers else None,
            persistent_workers=False,
        )
        skipped: set[str] = set()
        mine: dict[str, np.ndarray] = {}
        progress = tqdm(
            total=sum(len(batch) for batch in batches),
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
                    fresh = self._call_halving([d for _, d in good], role, instruction)
                    batch_vectors = dict(zip([key for key, _ in good], fresh, strict=True))
                    if self.cache is not None:
                        self.cache.put_many(batch_vectors)
                    mine.update(batch_vectors)
                progress.update(len(batch))
        if self.shards is not None:
            mine, skipped = self.shards.gather(mine, skipped)
        vectors.update(mine)
        return skipped

    def _my_batches(self, entries: list[tuple[str, RawItem]]) -> list[list[int]]:
        """The batches one process would encode, or this rank's share of them by cost."""
        size = self.batch_size
        batches = [
            list(range(i, min(i + size, len(entries)))) for i in range(0, len(entries), size)
        ]
        if self.shards is None:
            return batches
        costs = [sum(item_cost(entries[i][1]) for i in batch) for batch in batches]
        return [batches[b] for b in self.shards.my_batches(costs)]

    def _call_halving(
        self, items: list[dict[str, Any]], role: Role, instruction: str | None
    ) -> np.ndarray | list[np.ndarray]:
        """Encode in chunks of the batch size in force, halving it on out-of-memory errors."""
        outputs: list[np.ndarray | list[np.ndarray]] = []
        start = 0
        while start < len(items):
            size = min(self.stats.batch_size, len(items) - start)
            try:
                outputs.append(self._call_model(items[start : start + size], role, instruction))
            except OUT_OF_MEMORY as error:
                if size == 1:
                    raise HarnessError(
                        "the device ran out of memory encoding a single item with "
                        f"{self.adapter.meta.name!r}; use a smaller model, --dtype bfloat16, "
                        "or another device"
                    ) from error
                self.stats.batch_size = size // 2
                self.stats.oom_halvings += 1
                _release_device_memory()
                continue
            start += size
        if len(outputs) == 1:
            return outputs[0]
        if isinstance(outputs[0], np.ndarray):
            return np.concatenate(outputs)
        return [array for chunk in outputs for array in chunk]

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


def _release_device_memory() -> None:
    """Return cached blocks to the device after an out-of-memory error."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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
