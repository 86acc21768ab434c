"""The encoding road: workers, batching, de-duplication and the cache around a real tiny CLIP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.core.errors import BadInputError
from harness.core.image import EncodedImage
from harness.core.items import RawItem
from harness.engine.cache import EmbeddingCache
from harness.engine.encoding import BatchEncoder
from harness.model_adapters.registry import load_adapter
from tests.dataset_fixtures import COLOURS, RGB, png_bytes


@pytest.fixture(scope="module")
def adapter(tiny_clip_dir: Path):
    return load_adapter(str(tiny_clip_dir))


def mixed_items() -> list[RawItem]:
    images = [
        RawItem.of(f"i{n}", image=EncodedImage(png_bytes(RGB[c], seed=n)))
        for n, c in enumerate(COLOURS)
    ]
    texts = [RawItem.of(f"t{n}", text=f"a {c} square" + " big" * n) for n, c in enumerate(COLOURS)]
    both = [RawItem.of("b0", text="red", image=EncodedImage(png_bytes(RGB["red"])))]
    return [*images, *texts, *both]


def test_workers_and_batch_size_do_not_change_vectors(adapter, tmp_path: Path) -> None:
    items = mixed_items()
    reference = BatchEncoder(adapter, batch_size=len(items), show_progress=False).encode(items)
    for workers, batch in ((2, 3), (0, 1)):
        encoder = BatchEncoder(adapter, num_workers=workers, batch_size=batch, show_progress=False)
        np.testing.assert_allclose(encoder.encode(items).vectors, reference.vectors, atol=1e-5)
    assert reference.vectors.shape == (len(items), adapter.meta.embed_dim)
    assert reference.vectors.dtype == np.float32


def test_cache_hit_never_calls_the_model(adapter, tmp_path: Path) -> None:
    items = mixed_items()
    first = BatchEncoder(adapter, cache=EmbeddingCache(tmp_path), batch_size=4, show_progress=False)
    vectors = first.encode(items, role="query").vectors
    again = BatchEncoder(adapter, cache=EmbeddingCache(tmp_path), batch_size=4, show_progress=False)
    # CLIP treats queries and documents alike, so the document role hits the same entries.
    np.testing.assert_array_equal(again.encode(items, role="document").vectors, vectors)
    assert again.stats.model_calls == 0 and again.stats.cache_hits == len(items)
    assert again.stats.parts_decoded == 0


def test_duplicate_items_are_encoded_once(adapter) -> None:
    item = RawItem.of("x", text="a red circle")
    encoder = BatchEncoder(adapter, show_progress=False)
    encoded = encoder.encode([item, RawItem.of("y", text="a red circle"), item])
    assert encoder.stats.items_encoded == 1
    np.testing.assert_array_equal(encoded.vectors[0], encoded.vectors[2])


def test_bad_image_raises_or_is_skipped(adapter) -> None:
    items = [RawItem.of("ok", text="blue"), RawItem.of("bad-one", image=EncodedImage(b"garbage"))]
    with pytest.raises(BadInputError, match=r"bad-one.*MyTask|MyTask.*bad-one"):
        BatchEncoder(adapter, show_progress=False).encode(items, task="MyTask")
    encoded = BatchEncoder(adapter, skip_bad_inputs=True, show_progress=False).encode(
        items, task="MyTask"
    )
    assert encoded.kept.tolist() == [True, False] and encoded.skipped == ("bad-one",)
