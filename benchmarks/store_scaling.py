"""The embedding cache at scale: the shard store against the one-file-per-vector store before it.

No model: seeded random float32 vectors (d = 512, as CLIP ViT-B/32) under keys made as
``harness.engine.cache.cache_key`` makes them, written the way the encoder writes them (one
``put_many`` per batch of ``--batch`` vectors, the harness's default batch size) into an empty
cache folder, then read back by a fresh cache the way the encoder reads them (one
``get_many`` per ``--read-chunk`` keys) and checked equal. Optionally multi-vector items too
(128-d token matrices of 32 to 1,030 rows, as ColPali's). Reports write and read throughput,
the files created and the disk used (allocated blocks) for each store and size.

The old store is a minimal copy, kept here, of what ``harness/engine/cache.py`` did before the
shard store: one ``.npy`` file per key under ``embeddings/<first two hex digits>/``, written
atomically (``harness.engine.atomic.write_atomic``: temporary file, fsync, rename) and read with
``np.load``. Reads are from a warm page cache (the files were just written) on both sides.

    python -m benchmarks.store_scaling                         # 10^4..10^6; old store to 10^5
    python -m benchmarks.store_scaling --sizes 1000 --old-max 1000 --multi 100
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from harness.engine.atomic import write_atomic
from harness.engine.cache import EmbeddingCache, cache_key

DIM = 512
TOKEN_DIM = 128
TOKENS = (32, 1030)
SEED = 0


class OldStore:
    """The one-file-per-vector layout of the cache before the shard store."""

    def __init__(self, root: Path) -> None:
        self.root = root / "embeddings"
        self.root.mkdir(parents=True, exist_ok=True)

    def put_many(self, entries: Mapping[str, np.ndarray]) -> None:
        for key, vector in entries.items():
            path = self.root / key[:2] / f"{key}.npy"
            buffer = io.BytesIO()
            np.save(buffer, vector, allow_pickle=False)
            path.parent.mkdir(exist_ok=True)
            write_atomic(path, buffer.getvalue())

    def get_many(self, keys: list[str], ndim: int = 1) -> dict[str, np.ndarray]:
        found = {}
        for key in keys:
            try:
                data = (self.root / key[:2] / f"{key}.npy").read_bytes()
            except OSError:
                continue
            array = np.load(io.BytesIO(data), allow_pickle=False)
            if array.ndim == ndim and array.dtype == np.float32 and np.isfinite(array).all():
                found[key] = array
        return found


def keys(count: int, kind: str) -> list[str]:
    return [cache_key("bench", None, None, kind, str(i)) for i in range(count)]


def arrays(count: int, multi: bool, start: int = 0) -> Iterator[np.ndarray]:
    """The seeded array of each item from ``start`` on (the same for every store)."""
    for i in range(start, start + count):
        rng = np.random.default_rng((SEED, i))
        if multi:
            rows = int(rng.integers(TOKENS[0], TOKENS[1] + 1))
            yield rng.standard_normal((rows, TOKEN_DIM), dtype=np.float32)
        else:
            yield rng.standard_normal(DIM, dtype=np.float32)


def disk_use(root: Path) -> tuple[int, int]:
    """The files under ``root`` and the bytes their blocks take."""
    files = used = 0
    for folder, _, names in os.walk(root):
        for name in names:
            files += 1
            used += os.stat(os.path.join(folder, name)).st_blocks * 512
    return files, used


def measure(
    store: str, count: int, multi: bool, batch: int, read_chunk: int, folder: Path
) -> dict[str, float | str]:
    """Write ``count`` items into an empty store, read them back, check them; the figures."""
    root = Path(tempfile.mkdtemp(prefix=f"store-{store}-", dir=folder))
    opener: Callable[[Path], EmbeddingCache | OldStore] = (
        EmbeddingCache if store == "shard" else OldStore
    )
    names = keys(count, "multi" if multi else "vector")
    generated = 0.0  # time spent making the random arrays, left out of the write time
    writer = opener(root)
    began = time.perf_counter()
    for start in range(0, count, batch):
        made = time.perf_counter()
        chunk = dict(zip(names[start : start + batch], arrays(batch, multi, start), strict=False))
        generated += time.perf_counter() - made
        writer.put_many(chunk)
    write_seconds = time.perf_counter() - began - generated
    if isinstance(writer, EmbeddingCache):
        writer.close()
    payload = 0
    reader = opener(root)
    began = time.perf_counter()
    for start in range(0, count, read_chunk):
        wanted = names[start : start + read_chunk]
        found = reader.get_many(wanted, ndim=2 if multi else 1)
        if len(found) != len(wanted):
            raise SystemExit(f"{store}: {len(wanted) - len(found)} entries were not read back")
        payload += sum(array.nbytes for array in found.values())
    read_seconds = time.perf_counter() - began
    for key, expected in zip(names[:: max(count // 100, 1)], _every(count, multi), strict=False):
        if not np.array_equal(reader.get_many([key], ndim=expected.ndim)[key], expected):
            raise SystemExit(f"{store}: entry {key} was not read back as written")
    if isinstance(reader, EmbeddingCache):
        reader.close()
    files, used = disk_use(root)
    shutil.rmtree(root)
    return {
        "store": store,
        "items": "multi-vector" if multi else "vector",
        "count": count,
        "write_s": write_seconds,
        "read_s": read_seconds,
        "mib": payload / 2**20,
        "files": files,
        "disk_mib": used / 2**20,
    }


def _every(count: int, multi: bool) -> Iterator[np.ndarray]:
    """The arrays of every hundredth item, as :func:`measure` samples them."""
    step = max(count // 100, 1)
    for i in range(0, count, step):
        yield next(arrays(1, multi, i))


def table(rows: list[dict[str, float | str]]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| store | items | count | vectors MiB | write s | write items/s | read s | read items/s "
        "| files | disk MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        count, write, read = float(row["count"]), float(row["write_s"]), float(row["read_s"])
        lines.append(
            f"| {row['store']} | {row['items']} | {int(count):,} | {float(row['mib']):,.0f} "
            f"| {write:.1f} | {count / write:,.0f} | {read:.2f} | {count / read:,.0f} "
            f"| {int(row['files']):,} | {float(row['disk_mib']):,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="vector counts")
    parser.add_argument(
        "--old-max", type=int, default=100_000, help="largest count for the old store"
    )
    parser.add_argument("--multi", default="", help="multi-vector item counts, e.g. 1000")
    parser.add_argument("--batch", type=int, default=32, help="vectors per put_many")
    parser.add_argument("--read-chunk", type=int, default=10_000, help="keys per get_many")
    parser.add_argument("--folder", type=Path, default=None, help="where the stores are made")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="store-scaling-", dir=args.folder))
    cases = [(int(n), False) for n in args.sizes.split(",") if n]
    cases += [(int(n), True) for n in args.multi.split(",") if n]
    rows = []
    try:
        for count, multi in cases:
            for store in ("shard", "old"):
                if store == "old" and count > args.old_max:
                    continue
                rows.append(measure(store, count, multi, args.batch, args.read_chunk, folder))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
