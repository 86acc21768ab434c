"""Speed engine: batch halving on device out-of-memory (recorded in the result file), worker
settings, and CUDA-style autocast in the CLIP adapter (exercised on the CPU)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness.app.runner import RunSettings, run
from harness.core.adapter import Role
from harness.core.errors import HarnessError
from harness.core.image import EncodedImage
from harness.core.items import RawItem
from harness.engine.encoding import BatchEncoder
from harness.model_adapters.registry import load_adapter
from tests.dataset_fixtures import COLOURS, RGB, fake_meta, png_bytes


def item_vector(item: dict[str, Any]) -> np.ndarray:
    """A fixed vector per item content, whatever the batch it arrives in."""
    content = item.get("text") or np.asarray(item["image"]).tobytes()
    digest = hashlib.sha256(content if isinstance(content, bytes) else content.encode()).digest()
    return np.frombuffer(digest, dtype=np.uint8)[:8].astype(np.float32) + 1.0


class SmallMemoryAdapter:
    """Raises CUDA's out-of-memory error for any batch larger than ``capacity`` items."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.batch_sizes: list[int] = []
        self.meta = fake_meta("small-memory", embed_dim=8)

    def encode(
        self, items: Sequence[dict[str, Any]], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        self.batch_sizes.append(len(items))
        if len(items) > self.capacity:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory ({len(items)} items)")
        return np.stack([item_vector(item) for item in items])


def texts(n: int) -> list[RawItem]:
    return [RawItem.of(f"t{i}", text=f"caption number {i}" + " long" * (i % 5)) for i in range(n)]


def test_out_of_memory_halves_the_batch_and_keeps_every_vector() -> None:
    items = texts(40)
    adapter = SmallMemoryAdapter(capacity=5)
    encoder = BatchEncoder(adapter, batch_size=16, show_progress=False)
    before = encoder.stats.since(type(encoder.stats)())
    assert before["batch_size"] == 16 and before["oom_halvings"] == 0

    encoded = encoder.encode(items)

    expected = np.stack([item_vector(dict(item.parts)) for item in items])
    np.testing.assert_array_equal(encoded.vectors, expected)
    assert encoder.stats.oom_halvings == 2  # 16 -> 8 -> 4
    assert encoder.stats.batch_size == 4
    successful = [size for size in adapter.batch_sizes if size <= adapter.capacity]
    assert sum(successful) == len(items)
    # Once halved, later batches start at the smaller size: only the first batch failed.
    assert [size for size in adapter.batch_sizes if size > adapter.capacity] == [16, 8]


def test_out_of_memory_on_a_single_item_is_a_clear_error() -> None:
    encoder = BatchEncoder(SmallMemoryAdapter(capacity=0), batch_size=4, show_progress=False)
    with pytest.raises(HarnessError, match="ran out of memory encoding a single item"):
        encoder.encode(texts(3))


def test_other_errors_are_not_taken_for_out_of_memory() -> None:
    class Broken(SmallMemoryAdapter):
        def encode(self, items: Sequence[dict[str, Any]], **kwargs: Any) -> np.ndarray:
            raise RuntimeError("shape mismatch")

    encoder = BatchEncoder(Broken(capacity=100), batch_size=8, show_progress=False)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        encoder.encode(texts(3))
    assert encoder.stats.oom_halvings == 0


def test_halving_is_recorded_in_the_result_file(tmp_path: Path) -> None:
    adapter = SmallMemoryAdapter(capacity=40)
    settings = RunSettings(
        output=tmp_path / "results",
        batch_size=128,
        num_workers=0,
        cache_dir=None,
        show_progress=False,
    )
    report = run(adapter, ["DemoShapesZeroShot"], settings)
    [outcome] = report.outcomes
    encoding = json.loads(outcome.path.read_text())["harness"]["encoding"]
    assert encoding["oom_halvings"] == 2  # 128 -> 64 -> 32
    assert encoding["batch_size"] == 32
    assert encoding["items_encoded"] == 250 + 10  # test images and label prompts


def test_workers_prefetch_and_decoding_counts(tiny_clip_dir: Path) -> None:
    """Images are decoded in workers (with prefetch) once each; vectors do not change."""
    adapter = load_adapter(str(tiny_clip_dir))
    items = [
        RawItem.of(f"i{n}", image=EncodedImage(png_bytes(RGB[c], seed=n)))
        for n, c in enumerate(COLOURS)
    ]
    plain = BatchEncoder(adapter, batch_size=3, show_progress=False).encode(items).vectors
    encoder = BatchEncoder(
        adapter, batch_size=3, num_workers=2, prefetch_factor=4, show_progress=False
    )
    np.testing.assert_allclose(
        encoder.encode(items + items).vectors[: len(items)], plain, atol=1e-6
    )
    assert encoder.stats.parts_decoded == len(items)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_clip_autocast_returns_float32_close_to_full_precision(
    tiny_clip_dir: Path, dtype: str
) -> None:
    full = load_adapter(str(tiny_clip_dir))
    mixed = load_adapter(str(tiny_clip_dir), options={"autocast": dtype})
    assert mixed.meta.options["autocast"] == dtype
    assert mixed.meta.fingerprint != full.meta.fingerprint  # never shares cache entries
    assert "autocast" not in full.meta.options
    items = [{"text": "a red square"}, {"text": "a blue circle left of a green cross"}]
    reference, vectors = full.encode(items), mixed.encode(items)
    assert vectors.dtype == np.float32
    assert not np.array_equal(vectors, reference)  # autocast really ran in low precision
    np.testing.assert_allclose(vectors, reference, atol=0.05, rtol=0.05)


def test_clip_autocast_rejects_unknown_dtypes(tiny_clip_dir: Path) -> None:
    with pytest.raises(HarnessError, match="option autocast"):
        load_adapter(str(tiny_clip_dir), options={"autocast": "int8"})


def test_clip_weights_load_on_first_use_and_a_warm_cache_never_loads_them(
    tiny_clip_dir: Path, tmp_path: Path
) -> None:
    from harness.engine.cache import EmbeddingCache
    from harness.model_adapters.torch_utils import n_parameters

    items = texts(5)
    cold = load_adapter(str(tiny_clip_dir))
    assert cold._model is None  # metadata alone needs no weights
    BatchEncoder(cold, cache=EmbeddingCache(tmp_path), show_progress=False).encode(items)
    assert cold._model is not None
    assert cold.meta.n_parameters == n_parameters(cold.model)  # from the safetensors headers

    warm = load_adapter(str(tiny_clip_dir))
    encoder = BatchEncoder(warm, cache=EmbeddingCache(tmp_path), show_progress=False)
    encoder.encode(items)
    assert encoder.stats.cache_hits == len(items)
    assert warm._model is None
    assert warm.meta.fingerprint == cold.meta.fingerprint
