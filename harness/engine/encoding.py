"""The single road from raw items to vectors: cache look-up, batching, decoding in workers.

Every task hands its items to :class:`BatchEncoder`. The batches of a call are planned from all of
its distinct items (sorted by :func:`_batch_order`: images first, then texts from longest to
shortest; cut at the batch size), never from what the cache holds, so an item is always encoded
in the same batch, beside the same neighbours, and a resumed run computes bit for bit the vectors
an uninterrupted one does. A batch whose items are all cached never reaches the model; any other
is decoded in DataLoader worker processes (each part by its modality's ``decode``), preprocessed
there by the adapter's ``preprocess`` step if it has one, and encoded whole, its cached items
keeping their cached vectors; its new vectors are written to the cache at once, so an
interrupted run loses at most one batch of work. Batches with no part to decode are prepared in
the main process, where starting workers would cost more than it saves.

Without an embedding cache (``--no-cache``, the Python API's default) the vectors are kept in a
:class:`~harness.engine.memory_store.MemoryStore` for the encoder's life, so the tasks of a run
share every input they have in common all the same. An adapter that is a
:class:`~harness.engine.lazy_model.LazyAdapter` loads its model when the first batch needs
encoding: a call served wholly from the cache imports neither torch nor the model (torch's
DataLoader is imported only then too). The time spent preparing batches, in the model's calls
and loading the model is kept in :class:`EncodeTimes` (the phases of each result file).

A vector with a NaN or an infinity is an error, and never cached. Vectors that are all zero, or
constant, are counted in the stats (``zero_vectors``, ``constant_vectors``), hence in each
result file's ``harness.encoding`` block, and :func:`degenerate_warnings` words the warning.

On an out-of-memory error of the device, the batch is halved and retried (down to one item);
the smaller size stays in force for the rest of the run, and the halvings and the batch size in
force are recorded in the stats, hence in each result file's ``harness.encoding`` block.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from harness.core.adapter import Adapter, Item, Preprocessing, Role
from harness.core.encoder import Encoded
from harness.core.errors import BadInputError, HarnessError
from harness.core.items import RawItem
from harness.core.modalities import modality, registered
from harness.engine.cache import cache_key
from harness.engine.distributed import Shards, item_cost
from harness.engine.lazy_model import LazyAdapter
from harness.engine.memory_store import MemoryStore, VectorStore

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

# Stats that hold a current value rather than a count.
_GAUGES = frozenset({"batch_size"})


@dataclass
class EncodeStats:
    """Counters over the life of an encoder."""

    model_calls: int = 0
    items_encoded: int = 0
    cache_hits: int = 0
    parts_decoded: int = 0  # parts decoded by their modality (images...), cached neighbours too
    oom_halvings: int = 0
    batch_size: int = 0  # the batch size in force: the requested one, or halved after OOM
    zero_vectors: int = 0  # items served an all-zero vector
    constant_vectors: int = 0  # items served a vector whose components are all equal (not zero)

    def since(self, earlier: EncodeStats) -> dict[str, int]:
        """The counts accumulated after ``earlier`` was copied (gauges: their current value)."""
        return {
            name: value if name in _GAUGES else value - getattr(earlier, name)
            for name, value in asdict(self).items()
        }


@dataclass
class EncodeTimes:
    """Seconds spent over the life of an encoder, by phase (wall clock, main process)."""

    decode: float = 0.0  # decoding and preprocessing batches (or waiting for the workers to)
    encode: float = 0.0  # the model's forward calls
    model_load: float = 0.0  # loading a model that loads on its first cache miss

    def since(self, earlier: EncodeTimes) -> dict[str, float]:
        """The seconds accumulated after ``earlier`` was copied."""
        return {name: value - getattr(earlier, name) for name, value in asdict(self).items()}


@dataclass
class BatchEncoder:
    """Encodes raw items through an adapter, with a shared content-addressed cache (the
    :class:`harness.core.encoder.Encoder` that task types are handed).

    Without a ``cache`` the encoder keeps its vectors in a :class:`MemoryStore`, so an input
    that several tasks share is encoded once all the same. An adapter that is a
    :class:`LazyAdapter` loads its model when the first batch needs encoding.
    """

    adapter: Adapter
    cache: VectorStore | None = None
    device: str = "cpu"
    batch_size: int = 32
    num_workers: int = 0
    prefetch_factor: int = 2
    skip_bad_inputs: bool = False
    show_progress: bool = True
    # Data-parallel ranks (torchrun): each encodes its share of the batches, then all gather.
    shards: Shards | None = None
    stats: EncodeStats = field(default_factory=EncodeStats)
    times: EncodeTimes = field(default_factory=EncodeTimes)

    def __post_init__(self) -> None:
        if self.stats.batch_size == 0:
            self.stats.batch_size = self.batch_size
        if self.cache is None:
            self.cache = MemoryStore()

    def encode(
        self,
        items: Sequence[RawItem],
        *,
        role: Role = None,
        instruction: str | None = None,
        task: str = "",
    ) -> Encoded:
        """Vectors for ``items`` in order; a batch whose items are all cached never calls the
        model."""
        keys = self._keys(items, role, instruction)
        multi_vector = self.adapter.meta.similarity == "maxsim"
        cached = self._cached(keys, multi_vector)
        self.stats.cache_hits += sum(1 for key in keys if key in cached)
        if self.shards is not None:
            # Every rank looks the cache up before any rank writes this call's vectors, so all
            # ranks plan the same batches to encode.
            self.shards.barrier()
        first_of_key: dict[str, RawItem] = {}
        for key, item in zip(keys, items, strict=True):
            first_of_key.setdefault(key, item)
        order = sorted(first_of_key, key=lambda key: _batch_order(first_of_key[key]))
        entries = [(key, first_of_key[key], key in cached) for key in order]
        fresh, skipped_keys = self._encode_batches(entries, role, instruction, task)
        vectors = {**cached, **fresh}
        encoded = _assemble(items, keys, vectors, skipped_keys, multi_vector=multi_vector)
        zero, constant = _degenerate(encoded, multi_vector=multi_vector)
        self.stats.zero_vectors += zero
        self.stats.constant_vectors += constant
        return encoded

    def _keys(self, items: Sequence[RawItem], role: Role, instruction: str | None) -> list[str]:
        meta = self.adapter.meta
        key_role = role if meta.role_aware else None
        key_instruction = instruction if meta.uses_instructions else None
        return [
            cache_key(
                meta.key_fingerprint(item.parts),
                key_role,
                key_instruction,
                item.modality,
                item.content_digest(),
            )
            for item in items
        ]

    def _cached(self, keys: list[str], multi_vector: bool) -> dict[str, np.ndarray]:
        """The usable cache entries of this call's keys. An entry whose width is not the one
        most of them share is a miss too (ties go to the wider, so every rank agrees)."""
        assert self.cache is not None  # set in __post_init__
        found = self.cache.get_many(dict.fromkeys(keys), ndim=2 if multi_vector else 1)
        widths = Counter(vector.shape[-1] for vector in found.values())
        if len(widths) <= 1:
            return found
        width = max(widths, key=lambda w: (widths[w], w))
        return {key: vector for key, vector in found.items() if vector.shape[-1] == width}

    def _encode_batches(
        self,
        entries: list[tuple[str, RawItem, bool]],
        role: Role,
        instruction: str | None,
        task: str,
    ) -> tuple[dict[str, np.ndarray], set[str]]:
        """Encode every batch of ``entries`` (key, item, cached) that holds an uncached item;
        returns the new vectors and the keys skipped as bad input."""
        size = self.batch_size
        batches = [
            list(range(i, min(i + size, len(entries)))) for i in range(0, len(entries), size)
        ]
        todo = [batch for batch in batches if not all(entries[i][2] for i in batch)]
        if not todo:
            return {}, set()
        if self.shards is not None:
            costs = [sum(item_cost(entries[i][1]) for i in batch) for batch in todo]
            todo = [todo[b] for b in self.shards.my_batches(costs)]
        model = self._model()
        preprocess = model.preprocess if isinstance(model, Preprocessing) else None
        loader = self._loader(entries, todo, preprocess, role, instruction)
        skipped: set[str] = set()
        mine: dict[str, np.ndarray] = {}
        progress = tqdm(
            total=sum(len(batch) for batch in todo),
            desc=f"{task} {role or 'items'}".strip(),
            unit="item",
            disable=not self.show_progress,
        )
        with progress:
            for batch in _timed(loader, self.times):
                for row in batch:
                    if row.item is None and not row.cached:
                        self._bad_input(row.item_id, task, row.error)
                        skipped.add(row.key)
                good = [row for row in batch if row.item is not None]
                self.stats.parts_decoded += sum(row.parts_decoded for row in good)
                if any(not row.cached for row in good):
                    mine.update(self._encode_batch(good, role, instruction, task))
                progress.update(len(batch))
        if self.shards is not None:
            mine, skipped = self.shards.gather(mine, skipped)
        return mine, skipped

    def _model(self) -> Adapter:
        """The adapter that encodes: a lazy one's model, loaded now if it was not (timed)."""
        if not isinstance(self.adapter, LazyAdapter):
            return self.adapter
        start = time.perf_counter()
        model = self.adapter.loaded()
        self.times.model_load += time.perf_counter() - start
        return model

    def _loader(
        self,
        entries: list[tuple[str, RawItem, bool]],
        todo: list[list[int]],
        preprocess: Preprocess | None,
        role: Role,
        instruction: str | None,
    ) -> DataLoader[list[_Row]]:
        """The DataLoader that prepares the batches ``todo`` of ``entries``: in worker
        processes when a part needs decoding, else in this one."""
        from torch.utils.data import DataLoader

        decodes = any(_decoded_parts(entries[i][1]) for batch in todo for i in batch)
        workers = self.num_workers if decodes else 0
        return DataLoader(
            entries,  # type: ignore[arg-type]  # any sequence serves as a map-style dataset
            batch_sampler=todo,
            num_workers=workers,
            collate_fn=functools.partial(_prepare_batch, preprocess, role, instruction),
            pin_memory=self.device.startswith("cuda"),
            prefetch_factor=self.prefetch_factor if workers else None,
            persistent_workers=False,
            worker_init_fn=functools.partial(_die_with_parent, os.getpid()) if workers else None,
        )

    def _encode_batch(
        self, batch: list[_Row], role: Role, instruction: str | None, task: str
    ) -> dict[str, np.ndarray]:
        """Encode a prepared batch whole, and cache and return the vectors of its uncached items
        (its cached ones keep their cached vectors: an item's vector is its first encoding's)."""
        items = [row.item for row in batch if row.item is not None]
        output = self._call_halving(items, role, instruction)
        self._check_finite(output, [row.item_id for row in batch], task)
        new = {row.key: vector for row, vector in zip(batch, output, strict=True) if not row.cached}
        assert self.cache is not None  # set in __post_init__
        self.cache.put_many(new)
        return new

    def _check_finite(
        self, output: np.ndarray | list[np.ndarray], ids: list[str], task: str
    ) -> None:
        """Refuse a batch with a NaN or an infinity in any vector, before anything is cached."""
        bad = [
            item_id
            for item_id, vector in zip(ids, output, strict=True)
            if not np.isfinite(vector).all()
        ]
        if bad:
            raise HarnessError(
                f"task {task}: model {self.adapter.meta.name!r} returned NaN or infinite values "
                f"for {len(bad)} of the {len(ids)} items of a batch (the first: item "
                f"{bad[0]!r}); nothing of that batch was cached. A float16 model that "
                "overflows needs --dtype bfloat16 or float32; otherwise check the model's "
                "weights."
            )

    def _call_halving(
        self, items: list[dict[str, Any]], role: Role, instruction: str | None
    ) -> np.ndarray | list[np.ndarray]:
        """Encode in chunks of the batch size in force, halving it on out-of-memory errors."""
        out_of_memory = _out_of_memory_error()
        outputs: list[np.ndarray | list[np.ndarray]] = []
        start = 0
        while start < len(items):
            size = min(self.stats.batch_size, len(items) - start)
            try:
                outputs.append(self._call_model(items[start : start + size], role, instruction))
            except out_of_memory as error:
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
        start = time.perf_counter()
        raw = self._model().encode(items, role=role, instruction=instruction)
        self.times.encode += time.perf_counter() - start
        if self.adapter.meta.similarity == "maxsim":
            output: np.ndarray | list[np.ndarray] = _token_arrays(raw, len(items), self.adapter)
        else:
            output = _vector_matrix(raw, len(items), self.adapter)
        self.stats.model_calls += 1
        self.stats.items_encoded += len(items)
        return output

    def _bad_input(self, item_id: str, task: str, error: str) -> None:
        if not self.skip_bad_inputs:
            raise BadInputError(
                f"task {task}: item {item_id!r}: {error}. Fix or remove the item in the "
                "dataset, or pass --skip-bad-inputs to record and skip such items."
            )


def degenerate_warnings(encoding: Mapping[str, Any], model: str) -> list[str]:
    """The warning a task's encoding counts call for: inputs whose vectors were all zero or
    constant (similarities among them are ties, or undefined for the cosine)."""
    zero = encoding.get("zero_vectors", 0)
    constant = encoding.get("constant_vectors", 0)
    if not zero and not constant:
        return []
    return [
        f"model {model!r} returned {zero} all-zero and {constant} constant vector(s) for this "
        "task's inputs; their similarities are ties or undefined, so the scores on them carry no "
        "signal. Check the model's weights, pooling and dtype."
    ]


# prctl(2) option: the signal this process gets when the thread that started it dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int, worker_id: int) -> None:
    """Runs in each DataLoader worker: have the kernel SIGKILL it when the process that started
    it dies, even by SIGKILL (else a worker blocked on a full queue outlives it for good).

    Linux only (``prctl``); elsewhere torch's own watchdog stops idle workers.
    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _degenerate(encoded: Encoded, *, multi_vector: bool) -> tuple[int, int]:
    """How many kept items got an all-zero vector, and how many a constant non-zero one (for a
    multi-vector item: every token vector so)."""
    rows = encoded.vectors[encoded.kept]
    if not multi_vector:
        zero_rows, constant_rows = _degenerate_rows(rows)
        return int(zero_rows.sum()), int(constant_rows.sum())
    flags = [_degenerate_rows(tokens) for tokens in rows]
    zero = sum(bool(z.all()) for z, _ in flags)
    constant = sum(bool((z | c).all() and not z.all()) for z, c in flags)
    return zero, constant


def _degenerate_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: all zero; and constant but not zero (never for a single column)."""
    if matrix.size == 0:
        return np.zeros(len(matrix), bool), np.zeros(len(matrix), bool)
    zero = np.asarray(~matrix.any(axis=1))
    constant = np.asarray(
        (matrix.max(axis=1) == matrix.min(axis=1)) & ~zero & (matrix.shape[1] > 1)
    )
    return zero, constant


def _timed(batches: Iterable[list[_Row]], times: EncodeTimes) -> Iterator[list[_Row]]:
    """The batches of a loader, the time spent waiting for each added to ``times.decode``."""
    iterator = iter(batches)
    while True:
        start = time.perf_counter()
        batch = next(iterator, None)
        times.decode += time.perf_counter() - start
        if batch is None:
            return
        yield batch


def _out_of_memory_error() -> type[Exception]:
    """The device's out-of-memory error (torch >= 2.5 names it torch.OutOfMemoryError;
    torch.cuda.OutOfMemoryError is the same class)."""
    import torch

    error: type[Exception] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    return error


def _release_device_memory() -> None:
    """Return cached blocks to the device after an out-of-memory error."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _batch_order(item: RawItem) -> tuple[int, ...]:
    """The sort key that plans batches: items with a part of a later-registered modality first
    (images before texts), then by the lengths of their parts, longest first, so that padding
    is small per batch. Faulty items (no parts) come last."""
    key: list[int] = []
    for entry in reversed(registered()):
        value = item.parts.get(entry.name)
        key += (1, 0) if value is None else (0, -entry.length(value))
    return tuple(key)


def _decoded_parts(item: RawItem) -> int:
    """How many of the item's parts its modality decodes (0: adapters take it as stored)."""
    return sum(1 for name in item.parts if modality(name).decode is not None)


class _Row(NamedTuple):
    """One item of a prepared batch: the item ready for the adapter, or None and why not."""

    key: str
    item_id: str
    item: Item | None
    error: str
    cached: bool
    parts_decoded: int


# An adapter's ``preprocess`` (see :class:`harness.core.adapter.Preprocessing`).
Preprocess = Callable[..., Item]


def _prepare_batch(
    preprocess: Preprocess | None,
    role: Role,
    instruction: str | None,
    entries: list[tuple[str, RawItem, bool]],
) -> list[_Row]:
    """Runs in a DataLoader worker (in the main process when there is none): decode and
    preprocess the batch's uncached items, keeping the error text of those that fail, and its
    cached items (neighbours the model must see again) only when some uncached item is ready."""
    ready = {
        key: _prepare(item, preprocess, role, instruction)
        for key, item, cached in entries
        if not cached
    }
    if any(item is not None for item, _ in ready.values()):
        ready |= {
            key: _prepare(item, preprocess, role, instruction)
            for key, item, cached in entries
            if cached
        }
    rows = []
    for key, raw, cached in entries:
        item, error = ready.get(key, (None, ""))
        parts = _decoded_parts(raw) if item is not None else 0
        rows.append(_Row(key, raw.id, item, error, cached, parts))
    return rows


def _prepare(
    raw: RawItem, preprocess: Preprocess | None, role: Role, instruction: str | None
) -> tuple[Item | None, str]:
    """The decoded (and preprocessed) item, or None and why it failed: a part that does not
    decode, or a :class:`BadInputError` of the preprocess step (any other error of the adapter's
    is raised)."""
    try:
        item = raw.decoded()
    except BadInputError as error:  # the item names its column and what is wrong
        return None, str(error)
    except Exception as error:  # any other decoder failure is reported per item
        return None, f"{type(error).__name__}: {error}"
    if preprocess is None:
        return item, ""
    try:
        return preprocess(item, role=role, instruction=instruction), ""
    except BadInputError as error:
        return None, str(error)


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


def _vector_matrix(raw: Any, n: int, adapter: Adapter) -> np.ndarray:
    """A dense adapter's output as a float32 ``(n, d)`` matrix, checked."""
    matrix = np.asarray(raw, dtype=np.float32)
    if matrix.ndim != 2 or len(matrix) != n:
        raise HarnessError(
            f"adapter {adapter.meta.name!r} must return one vector per item, an (n, d) array; "
            f"got shape {matrix.shape} for {n} items"
        )
    return matrix


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
