"""The content-addressed embedding cache: keys, crash safety, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.core.image import EncodedImage
from harness.core.items import RawItem
from harness.engine.cache import EmbeddingCache, cache_key


def test_round_trip(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    vectors = {f"{i:064x}": np.arange(4, dtype=np.float32) + i for i in range(5)}
    cache.put_many(vectors)
    found = cache.get_many([*vectors, "f" * 64])
    assert set(found) == set(vectors)
    for key, vector in vectors.items():
        np.testing.assert_array_equal(found[key], vector)
    assert len(cache) == 5


# Keys computed before the modality registry existed (issue 14): text, image and image+text
# items must keep them, or every cache built so far is silently lost.
GOLDEN_KEYS = {
    "text": "91eb949c9a2338d6ef33557f8d8b13a2728032b2ac2bceaf3a6d25ea7dcf5209",
    "image": "77365195e6199d2b73da4c8257bfb5b08574bedce15e1dafbd4a1d3a396baec3",
    "image+text": "2301a743700356a42a0928b393b17847a7fff7b3ee1593a6cd9a9a93b9dc666b",
    "in-memory image": "25b36ed0a555cad24c3a31dc9b958c938065fcc7efb470213bcef41a16f48d8e",
    "image file": "aee6192f6e11753f1c9a363403f85feb56af4f742d0cf204eab2926fe7dbf111",
    "read cells": "fc647c848d369672c637a62f3dfdf27923cecf81e521559937d86f73399d89b8",
}


def test_keys_of_text_and_image_items_never_change(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"stored-on-disk")
    stored = EncodedImage(data=b"\x89PNG-not-really")
    items = {
        "text": RawItem.of("a", text="héllo wörld"),
        "image": RawItem.of("b", image=stored),
        "image+text": RawItem.of("c", text="a caption", image=stored),
        "in-memory image": RawItem.of("d", image=Image.new("RGB", (2, 3), (1, 2, 3))),
        "image file": RawItem.of("e", image=EncodedImage(path=str(tmp_path / "x.png"))),
        "read cells": RawItem.read(
            "f", {"text": ("q", "t"), "image": ("img", {"bytes": b"xyz", "path": None})}
        ),
    }
    keys = {
        name: cache_key("fp", "query", "inst", item.modality, item.content_digest())
        for name, item in items.items()
    }
    assert keys == GOLDEN_KEYS
    assert items["image+text"].modality == "image,text"


def test_key_depends_on_every_field() -> None:
    base = ("fp", "query", "instr", "text", "digest")
    keys = {cache_key(*base)}
    for position in range(len(base)):
        changed = list(base)
        changed[position] = changed[position] + "x"
        keys.add(cache_key(*changed))
    assert len(keys) == len(base) + 1


def test_image_key_uses_stored_bytes_without_decoding() -> None:
    undecodable = RawItem.of("a", image=EncodedImage(data=b"not an image at all"))
    assert len(undecodable.content_digest()) == 64  # hashing never decodes
    same = RawItem.of("b", image=EncodedImage(data=b"not an image at all"))
    other = RawItem.of("c", image=EncodedImage(data=b"other bytes"))
    assert undecodable.content_digest() == same.content_digest() != other.content_digest()


def test_crash_mid_write_leaves_cache_consistent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = EmbeddingCache(tmp_path)
    good = "a" * 64
    cache.put_many({good: np.ones(3, np.float32)})

    def dies(fd: int) -> None:  # the bytes are written, then the process dies before fsync
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", dies)
    with pytest.raises(KeyboardInterrupt):
        cache.put_many({"b" * 64: np.ones(3, np.float32)})
    monkeypatch.undo()
    assert set(EmbeddingCache(tmp_path).get_many([good, "b" * 64])) == {good}


def test_unreadable_old_format_entry_is_a_miss(tmp_path: Path) -> None:
    key = "c" * 64
    path = EmbeddingCache(tmp_path).old_path(key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    assert EmbeddingCache(tmp_path).get_many([key]) == {}


def _own_key(worker: int, i: int) -> str:
    """A key only ``worker`` writes; its "ff" prefix keeps it apart from the shared keys."""
    return f"ff{worker:02x}{i:060x}"


def _writer(root: str, worker: int) -> None:
    cache = EmbeddingCache(root)
    for i in range(60):
        key = f"{i:064x}"  # every worker writes the same keys: maximal contention
        cache.put_many({key: np.full(8, i, np.float32)})
        cache.put_many({_own_key(worker, i): np.full(8, worker, np.float32)})


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(tmp_path), w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    cache = EmbeddingCache(tmp_path)
    shared = cache.get_many(f"{i:064x}" for i in range(60))
    assert len(shared) == 60
    assert all(np.all(vector == i) for i, vector in enumerate(shared.values()))
    own = cache.get_many(_own_key(w, i) for w in range(4) for i in range(60))
    assert len(own) == 240
