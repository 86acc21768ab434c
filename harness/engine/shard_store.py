"""Many millions of float32 arrays in a few files: append-only shards indexed by SQLite.

Layout, under the store's folder::

    index.sqlite          key -> (shard, offset, shape, crc32, created, fingerprint); WAL mode
    shards/<name>.f32     raw little-endian float32 payloads, one after another

Each writing process appends to shard files of its own, which it holds an exclusive ``flock``
on while it may write, so concurrent writers never interleave bytes. A batch's bytes are
flushed to the disk (``fsync``) before the one transaction that indexes them commits: a kill at
any point leaves at most unindexed bytes at the end of a shard, never an index row that points
at bytes not yet written. A reader checks each payload's length and crc32, so a torn or
corrupted payload is a miss, never garbage. Shard ids are never reused, so a reader that looked
a key up just before :meth:`ShardStore.compact` moved it reads either the old bytes (its open
file survives the unlink) or nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

# Payloads are little-endian float32 (the native float32 of every platform torch runs on).
DTYPE = np.dtype("<f4")
# A writer moves on to a new shard once its current one holds this many bytes.
SHARD_BYTES = 1 << 30
# Keys looked up per query (SQLite allows 32766 parameters since 3.32; this stays well under).
_CHUNK = 900
# Seconds a writer waits for another writer's transaction before giving up.
_BUSY_SECONDS = 60.0
_SUFFIX = ".f32"
# Index connections a forked child inherited: never used, never closed (SQLite's advice).
_INHERITED: list[sqlite3.Connection] = []
_SCHEMA = """
BEGIN;
CREATE TABLE IF NOT EXISTS shards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    key BLOB PRIMARY KEY,
    shard INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    cols INTEGER NOT NULL,
    ndim INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    created INTEGER NOT NULL,
    fingerprint TEXT
) WITHOUT ROWID;
COMMIT;
"""


class Location(NamedTuple):
    """Where one array's payload lies and what it must be."""

    shard: int
    offset: int
    nbytes: int
    shape: tuple[int, ...]
    crc: int

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass
class StoreInfo:
    """What :meth:`ShardStore.info` reports."""

    entries: int = 0
    vectors: int = 0
    multi_vector_items: int = 0
    payload_bytes: int = 0  # bytes of the indexed arrays
    shard_files: int = 0
    shard_bytes: int = 0  # bytes of every shard file, dead bytes included
    index_bytes: int = 0
    writers_active: int = 0  # shards locked by a process that may still write to them
    oldest: int | None = None
    newest: int | None = None
    fingerprints: dict[str, int] = field(default_factory=dict)

    @property
    def reclaimable_bytes(self) -> int:
        """Shard bytes no entry points at (replaced, pruned, or left by a killed writer)."""
        return max(self.shard_bytes - self.payload_bytes, 0)


class _Writer:
    """One shard file this process appends to, locked for as long as it is open (closing it,
    or the process ending, releases the lock)."""

    def __init__(self, folder: Path) -> None:
        while True:
            name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
            path = folder / name
            file = open(path, "xb", buffering=0)  # noqa: SIM115  # held open while writing
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            # A compaction may have removed the file, as an orphan, before it was locked.
            if _same_file(file.fileno(), path):
                break
            file.close()
        self.name, self.path, self.file, self.offset = name, path, file, 0
        self.pid = os.getpid()
        self.shard = -1  # set once the shard is registered in the index

    def write(self, data: bytes) -> int:
        """Append ``data`` durably; returns the offset it starts at."""
        start = self.offset
        write_durably(self.file.fileno(), data, start)
        self.offset += len(data)
        return start

    def close(self) -> None:
        self.file.close()


def write_durably(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` of ``fd``, then flush it to the disk."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        offset += written
        view = view[written:]
    os.fsync(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def key_bytes(key: str) -> bytes:
    """A cache key (64 hex digits) as the 32 bytes the index stores."""
    return bytes.fromhex(key)


class ShardStore:
    """The store in ``folder``. ``create`` makes the folder and the index where they are
    missing; ``readonly`` opens an existing index only to read it. Opening raises ``OSError``
    or ``sqlite3.Error`` when the disk is read-only or full, ``FileNotFoundError`` when there
    is no store to open without creating one."""

    def __init__(
        self,
        folder: Path,
        shard_bytes: int = SHARD_BYTES,
        create: bool = True,
        readonly: bool = False,
    ) -> None:
        self.folder = folder
        self.shards_folder = folder / "shards"
        self.shard_bytes = shard_bytes
        self.readonly = readonly
        if create and not readonly:
            self.shards_folder.mkdir(parents=True, exist_ok=True)
        elif not (folder / "index.sqlite").is_file():
            raise FileNotFoundError(f"no embedding store in {folder}")
        self._pid = os.getpid()
        self._db = self._connect()
        self._writer: _Writer | None = None
        self._readers: dict[int, BinaryIO] = {}  # shard id -> open shard
        self._names: dict[int, str] = {}

    def _connect(self) -> sqlite3.Connection:
        index = self.folder / "index.sqlite"
        if self.readonly:
            return sqlite3.connect(f"{index.absolute().as_uri()}?mode=ro", uri=True)
        db = sqlite3.connect(index, timeout=_BUSY_SECONDS)
        tables = "SELECT count(*) FROM sqlite_master WHERE name IN ('shards', 'entries')"
        if db.execute(tables).fetchone()[0] < 2:  # a new index
            # Lets compact() give back the pages of dropped rows; set before any table exists.
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("PRAGMA journal_mode=WAL")  # recorded in the file: set once
            db.executescript(_SCHEMA)
        # Durable enough: a power cut may drop the last commits (misses), never corrupt the index.
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @property
    def db(self) -> sqlite3.Connection:
        """This process's connection (a forked child opens its own, and forgets the parent's
        writer and files rather than share them)."""
        if os.getpid() != self._pid:
            _INHERITED.append(self._db)  # closing it here could disturb the parent's locks
            self._pid = os.getpid()
            self._writer, self._readers, self._names = None, {}, {}
            self._db = self._connect()
        return self._db

    # Reading

    def locate(self, keys: Sequence[str]) -> dict[str, Location]:
        """The index rows of those ``keys`` that are stored, one query per chunk of keys."""
        found: dict[str, Location] = {}
        db = self.db
        for start in range(0, len(keys), _CHUNK):
            chunk = {key_bytes(key): key for key in keys[start : start + _CHUNK]}
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                "SELECT key, shard, offset, rows, cols, ndim, crc FROM entries "
                f"WHERE key IN ({marks})",
                list(chunk),
            )
            for blob, shard, offset, height, width, ndim, crc in rows:
                shape = (width,) if ndim == 1 else (height, width)
                nbytes = height * width * DTYPE.itemsize
                found[chunk[blob]] = Location(shard, offset, nbytes, shape, crc)
        return found

    def read_many(self, located: Mapping[str, Location]) -> dict[str, np.ndarray]:
        """The arrays at ``located`` whose bytes are all there and match their checksum (any
        other is left out), read in file order with one read per run of adjacent payloads."""
        found: dict[str, np.ndarray] = {}
        order = sorted(located.items(), key=lambda item: (item[1].shard, item[1].offset))
        for run in _runs(order):
            first = run[0][1]
            buffer = self._read(first.shard, first.offset, sum(loc.nbytes for _, loc in run))
            position = 0
            for key, location in run:
                payload = buffer[position : position + location.nbytes]
                position += location.nbytes
                if len(payload) == location.nbytes and zlib.crc32(payload.data) == location.crc:
                    found[key] = payload.view(DTYPE).reshape(location.shape)
        return found

    def _read(self, shard: int, offset: int, size: int) -> np.ndarray:
        """Up to ``size`` bytes of ``shard`` from ``offset`` (fewer where the file is shorter,
        none where it is gone)."""
        buffer = np.empty(size, np.uint8)
        file = self._reader(shard)
        try:
            count = 0 if file is None else os.preadv(file.fileno(), [buffer.data], offset)
        except OSError:
            count = 0
        return buffer[:count]

    def _reader(self, shard: int) -> BinaryIO | None:
        file = self._readers.get(shard)
        if file is not None:
            return file
        if not self._names:
            self._names = dict(self.db.execute("SELECT id, name FROM shards"))
        name = self._names.get(shard)
        if name is None:  # a shard registered since the names were read
            self._names = dict(self.db.execute("SELECT id, name FROM shards"))
            name = self._names.get(shard)
        if name is None:
            return None
        try:
            file = (self.shards_folder / name).open("rb", buffering=0)
        except OSError:  # removed by a compaction since the look-up: a miss
            return None
        self._readers[shard] = file
        return file

    # Writing

    def put(
        self, arrays: Mapping[str, np.ndarray], fingerprints: Mapping[str, str] | None = None
    ) -> None:
        """Store ``arrays`` (float32, one or two dimensions) under their keys, replacing any
        entry a key had: bytes first, flushed, then one index transaction."""
        if not arrays:
            return
        payloads = [np.ascontiguousarray(array, DTYPE) for array in arrays.values()]
        data = b"".join(payload.tobytes() for payload in payloads)
        writer = self._current_writer()
        offset = writer.write(data)
        now = int(time.time())
        labels = fingerprints or {}
        rows = []
        for key, payload in zip(arrays, payloads, strict=True):
            height = payload.shape[0] if payload.ndim == 2 else 1
            rows.append(
                (
                    key_bytes(key),
                    writer.shard,
                    offset,
                    height,
                    payload.shape[-1],
                    payload.ndim,
                    zlib.crc32(payload.data),
                    now,
                    labels.get(key),
                )
            )
            offset += payload.nbytes
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?)", rows)
        if writer.offset >= self.shard_bytes:
            self.close_writer()

    def _current_writer(self) -> _Writer:
        db = self.db  # first: a forked child forgets its parent's writer here
        writer = self._writer
        if writer is None:
            writer = _Writer(self.shards_folder)
            try:
                with db:
                    cursor = db.execute(
                        "INSERT INTO shards (name, created) VALUES (?, ?)",
                        (writer.name, int(time.time())),
                    )
            except BaseException:
                writer.close()
                writer.path.unlink(missing_ok=True)
                raise
            writer.shard = int(cursor.lastrowid or 0)
            self._writer = writer
        return writer

    def close_writer(self) -> None:
        """Stop appending to the current shard (the next write starts a new one)."""
        if self._writer is not None and self._writer.pid == os.getpid():
            self._writer.close()
        self._writer = None

    def close(self) -> None:
        """Close the writer, the open shards and the index connection."""
        self.close_writer()
        for file in self._readers.values():
            file.close()
        self._readers = {}
        self._db.close()

    # Reporting and pruning

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def info(self) -> StoreInfo:
        """Counts and sizes of the whole store (one pass over the index)."""
        db = self.db
        info = StoreInfo()
        entries, vectors, payload, oldest, newest = db.execute(
            "SELECT count(*), sum(ndim = 1), sum(rows * cols), min(created), max(created) "
            "FROM entries"
        ).fetchone()
        info.entries, info.vectors = entries, vectors or 0
        info.multi_vector_items = entries - info.vectors
        info.payload_bytes = (payload or 0) * DTYPE.itemsize
        info.oldest, info.newest = oldest, newest
        info.fingerprints = {
            label or "(not recorded)": count
            for label, count in db.execute(
                "SELECT fingerprint, count(*) FROM entries GROUP BY fingerprint ORDER BY 2 DESC"
            )
        }
        for path in self.shards_folder.glob(f"*{_SUFFIX}"):
            info.shard_files += 1
            info.shard_bytes += _size(path)
            with _try_lock(path) as locked:
                info.writers_active += not locked
        info.index_bytes = sum(_size(path) for path in self.folder.glob("index.sqlite*"))
        return info

    def delete(
        self,
        *,
        everything: bool = False,
        created_before: int | None = None,
        fingerprint: str | None = None,
        max_payload_bytes: int | None = None,
    ) -> int:
        """Drop the index rows the selectors pick (each given selector adds rows); returns how
        many were dropped. Their bytes stay until :meth:`compact`."""
        db = self.db
        dropped = 0
        with db:
            if everything:
                dropped += db.execute("DELETE FROM entries").rowcount
            if created_before is not None:
                query = "DELETE FROM entries WHERE created < ?"
                dropped += db.execute(query, (created_before,)).rowcount
            if fingerprint is not None:
                query = "DELETE FROM entries WHERE fingerprint = ?"
                dropped += db.execute(query, (fingerprint,)).rowcount
            if max_payload_bytes is not None:
                # The newest entries are kept while their running total fits the budget.
                query = (
                    "DELETE FROM entries WHERE key IN (SELECT key FROM (SELECT key, "
                    "sum(rows * cols) OVER (ORDER BY created DESC, key) AS total FROM entries) "
                    "WHERE total * ? > ?)"
                )
                dropped += db.execute(query, (DTYPE.itemsize, max_payload_bytes)).rowcount
        return dropped

    def compact(self) -> tuple[int, int]:
        """Rewrite every shard that holds dead bytes and that no writer holds, keeping only the
        bytes the index points at; remove files the index does not know. Returns the bytes
        reclaimed and the number of shard files left because a writer holds them."""
        db = self.db
        self.close_writer()
        live = dict(db.execute("SELECT shard, sum(rows * cols) FROM entries GROUP BY shard"))
        names = dict(db.execute("SELECT name, id FROM shards"))
        before = self._shard_bytes()
        skipped = 0
        for path in sorted(self.shards_folder.glob(f"*{_SUFFIX}")):
            known = names.get(path.name)
            if known is not None and live.get(known, 0) * DTYPE.itemsize == _size(path):
                continue  # nothing dead in it
            with _try_lock(path) as locked:
                if not locked:
                    skipped += 1
                    continue
                # Looked up again under the lock: a writer may have registered it since.
                row = db.execute("SELECT id FROM shards WHERE name = ?", (path.name,)).fetchone()
                if row is not None:
                    self._move_live_entries(row[0], path)
                    with db:
                        db.execute("DELETE FROM shards WHERE id = ?", row)
                path.unlink(missing_ok=True)
        self.close_writer()
        with contextlib.suppress(sqlite3.Error):  # give back the free pages of the index
            db.execute("PRAGMA incremental_vacuum").fetchall()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return max(before - self._shard_bytes(), 0), skipped

    def _shard_bytes(self) -> int:
        return sum(_size(path) for path in self.shards_folder.glob(f"*{_SUFFIX}"))

    def _move_live_entries(self, shard: int, path: Path) -> None:
        """Copy the live payloads of ``shard`` to this process's writer, a few MiB at a time,
        re-pointing each index row only where it still points into ``shard``."""
        db = self.db
        rows = db.execute(
            "SELECT key, offset, rows, cols, crc FROM entries WHERE shard = ? ORDER BY offset",
            (shard,),
        ).fetchall()
        with path.open("rb") as source:
            for batch in _batches(rows, limit=1 << 24):
                moved = []
                chunks = []
                for key, offset, height, width, crc in batch:
                    data = os.pread(source.fileno(), height * width * DTYPE.itemsize, offset)
                    if zlib.crc32(data) == crc:  # a corrupt payload is left behind (a miss)
                        moved.append((key, offset))
                        chunks.append(data)
                writer = self._current_writer()
                start = writer.write(b"".join(chunks))
                updates = []
                for (key, offset), data in zip(moved, chunks, strict=True):
                    updates.append((writer.shard, start, key, shard, offset))
                    start += len(data)
                with db:
                    db.executemany(
                        "UPDATE entries SET shard = ?, offset = ? "
                        "WHERE key = ? AND shard = ? AND offset = ?",
                        updates,
                    )
                if writer.offset >= self.shard_bytes:
                    self.close_writer()
        with db:  # what is left are corrupt payloads: misses anyway
            db.execute("DELETE FROM entries WHERE shard = ?", (shard,))


def _runs(order: list[tuple[str, Location]]) -> Iterator[list[tuple[str, Location]]]:
    """``order`` (sorted by shard and offset) in runs of payloads that follow each other."""
    run: list[tuple[str, Location]] = []
    for item in order:
        if run:
            last = run[-1][1]
            if item[1].shard != last.shard or item[1].offset != last.offset + last.nbytes:
                yield run
                run = []
        run.append(item)
    if run:
        yield run


def _batches(
    rows: list[tuple[bytes, int, int, int, int]], limit: int
) -> Iterator[list[tuple[bytes, int, int, int, int]]]:
    """``rows`` in consecutive groups of about ``limit`` payload bytes."""
    batch: list[tuple[bytes, int, int, int, int]] = []
    total = 0
    for row in rows:
        batch.append(row)
        total += row[2] * row[3] * DTYPE.itemsize
        if total >= limit:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


@contextlib.contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    """Whether ``path`` could be locked (no writer holds it); the lock is held in the block."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield _same_file(fd, path)
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
