"""The in-memory vector store: a run without an embedding cache still encodes each input that
its tasks share once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.app.runner import RunSettings, run
from harness.engine.encoding import BatchEncoder
from harness.engine.memory_store import MemoryStore
from tests.dataset_fixtures import colour_retrieval, fake_meta, retrieval_task_yaml


def vector(value: float, size: int = 4) -> np.ndarray:
    return np.full(size, value, dtype=np.float32)


def test_store_serves_what_it_holds_by_key_and_dimensions() -> None:
    store = MemoryStore()
    store.put_many({"a": vector(1.0), "b": np.ones((3, 4), np.float32)})
    assert set(store.get_many(["a", "b", "c"])) == {"a"}
    assert set(store.get_many(["a", "b"], ndim=2)) == {"b"}
    np.testing.assert_array_equal(store.get_many(["a"])["a"], vector(1.0))
    assert store.nbytes == 16 + 48 and len(store) == 2


def test_stored_vectors_are_copies_that_no_task_can_change() -> None:
    store = MemoryStore()
    given = vector(1.0)
    store.put_many({"a": given})
    given[0] = 5.0
    served = store.get_many(["a"])["a"]
    assert served[0] == 1.0
    with pytest.raises(ValueError):
        served[0] = 2.0


def test_store_drops_the_least_recently_used_past_its_bound() -> None:
    store = MemoryStore(max_bytes=32)  # two 4-float vectors
    store.put_many({"a": vector(1.0), "b": vector(2.0)})
    store.get_many(["a"])  # b is now the least recently used
    store.put_many({"c": vector(3.0)})
    assert set(store.get_many(["a", "b", "c"])) == {"a", "c"}
    assert store.nbytes == 32
    store.put_many({"a": vector(4.0)})  # replacing an entry counts its bytes once
    assert store.nbytes == 32 and store.get_many(["a"])["a"][0] == 4.0


class CountingAdapter:
    """A fake dense adapter that counts each text it encodes."""

    def __init__(self) -> None:
        self.meta = fake_meta("counting", embed_dim=4)
        self.seen: list[str] = []

    def encode(self, items: Any, *, role: Any = None, instruction: Any = None) -> np.ndarray:
        self.seen += [item["text"] for item in items]
        return np.stack([vector(float(len(item["text"]))) for item in items])


def test_an_encoder_without_a_cache_encodes_a_repeated_input_once() -> None:
    from harness.core.items import RawItem

    adapter = CountingAdapter()
    encoder = BatchEncoder(adapter, batch_size=2, show_progress=False)
    items = [RawItem.of(f"t{i}", text=f"text {i}") for i in range(4)]
    first = encoder.encode(items)
    second = encoder.encode(items[::-1])
    assert sorted(adapter.seen) == sorted(f"text {i}" for i in range(4))
    assert encoder.stats.cache_hits == 4 and encoder.stats.model_calls == 2
    np.testing.assert_array_equal(first.vectors[::-1], second.vectors)


@pytest.fixture(scope="module")
def colour_tasks(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """T2I, I2T and I2I colour retrieval: I2I's queries are I2T's, its corpus T2I's."""
    root = tmp_path_factory.mktemp("shared-tasks")
    files = []
    for category in ("t2i", "i2t", "i2i"):
        name = f"Colour{category.upper()}Retrieval"
        data = colour_retrieval(root / name, category)
        files.append(str(retrieval_task_yaml(root / f"{name}.yaml", name, data, category)))
    return files


def items_encoded(tiny_clip_dir: Path, tasks: list[str], tmp_path: Path, **settings: Any) -> int:
    report = run(
        str(tiny_clip_dir),
        tasks,
        RunSettings(output=tmp_path, batch_size=3, num_workers=0, show_progress=False, **settings),
    )
    assert report.encoder is not None
    return report.encoder.stats.items_encoded


def test_no_cache_run_shares_inputs_between_tasks_as_a_cached_one_does(
    tiny_clip_dir: Path, colour_tasks: list[str], tmp_path: Path
) -> None:
    shared = items_encoded(tiny_clip_dir, colour_tasks, tmp_path / "none", cache_dir=None)
    cached = items_encoded(
        tiny_clip_dir, colour_tasks, tmp_path / "cached", cache_dir=tmp_path / "cache"
    )
    alone = sum(
        items_encoded(tiny_clip_dir, [task], tmp_path / f"alone{i}", cache_dir=None)
        for i, task in enumerate(colour_tasks)
    )
    assert shared == cached < alone
    [i2i] = (tmp_path / "none").rglob("ColourI2IRetrieval.json")
    # Every input of I2I was encoded by the two tasks before it.
    assert json.loads(i2i.read_text())["harness"]["encoding"]["model_calls"] == 0
