"""The shard store under the embedding cache: few files, concurrent writers, kills at any point,
corruption, full disks, old-format caches, and ``harness cache info|prune``."""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.app.cache_command import parse_size
from harness.app.cli import main
from harness.engine.cache import STORE_FOLDER, EmbeddingCache, cache_key
from harness.engine.shard_store import ShardStore

REPO = Path(__file__).resolve().parent.parent


def key(i: int) -> str:
    return cache_key("fp", None, None, "text", str(i))


def expected(i: int, multi: bool = False) -> np.ndarray:
    """The one array item ``i`` ever has, whoever writes it (so any writer's copy is right)."""
    rng = np.random.default_rng(i)
    shape = (int(rng.integers(1, 9)), 6) if multi else (16,)
    return rng.standard_normal(shape, dtype=np.float32)


def shard_files(root: Path) -> list[Path]:
    return sorted((root / STORE_FOLDER / "shards").glob("*.f32"))


def assert_serves_exactly(cache: EmbeddingCache, indices: range | list[int], multi=False) -> None:
    found = cache.get_many([key(i) for i in indices], ndim=2 if multi else 1)
    assert list(found) == [key(i) for i in indices]
    for i in indices:
        np.testing.assert_array_equal(found[key(i)], expected(i, multi))


def test_vectors_and_token_matrices_round_trip_in_request_order(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put_many({key(i): expected(i) for i in range(10)})
    cache.put_many({key(i): expected(i, multi=True) for i in range(10, 20)})
    assert len(cache) == 20
    wanted = [key(i) for i in (15, 3, 12, 0)]
    assert list(EmbeddingCache(tmp_path).get_many(wanted)) == [key(3), key(0)]
    tokens = EmbeddingCache(tmp_path).get_many(wanted, ndim=2)
    assert list(tokens) == [key(15), key(12)]
    assert all(array.dtype == np.float32 and array.flags.writeable for array in tokens.values())
    assert_serves_exactly(EmbeddingCache(tmp_path), range(10, 20), multi=True)
    assert len(shard_files(tmp_path)) == 1  # one writer, one shard file


def test_unusable_arrays_are_neither_stored_nor_served(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    bad = {
        "nan": np.array([1.0, np.nan], np.float32),
        "inf": np.array([np.inf, 1.0], np.float32),
        "empty": np.zeros(0, np.float32),
        "float64": np.ones(3),
        "three-d": np.ones((2, 2, 2), np.float32),
    }
    cache.put_many({key(i): array for i, array in enumerate(bad.values())})
    assert len(cache) == 0
    assert cache.get_many([key(i) for i in range(len(bad))]) == {}


def test_a_replaced_entry_serves_its_new_array(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put_many({key(0): np.zeros(4, np.float32)})
    cache.put_many({key(0): np.ones(4, np.float32)})
    np.testing.assert_array_equal(EmbeddingCache(tmp_path).get_many([key(0)])[key(0)], 1.0)


def test_a_writer_starts_a_new_shard_when_one_is_full(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, shard_bytes=600)  # 16 floats: 64 bytes a vector
    for start in range(0, 100, 10):
        cache.put_many({key(i): expected(i) for i in range(start, start + 10)})
    assert len(shard_files(tmp_path)) == 10
    assert_serves_exactly(EmbeddingCache(tmp_path), range(100))


def test_corrupt_truncated_or_missing_bytes_are_misses(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, shard_bytes=64 * 10)
    for start in range(0, 30, 10):
        cache.put_many({key(i): expected(i) for i in range(start, start + 10)})
    cache.close()
    first, second, third = shard_files(tmp_path)
    with first.open("r+b") as shard:  # flip one byte of item 3's payload
        shard.seek(3 * 64 + 5)
        byte = shard.read(1)
        shard.seek(3 * 64 + 5)
        shard.write(bytes([byte[0] ^ 0x10]))
    with second.open("r+b") as shard:  # cut items 17 to 19
        shard.truncate(7 * 64 + 10)
    third.unlink()  # items 20 to 29
    served = EmbeddingCache(tmp_path).get_many([key(i) for i in range(30)])
    assert list(served) == [key(i) for i in [*range(3), *range(4, 17)]]
    for i in [*range(3), *range(4, 17)]:
        np.testing.assert_array_equal(served[key(i)], expected(i))


def _write_overlapping(root: str, worker: int) -> None:
    cache = EmbeddingCache(root)
    for start in range(0, 120, 8):  # every worker writes the same keys, in its own order
        order = range(start, start + 8) if worker % 2 else range(start + 7, start - 1, -1)
        cache.put_many({key(i): expected(i) for i in order})
        cache.put_many({key(1000 + i): expected(1000 + i, multi=True) for i in order})
        cache.put_many({key(10_000 * (worker + 1) + i): expected(i) for i in order})


def test_concurrent_writers_of_overlapping_keys_lose_and_mix_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_write_overlapping, args=(str(tmp_path), w)) for w in range(4)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    cache = EmbeddingCache(tmp_path)
    assert_serves_exactly(cache, range(120))
    assert_serves_exactly(cache, range(1000, 1120), multi=True)
    own = cache.get_many([key(10_000 * (w + 1) + i) for w in range(4) for i in range(120)])
    assert len(own) == 480
    assert len(cache) == 120 + 120 + 480
    assert len(shard_files(tmp_path)) == 4  # one per writing process: never interleaved


def _write_forever(root: str, started: multiprocessing.synchronize.Event) -> None:
    cache = EmbeddingCache(root)
    batch = 0
    while True:
        cache.put_many(
            {key(i): expected(i, multi=True) for i in range(batch * 50, batch * 50 + 50)}
        )
        batch += 1
        started.set()


def _kill_after_fsync(root: str) -> None:
    cache = EmbeddingCache(root)
    cache.put_many({key(i): expected(i) for i in range(5)})
    os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # bytes written, not indexed
    cache.put_many({key(i): expected(i) for i in range(5, 10)})


def test_a_kill_after_the_bytes_before_the_index_leaves_only_complete_entries(
    tmp_path: Path,
) -> None:
    process = multiprocessing.get_context("fork").Process(
        target=_kill_after_fsync, args=(str(tmp_path),)
    )
    process.start()
    process.join(timeout=60)
    assert process.exitcode == -signal.SIGKILL
    cache = EmbeddingCache(tmp_path)
    assert_serves_exactly(cache, range(5))
    assert cache.get_many([key(i) for i in range(5, 10)]) == {}
    cache.put_many({key(i): expected(i) for i in range(5, 10)})  # a new writer, a new shard
    assert_serves_exactly(EmbeddingCache(tmp_path), range(10))
    assert len(shard_files(tmp_path)) == 2


def test_sigkill_at_random_points_leaves_a_consistent_store(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for delay in (0.0, 0.05, 0.13, 0.31):
        started = context.Event()
        process = context.Process(target=_write_forever, args=(str(tmp_path), started))
        process.start()
        assert started.wait(timeout=60)
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=60)
        cache = EmbeddingCache(tmp_path)
        stored = cache._store.locate([key(i) for i in range(100_000)])  # type: ignore[union-attr]
        assert len(stored) >= 50
        indices = sorted(int(i) for i in range(100_000) if key(i) in stored)
        assert_serves_exactly(cache, indices, multi=True)  # every indexed entry whole
        cache.close()
    code = main(["cache", "prune", "--cache-dir", str(tmp_path)])  # reclaims the torn tails
    assert code == 0
    cache = EmbeddingCache(tmp_path)
    assert_serves_exactly(cache, indices, multi=True)
    info = cache._store.info()  # type: ignore[union-attr]
    assert info.reclaimable_bytes == 0 and info.writers_active == 0


def test_a_full_disk_turns_writing_off_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put_many({key(0): expected(0)})

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    for i in range(1, 4):
        cache.put_many({key(i): expected(i)})
    monkeypatch.undo()
    cache.put_many({key(9): expected(9)})  # writing stays off
    assert not cache.writable
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "No space left on device" in err
    assert list(EmbeddingCache(tmp_path).get_many([key(i) for i in range(10)])) == [key(0)]


def test_an_index_that_cannot_be_written_turns_writing_off_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    EmbeddingCache(tmp_path).put_many({key(0): expected(0)})
    blocker = sqlite3.connect(tmp_path / STORE_FOLDER / "index.sqlite")
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the index for too long
    cache = EmbeddingCache(tmp_path)
    cache._store.db.execute("PRAGMA busy_timeout = 10")  # type: ignore[union-attr]
    cache.put_many({key(1): expected(1)})
    cache.put_many({key(2): expected(2)})
    blocker.rollback()
    assert not cache.writable
    assert capsys.readouterr().err.count("warning") == 1
    assert list(EmbeddingCache(tmp_path).get_many([key(i) for i in range(3)])) == [key(0)]


def test_a_cache_folder_that_cannot_be_made_is_one_warning_and_no_caching(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a folder")
    cache = EmbeddingCache(tmp_path / "file")
    cache.put_many({key(0): expected(0)})
    assert cache.get_many([key(0)]) == {}
    assert not cache.writable and len(cache) == 0
    assert capsys.readouterr().err.count("warning") == 1


def test_a_store_that_cannot_be_written_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    EmbeddingCache(tmp_path).put_many({key(i): expected(i) for i in range(3)})

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", read_only)
    cache = EmbeddingCache(tmp_path)
    assert not cache.writable and "Read-only file system" in capsys.readouterr().err
    assert_serves_exactly(cache, range(3))


def test_old_format_entries_are_read_counted_and_pruned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):  # as the cache before the shard store wrote them
        path = EmbeddingCache(tmp_path).old_path(key(i))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, expected(i))
    float64 = EmbeddingCache(tmp_path).old_path(key(3))
    float64.parent.mkdir(parents=True, exist_ok=True)
    np.save(float64, np.ones(4))  # a miss: not float32
    cache = EmbeddingCache(tmp_path)
    cache.put_many({key(i): expected(i) for i in range(2, 5)})
    assert_serves_exactly(EmbeddingCache(tmp_path), range(5))
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    assert "old-format entries    4 (" in capsys.readouterr().out
    assert main(["cache", "prune", "--old-format", "--cache-dir", str(tmp_path)]) == 0
    assert "Dropped 4 entries" in capsys.readouterr().out
    assert not (tmp_path / "embeddings").exists()
    assert list(EmbeddingCache(tmp_path).get_many([key(i) for i in range(5)])) == [
        key(i) for i in range(2, 5)
    ]


def _info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """``harness cache info``'s figures by name, then its fingerprint counts."""
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    figures = {line[2:24].strip(): line[24:] for line in lines[1:12]}
    return figures | dict(line.rsplit(None, 1) for line in lines[15:])


def test_info_reports_entries_sizes_files_and_fingerprints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put_many({key(i): expected(i) for i in range(6)}, {key(i): "clip" for i in range(4)})
    cache.put_many({key(i): np.ones((3, 10), np.float32) for i in range(6, 8)})
    cache.put_many({key(0): expected(0)}, {key(0): "clip"})  # replaces: 64 bytes left dead
    info = _info(tmp_path, capsys)
    assert info["entries"] == "8"
    assert info["vectors"] == "6" and info["multi-vector items"] == "2"
    assert info["vector bytes"] == f"{(6 * 16 + 2 * 30) * 4} B"
    assert info["shard files"] == f"1 ({(7 * 16 + 2 * 30) * 4} B)"
    assert info["reclaimable by prune"] == "64 B"
    assert info["writers active"] == "1"  # `cache` still holds its shard
    assert info["clip"] == "4" and info["(not recorded)"] == "4"


def test_prune_selectors_drop_what_they_name_and_reclaim_the_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    cache = EmbeddingCache(tmp_path)
    monkeypatch.setattr(time, "time", lambda: now - 10 * 86400)
    cache.put_many({key(i): expected(i) for i in range(10)})  # ten days old
    monkeypatch.undo()
    cache.put_many(
        {key(i): expected(i) for i in range(10, 20)}, {key(i): "a" for i in range(10, 20)}
    )
    cache.put_many(
        {key(i): expected(i) for i in range(20, 30)}, {key(i): "b" for i in range(20, 30)}
    )
    cache.close()
    root = ["--cache-dir", str(tmp_path)]
    assert main(["cache", "prune", "--older-than", "5", *root]) == 0
    assert "Dropped 10 entries; reclaimed 640 B" in capsys.readouterr().out
    assert main(["cache", "prune", "--fingerprint", "a", *root]) == 0
    assert "Dropped 10 entries; reclaimed 640 B" in capsys.readouterr().out
    assert_serves_exactly(EmbeddingCache(tmp_path), range(20, 30))
    assert main(["cache", "prune", "--max-size", "256B", *root]) == 0  # the 4 newest fit
    assert "Dropped 6 entries" in capsys.readouterr().out
    assert len(EmbeddingCache(tmp_path)) == 4
    files = shard_files(tmp_path)
    assert sum(path.stat().st_size for path in files) == 4 * 64
    assert main(["cache", "prune", "--all", *root]) == 0
    assert len(EmbeddingCache(tmp_path)) == 0 and shard_files(tmp_path) == []


def test_prune_leaves_a_running_writers_shard_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = EmbeddingCache(tmp_path)
    writer.put_many({key(i): expected(i) for i in range(10)})
    assert main(["cache", "prune", "--all", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Dropped 10 entries; reclaimed 0 B" in out and "1 shard file(s) in use" in out
    writer.put_many({key(i): expected(i) for i in range(10, 12)})  # the run goes on
    assert_serves_exactly(EmbeddingCache(tmp_path), range(10, 12))
    writer.close()
    assert main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 0
    assert "reclaimed 640 B" in capsys.readouterr().out
    assert_serves_exactly(EmbeddingCache(tmp_path), range(10, 12))


def test_a_reader_during_compaction_gets_right_bytes_or_a_miss(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put_many({key(i): expected(i) for i in range(20)})
    cache.put_many({key(i): expected(i) for i in range(10)})  # shard 1 now half dead
    cache.close()
    reader = EmbeddingCache(tmp_path)
    assert_serves_exactly(reader, range(20))  # opens both shards
    stale = reader._store.locate([key(i) for i in range(20)])  # type: ignore[union-attr]
    assert main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 0
    index = {key(i): i for i in range(20)}
    for name, array in reader._store.read_many(stale).items():  # type: ignore[union-attr]
        np.testing.assert_array_equal(array, expected(index[name]))  # old bytes, still right
    assert_serves_exactly(reader, range(20))  # the rows moved: new locations, same arrays
    assert_serves_exactly(EmbeddingCache(tmp_path), range(20))


def test_cache_command_errors_exit_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "absent")]) == 2
    assert "no embedding cache at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["cache", "prune", "--max-size", "ten gigs", "--cache-dir", str(tmp_path)])
    assert stop.value.code == 2
    assert "expected a size like 500M" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("123", 123),
        ("2k", 2000),
        ("1.5 GB", 1_500_000_000),
        ("2GiB", 2 * 1024**3),
        ("1MiB", 1 << 20),
    ],
)
def test_sizes_parse_in_decimal_and_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_store_refuses_to_open_where_there_is_none(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ShardStore(tmp_path / "none", create=False)


def test_benchmark_script_runs_on_tiny_counts(tmp_path: Path) -> None:
    argv = ["--sizes", "300", "--old-max", "300", "--multi", "5", "--batch", "16"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.store_scaling", *argv, "--folder", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    table = done.stdout.split("\n\n")[-1].splitlines()
    rows = [line.split("|")[1:-1] for line in table[2:]]
    assert [(row[0].strip(), row[1].strip(), row[2].strip()) for row in rows] == [
        ("shard", "vector", "300"),
        ("old", "vector", "300"),
        ("shard", "multi-vector", "5"),
        ("old", "multi-vector", "5"),
    ]
    assert [row[8].strip() for row in rows] == ["2", "300", "2", "5"]
    assert list(tmp_path.iterdir()) == []  # the stores are removed


def test_a_stored_non_finite_array_is_still_a_miss(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / STORE_FOLDER)
    store.put({key(0): np.array([1.0, np.nan], np.float32), key(1): expected(1)})  # unchecked
    store.close()
    assert list(EmbeddingCache(tmp_path).get_many([key(0), key(1)])) == [key(1)]
