"""The encoding engine and the files it writes, under kills, bad vectors and bad disks.

Resume after ``kill -9`` is byte-identical; NaN vectors are an error and all-zero or constant
ones a warning; the cache never serves a bad entry and a bad cache disk only turns caching off;
a full results disk exits 2 keeping the finished files; DataLoader workers die with their
parent; result files follow the umask.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import harness.app.runner
import harness.engine.atomic
import harness.engine.results
import harness.engine.shard_store
from harness.app.cli import main
from harness.core.adapter import Role
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.engine.cache import STORE_FOLDER, EmbeddingCache
from harness.engine.encoding import BatchEncoder
from harness.engine.results import write_json_atomic
from harness.engine.shard_store import key_bytes
from harness.tasks.demo.build import ITEM_FEATURES, QREL_FEATURES
from tests.dataset_fixtures import (
    fake_meta,
    item_row,
    png_bytes,
    retrieval_task_yaml,
    write_hub_dataset,
)

ROOT = Path(__file__).resolve().parent.parent


def own_vector(item: dict[str, Any]) -> np.ndarray:
    """A fixed pseudo-random vector per item content."""
    content = item["text"].encode() if "text" in item else np.asarray(item["image"]).tobytes()
    seed = int.from_bytes(hashlib.sha256(content).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(16).astype(np.float32)


class NeighbourAdapter:
    """A model whose vectors depend on the batch: each item's own vector plus the batch mean.

    Real models do this too (padding, batch-dependent kernels), by about 1e-7; here the pull is
    large, so any change of an item's neighbours shows in the scores. Texts holding ``nan``,
    ``zero`` or ``flat`` get a NaN, an all-zero or a constant vector.
    """

    def __init__(self) -> None:
        self.meta = fake_meta("neighbours", embed_dim=16, modalities=("text", "image"))
        self.batches: list[list[str]] = []

    def encode(
        self, items: Sequence[dict[str, Any]], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        self.batches.append([item.get("text", "<image>") for item in items])
        own = np.stack([own_vector(item) for item in items])
        vectors = own + own.mean(axis=0)
        for row, item in enumerate(items):
            text = item.get("text", "")
            if "nan" in text:
                vectors[row, 3] = np.nan
            elif "zero" in text:
                vectors[row] = 0.0
            elif "flat" in text:
                vectors[row] = 0.25
        return vectors


def texts(n: int) -> list[RawItem]:
    """Texts of several lengths, so that sorting by length interleaves them."""
    return [RawItem.of(f"t{i}", text=f"caption {i}" + " more" * (i % 4)) for i in range(n)]


def questions(ids: Sequence[int]) -> dict[int, str]:
    """Query texts of several lengths, by query number."""
    return {i: f"question {i}" + " why" * (i % 3) for i in ids}


def retrieval_data(root: Path, queries: dict[int, str], corpus: Sequence[dict[str, Any]]) -> Path:
    """A retrieval dataset of text queries: query i is relevant to document ``d{i}``, or to the
    first document when there is no ``d{i}``."""
    ids = {row["id"] for row in corpus}
    relevant = {i: f"d{i}" if f"d{i}" in ids else corpus[0]["id"] for i in queries}
    parts = {
        "corpus": (corpus, ITEM_FEATURES),
        "queries": ([item_row(f"q{i}", text=text) for i, text in queries.items()], ITEM_FEATURES),
        "qrels": (
            [{"query-id": f"q{i}", "corpus-id": d, "score": 1} for i, d in relevant.items()],
            QREL_FEATURES,
        ),
    }
    return write_hub_dataset(root, parts)


def passages(ids: Sequence[int]) -> list[dict[str, Any]]:
    """Text documents of several lengths."""
    return [item_row(f"d{i}", text=f"passage {i}" + " text" * (i % 5)) for i in ids]


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two custom t2t tasks; the second's corpus holds half of the first's documents, which
    sorting interleaves with new ones."""
    root = tmp_path_factory.mktemp("trust-engine-tasks")
    first = retrieval_data(root / "first", questions(range(20)), passages(range(20)))
    second = retrieval_data(root / "second", questions(range(20, 40)), passages(range(10, 40)))
    files = [
        retrieval_task_yaml(root / "A.yaml", "EngineFirst", first, "t2t"),
        retrieval_task_yaml(root / "B.yaml", "EngineSecond", second, "t2t"),
    ]
    return ",".join(str(path) for path in files)


def run_args(workdir: Path, tasks: str, *, batch_size: int = 4, workers: int = 0) -> list[str]:
    """``harness run`` of the neighbour model into ``workdir``."""
    folders = ["--output", str(workdir / "out"), "--cache-dir", str(workdir / "cache")]
    settings = ["--batch-size", str(batch_size), "--num-workers", str(workers), "--quiet"]
    return ["run", "--model", "neighbours", "--tasks", tasks, *folders, *settings]


@contextmanager
def neighbour_model() -> Iterator[NeighbourAdapter]:
    """``harness run --model neighbours`` loads the neighbour model, in this process."""
    adapter = NeighbourAdapter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(harness.app.runner, "load_adapter", lambda *args, **kwargs: adapter)
        yield adapter


def comparable(workdir: Path) -> dict[str, str]:
    """Each file written under ``workdir / "out"``, less what differs from run to run (dates,
    timings, encoding counts), as canonical JSON text."""
    found = {}
    for path in sorted((workdir / "out").rglob("*")):
        if path.is_file():
            payload = json.loads(path.read_text())
            for volatile in ("date", "evaluation_time"):
                payload.pop(volatile, None)
            payload.get("harness", {}).pop("encoding", None)
            payload.get("harness", {}).pop("phases", None)
            found[str(path.relative_to(workdir))] = json.dumps(payload, sort_keys=True)
    return found


@pytest.fixture(scope="module")
def reference(two_tasks: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The files of an uninterrupted run."""
    workdir = tmp_path_factory.mktemp("reference")
    with neighbour_model():
        assert main(run_args(workdir, two_tasks)) == 0
    return comparable(workdir)


# Runs `harness run` with the neighbour model, and SIGKILLs itself at the chosen call of the
# chosen function (before it runs, or once it returned).
KILLED_RUN = """
import importlib, os, signal, sys
import harness.app.runner
from harness.app.cli import main
from tests.test_trust_engine import NeighbourAdapter

module, name, at, when = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
owner = importlib.import_module(module)
original = getattr(owner, name)
calls = []

def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == at and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    if len(calls) == at:
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, name, dying)
harness.app.runner.load_adapter = lambda *args, **kwargs: NeighbourAdapter()
sys.exit(main(sys.argv[5:]))
"""

# Where to die: (module, function, at its n-th call, before it runs or after it returned), and
# whether the resumed run has batches left to encode. The first task has 40 entries (20 queries,
# 20 documents) in batches of 4; the second one 50, 10 of them the first task's documents.
KILL_POINTS = {
    # Once a batch's vectors are on disk, before the cache's index points at them.
    "mid-encoding, between a batch's writes": (
        "harness.engine.shard_store",
        "write_durably",
        2,
        "after",
        True,
    ),
    "mid-encoding of the second task": (
        "harness.engine.shard_store",
        "write_durably",
        12,
        "after",
        True,
    ),
    "between tasks": ("harness.app.runner", "write_result", 1, "after", True),
    "mid-scoring": ("harness.app.runner", "bootstrap_interval", 2, "before", False),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_resume_after_kill_9_writes_the_same_files(
    point: str, two_tasks: str, reference: dict[str, str], tmp_path: Path
) -> None:
    *where, encodes = KILL_POINTS[point]
    command = [sys.executable, "-c", KILLED_RUN, *map(str, where), *run_args(tmp_path, two_tasks)]
    killed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    with neighbour_model() as adapter:
        assert main(run_args(tmp_path, two_tasks)) == 0
    assert bool(adapter.batches) == encodes
    assert comparable(tmp_path) == reference


def test_a_batch_is_planned_from_all_items_and_encoded_whole(tmp_path: Path) -> None:
    """A batch with one entry lost is encoded again with the same neighbours; cached items
    keep their vectors, and wholly cached batches never reach the model."""
    items = texts(10)
    adapter = NeighbourAdapter()
    first = BatchEncoder(adapter, cache=EmbeddingCache(tmp_path), batch_size=4, show_progress=False)
    vectors = first.encode(items).vectors
    planned = adapter.batches
    keys = first._keys(items, None, None)
    texts_in_order = [item.parts["text"] for item in items]
    lost = keys[texts_in_order.index(planned[1][2])]  # third item of batch 2
    _forget(tmp_path, lost)

    again_adapter = NeighbourAdapter()
    again = BatchEncoder(
        again_adapter, cache=EmbeddingCache(tmp_path), batch_size=4, show_progress=False
    )
    np.testing.assert_array_equal(again.encode(items).vectors, vectors)
    assert again_adapter.batches == [planned[1]]
    assert again.stats.cache_hits == 9 and again.stats.items_encoded == 4


def test_non_finite_vectors_are_an_error_and_never_cached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = {**questions(range(6)), 2: "is it nan", 4: "nan again"}
    data = retrieval_data(tmp_path / "data", queries, passages(range(6)))
    task = retrieval_task_yaml(tmp_path / "nan.yaml", "NanTask", data, "t2t")
    with neighbour_model():
        code = main(run_args(tmp_path, str(task)))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    for words in (
        "NanTask",
        "'neighbours'",
        "NaN or infinite",
        "2 of the",
        "nothing of that batch was cached",
    ):
        assert words in err
    shards = (tmp_path / "cache").rglob("*.f32")  # every float the cache ever wrote
    assert all(np.isfinite(np.fromfile(path, np.float32)).all() for path in shards)
    assert not list((tmp_path / "out").rglob("NanTask.json"))


def test_zero_and_constant_vectors_warn_in_the_summary_and_flag_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = {**questions(range(6)), 0: "zero one", 1: "zero two", 2: "flat one"}
    data = retrieval_data(tmp_path / "data", queries, passages(range(6)))
    task = retrieval_task_yaml(tmp_path / "flat.yaml", "FlatTask", data, "t2t")
    with neighbour_model():
        assert main(run_args(tmp_path, str(task))) == 0
    out = capsys.readouterr().out
    [path] = (tmp_path / "out").rglob("FlatTask.json")
    result = json.loads(path.read_text())
    assert result["harness"]["encoding"]["zero_vectors"] == 2
    assert result["harness"]["encoding"]["constant_vectors"] == 1
    [warning] = result["harness"]["warnings"]
    assert "2 all-zero and 1 constant vector(s)" in warning
    assert f"FlatTask: {warning}" in out.split("warnings:")[1]
    # A rerun that finds the result still shows its warning.
    with neighbour_model():
        assert main(run_args(tmp_path, str(task))) == 0
    assert warning in capsys.readouterr().out


def _forget(cache_root: Path, key: str) -> None:
    """Drop ``key`` from the embedding store's index, as if it had never been written."""
    db = sqlite3.connect(cache_root / STORE_FOLDER / "index.sqlite")
    with db:
        db.execute("DELETE FROM entries WHERE key = ?", (key_bytes(key),))
    db.close()


def _corrupt(path: Path, kind: str, good: np.ndarray) -> None:
    """Damage one cache entry the way a crash, a bug or a full disk would."""
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    elif kind == "other width":
        np.save(path, good[:5])
    elif kind == "other ndim":
        np.save(path, good[None, :])
    elif kind == "float64":
        np.save(path, good.astype(np.float64))
    elif kind == "nan":
        np.save(path, np.where(np.arange(len(good)) == 2, np.nan, good).astype(np.float32))
    else:
        np.save(path, np.full_like(good, np.inf))


@pytest.mark.parametrize(
    "kind", ["empty", "truncated", "other width", "other ndim", "float64", "nan", "inf"]
)
def test_a_bad_cache_entry_is_a_miss_encoded_again_and_overwritten(
    kind: str, tmp_path: Path
) -> None:
    items = texts(6)
    first = BatchEncoder(
        NeighbourAdapter(), cache=EmbeddingCache(tmp_path), batch_size=3, show_progress=False
    )
    vectors = first.encode(items).vectors
    key = first._keys(items, None, None)[4]
    _forget(tmp_path, key)  # the entry is left only in a cache from before the shard store
    path = EmbeddingCache(tmp_path).old_path(key)
    path.parent.mkdir(parents=True)
    np.save(path, vectors[4])
    _corrupt(path, kind, vectors[4])

    adapter = NeighbourAdapter()
    again = BatchEncoder(adapter, cache=EmbeddingCache(tmp_path), batch_size=3, show_progress=False)
    np.testing.assert_array_equal(again.encode(items).vectors, vectors)
    assert len(adapter.batches) == 1 and again.stats.cache_hits == 5
    np.testing.assert_array_equal(EmbeddingCache(tmp_path).get_many([key])[key], vectors[4])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("where", ["write", "folder"])
def test_a_cache_that_cannot_be_written_warns_once_and_the_run_goes_on(
    code: int,
    where: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code))

    if where == "write":
        monkeypatch.setattr(harness.engine.shard_store.os, "pwrite", refuse)
        cache = EmbeddingCache(tmp_path)
    else:
        monkeypatch.setattr(Path, "mkdir", refuse)
        cache = EmbeddingCache(tmp_path)
        monkeypatch.undo()
    adapter = NeighbourAdapter()
    encoded = BatchEncoder(adapter, cache=cache, batch_size=2, show_progress=False).encode(texts(7))
    reference = BatchEncoder(NeighbourAdapter(), batch_size=2, show_progress=False).encode(texts(7))
    np.testing.assert_array_equal(encoded.vectors, reference.vectors)
    err = capsys.readouterr().err
    assert err.count("harness: warning: cannot write the embedding cache") == 1
    assert os.strerror(code) in err and "going on without caching" in err
    assert len(adapter.batches) == 4 and len(cache) == 0


def test_each_write_is_flushed_to_disk_before_its_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(
        harness.engine.atomic.os, "fsync", lambda fd: (events.append("fsync"), fsync(fd))[1]
    )
    monkeypatch.setattr(
        harness.engine.atomic.os,
        "replace",
        lambda a, b: (events.append(Path(b).suffix), replace(a, b))[1],
    )
    EmbeddingCache(tmp_path).put_many(
        {"a" * 64: np.ones(3, np.float32), "b" * 64: np.ones(3, np.float32)}
    )
    write_json_atomic(tmp_path / "r.json", {"x": 1})
    # The cache flushes its batch's bytes once, and renames nothing (its index commits after).
    assert events == ["fsync", "fsync", ".json"]


def test_a_full_disk_raises_naming_the_path_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "Task.json"
    write_json_atomic(path, {"score": 1})
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(harness.engine.atomic.os, "fsync", full)
    with pytest.raises(HarnessError, match=rf"{path}.*No space left on device"):
        write_json_atomic(path, {"score": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["Task.json"]


def test_a_full_results_disk_exits_2_and_keeps_the_finished_files(
    two_tasks: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = harness.engine.results.write_atomic

    def full_for_second(path: Path, data: bytes) -> None:
        if path.name == "EngineSecond.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(harness.engine.results, "write_atomic", full_for_second)
    with neighbour_model():
        code = main(run_args(tmp_path, two_tasks))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "EngineSecond.json: No space left on device" in err
    [first] = (tmp_path / "out").rglob("EngineFirst.json")
    assert json.loads(first.read_text())["task_name"] == "EngineFirst"
    assert not list((tmp_path / "out").rglob("EngineSecond.json"))
    assert not list((tmp_path / "out").rglob("*.tmp"))


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(umask: int, mode: int, tmp_path: Path) -> None:
    previous = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "r.json", {"x": 1})
        cache = EmbeddingCache(tmp_path / "cache")
        cache.put_many({"c" * 64: np.ones(3, np.float32)})
    finally:
        os.umask(previous)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == mode
    [entry] = (tmp_path / "cache").rglob("*.f32")
    assert entry.stat().st_mode & 0o777 == mode


# Runs `harness run` with a model that never returns from images: the DataLoader workers stay.
STUCK_RUN = """
import sys, time
import harness.app.runner
from harness.app.cli import main
from tests.test_trust_engine import NeighbourAdapter

class Stuck(NeighbourAdapter):
    def encode(self, items, **kwargs):
        if any("image" in item for item in items):
            time.sleep(600)
        return super().encode(items, **kwargs)

harness.app.runner.load_adapter = lambda *args, **kwargs: Stuck()
sys.exit(main(sys.argv[1:]))
"""


def children(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is ``pid``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: Callable[[], Any], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; prctl is Linux's")
def test_dataloader_workers_die_with_a_killed_run(tmp_path: Path) -> None:
    # Large images: the decoded batches fill the workers' pipe, where an orphan blocks for good.
    corpus = [
        item_row(f"d{i}", image=png_bytes((15 * i, 100, 200), size=256, seed=i)) for i in range(16)
    ]
    data = retrieval_data(tmp_path / "data", questions(range(4)), corpus)
    task = retrieval_task_yaml(tmp_path / "images.yaml", "EngineImages", data, "t2i")
    args = run_args(tmp_path, str(task), batch_size=2, workers=2)
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_RUN, *args], cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        workers = wait_for(lambda: len(children(process.pid)) == 2 and children(process.pid), 60)
        assert len(workers) == 2, "the run never started its 2 workers"
        time.sleep(1.0)  # let them fill their queues
    finally:
        process.kill()
        process.wait(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in workers), 3.0)
    survivors = [pid for pid in workers if alive(pid)]
    for pid in survivors:  # an orphan must not outlive the test either
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "DataLoader workers outlived their killed run"


class TokenAdapter:
    """A multi-vector model: two token vectors per item, degenerate as its text says."""

    meta = fake_meta("tokens", similarity="maxsim", modalities=("text",))

    def encode(self, items: Sequence[dict[str, Any]], **kwargs: Any) -> list[np.ndarray]:
        outputs = []
        for item in items:
            tokens = np.stack([own_vector(item), own_vector(item)[::-1]])
            if "zero" in item["text"]:
                tokens[:] = 0.0
            elif "flat" in item["text"]:
                tokens[0], tokens[1] = 0.5, 0.0  # one constant token, one zero token
            elif "nan" in item["text"]:
                tokens[1, 0] = np.inf
            outputs.append(tokens)
        return outputs


def test_multi_vector_items_are_checked_token_by_token() -> None:
    words = ["zero", "flat", "fine", "ok"]
    items = [RawItem.of(f"t{i}", text=text) for i, text in enumerate(words)]
    encoder = BatchEncoder(TokenAdapter(), show_progress=False)
    encoder.encode(items)
    assert (encoder.stats.zero_vectors, encoder.stats.constant_vectors) == (1, 1)
    with pytest.raises(HarnessError, match=r"'tokens' returned NaN or infinite values for 1 of"):
        encoder.encode([*items, RawItem.of("bad", text="nan")], task="Tokens")
