"""Adapters and the model registry, on tiny random dual encoders and the packaged MiniLM."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

from harness.core.adapter import Adapter, Preprocessing
from harness.core.errors import BadInputError, HarnessError, UnknownNameError
from harness.model_adapters import load_adapter, registered_models
from harness.model_adapters.registry import directory_fingerprint

TEXTS = ["a cat sits on a mat", "two dogs running in the park", "a red car", "sky", "the sea"]


def _images() -> list[Image.Image]:
    """Five noisy RGB images of different sizes."""
    rng = np.random.default_rng(0)
    sizes = [(32, 32), (48, 40), (20, 36), (64, 64), (33, 17)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def _mixed_items() -> list[dict]:
    """Text-only, image-only and fused items."""
    images = _images()
    return [
        {"text": TEXTS[0]},
        {"image": images[1]},
        {"text": TEXTS[2], "image": images[2]},
        {"image": images[3]},
        {"text": TEXTS[4]},
    ]


@pytest.fixture(scope="module", params=["clip", "siglip"])
def tiny_dir(request: pytest.FixtureRequest) -> Path:
    """The directory of a tiny CLIP or SigLIP model."""
    return request.getfixturevalue(f"tiny_{request.param}_dir")


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> Adapter:
    """The tiny model loaded through the registry."""
    return load_adapter(str(tiny_dir))


@pytest.fixture(scope="module")
def minilm() -> Adapter:
    """The registered all-MiniLM-L6-v2."""
    return load_adapter("all-MiniLM-L6-v2")


def test_dual_encoder_meta_and_shapes(tiny: Adapter, tiny_dir: Path) -> None:
    meta = tiny.meta
    assert meta.family == "clip"
    assert meta.name == tiny_dir.name
    assert meta.revision == directory_fingerprint(tiny_dir)
    assert meta.modalities == ("image", "text", "video")
    assert meta.similarity == "cosine"
    assert not meta.uses_instructions and not meta.role_aware
    assert meta.n_parameters and meta.n_parameters > 0
    vectors = tiny.encode(_mixed_items())
    assert vectors.dtype == np.float32
    assert vectors.shape == (5, meta.embed_dim)
    assert np.isfinite(vectors).all()


def test_padding_policy_follows_the_model_family(tiny: Adapter, tiny_dir: Path) -> None:
    expected = "max_length" if "siglip" in tiny_dir.name else "longest"
    assert tiny.meta.options["padding"] == expected
    assert tiny.meta.options["max_length"] == 16


def test_batch_size_does_not_change_embeddings(tiny: Adapter) -> None:
    items = _mixed_items()
    together = tiny.encode(items)
    alone = np.concatenate([tiny.encode([item]) for item in items])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_preprocessed_items_encode_bit_for_bit_as_decoded_ones(tiny: Adapter) -> None:
    """The image processor runs in the workers (``preprocess``); encode takes its output, or
    decoded items, and gives the same vectors either way."""
    assert isinstance(tiny, Preprocessing)
    items = _mixed_items()
    preprocessed = [tiny.preprocess(item) for item in items]
    assert isinstance(preprocessed[1]["image"]["pixel_values"], np.ndarray)
    assert preprocessed[0] is items[0]  # a text-only item needs nothing
    assert all(tiny.preprocess(item) is item for item in preprocessed)  # idempotent
    np.testing.assert_array_equal(tiny.encode(preprocessed), tiny.encode(items))


def test_fused_item_is_the_raw_sum_by_default(tiny: Adapter) -> None:
    """mteb's CLIP and SigLIP wrappers add the raw text and image vectors."""
    assert tiny.meta.options["fusion"] == "sum"
    image = _images()[0]
    text_vector, image_vector, fused = tiny.encode(
        [{"text": TEXTS[1]}, {"image": image}, {"text": TEXTS[1], "image": image}]
    )
    np.testing.assert_allclose(fused, text_vector + image_vector, atol=1e-5)


def test_normalized_sum_fusion_option(tiny_dir: Path) -> None:
    adapter = load_adapter(str(tiny_dir), options={"fusion": "normalized_sum"})
    image = _images()[0]
    text_vector, image_vector, fused = adapter.encode(
        [{"text": TEXTS[1]}, {"image": image}, {"text": TEXTS[1], "image": image}]
    )
    expected = text_vector / np.linalg.norm(text_vector) + image_vector / np.linalg.norm(
        image_vector
    )
    np.testing.assert_allclose(fused, expected, atol=1e-5)


def test_embeddings_equal_a_direct_transformers_forward(tiny: Adapter, tiny_dir: Path) -> None:
    model = AutoModel.from_pretrained(tiny_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    processor = AutoImageProcessor.from_pretrained(tiny_dir)
    padding = "max_length" if model.config.model_type == "siglip" else True
    with torch.no_grad():
        text_inputs = tokenizer(TEXTS, padding=padding, truncation=True, return_tensors="pt")
        text_reference = model.get_text_features(**text_inputs).pooler_output.numpy()
        image_inputs = processor(images=_images(), return_tensors="pt")
        image_reference = model.get_image_features(**image_inputs).pooler_output.numpy()
    np.testing.assert_allclose(
        tiny.encode([{"text": text} for text in TEXTS]), text_reference, atol=1e-5
    )
    np.testing.assert_allclose(
        tiny.encode([{"image": image} for image in _images()]), image_reference, atol=1e-5
    )


def test_bfloat16_runs_on_cpu(tiny: Adapter, tiny_dir: Path) -> None:
    adapter = load_adapter(str(tiny_dir), dtype="bfloat16")
    assert adapter.meta.dtype == "bfloat16"
    low = adapter.encode(_mixed_items())
    full = tiny.encode(_mixed_items())
    assert low.dtype == np.float32
    cosine = (low * full).sum(1) / np.linalg.norm(low, axis=1) / np.linalg.norm(full, axis=1)
    assert cosine.min() > 0.98


@pytest.mark.parametrize(
    "change",
    [
        {"revision": "other-revision"},
        {"dtype": "bfloat16"},
        {"options": {"fusion": "normalized_sum"}},
        {"options": {"max_length": 8}},
    ],
    ids=["revision", "dtype", "fusion", "max_length"],
)
def test_fingerprint_changes_with_settings(tiny: Adapter, tiny_dir: Path, change: dict) -> None:
    changed = load_adapter(str(tiny_dir), **change)
    assert changed.meta.fingerprint != tiny.meta.fingerprint
    assert load_adapter(str(tiny_dir)).meta.fingerprint == tiny.meta.fingerprint


def test_local_revision_follows_the_weights(tiny_clip_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_clip_dir, tmp_path / tiny_clip_dir.name))
    assert load_adapter(str(copy)).meta.revision == directory_fingerprint(tiny_clip_dir)
    weights = load_file(copy / "model.safetensors")
    weights["logit_scale"] = weights["logit_scale"] + 1
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    assert load_adapter(str(copy)).meta.revision != directory_fingerprint(tiny_clip_dir)


def test_unknown_option_is_refused(tiny_clip_dir: Path) -> None:
    with pytest.raises(HarnessError, match="unknown option"):
        load_adapter(str(tiny_clip_dir), options={"pooling": "mean"})


def test_empty_batch(tiny: Adapter, minilm: Adapter) -> None:
    assert tiny.encode([]).shape == (0, tiny.meta.embed_dim)
    assert minilm.encode([]).shape == (0, 384)


def test_item_without_content_is_refused(tiny: Adapter) -> None:
    with pytest.raises(BadInputError, match="neither a text, an image nor a video"):
        tiny.encode([{"text": "a cat"}, {}])


def test_registered_minilm_loads_offline_and_embeds_meaning(minilm: Adapter) -> None:
    meta = minilm.meta
    assert (meta.family, meta.similarity, meta.embed_dim) == (
        "sentence-transformers",
        "cosine",
        384,
    )
    assert meta.revision == "ea89dfad053bba14677bb784a4269898abbdce44"
    assert meta.modalities == ("text",)
    vectors = minilm.encode(
        [
            {"text": "a cat sits on a mat"},
            {"text": "a kitten on a rug"},
            {"text": "stock market crash"},
        ]
    )
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_text_only_model_refuses_images(minilm: Adapter) -> None:
    with pytest.raises(BadInputError, match="text-only"):
        minilm.encode([{"image": _images()[0]}])


def test_prompts_make_the_adapter_role_aware(minilm: Adapter) -> None:
    adapter = load_adapter(
        "all-MiniLM-L6-v2", options={"prompts": {"query": "query: ", "document": "passage: "}}
    )
    assert adapter.meta.role_aware and not minilm.meta.role_aware
    assert adapter.meta.fingerprint != minilm.meta.fingerprint
    query = adapter.encode([{"text": "a cat"}], role="query")
    document = adapter.encode([{"text": "a cat"}], role="document")
    np.testing.assert_allclose(query, minilm.encode([{"text": "query: a cat"}]), atol=1e-5)
    np.testing.assert_allclose(document, minilm.encode([{"text": "passage: a cat"}]), atol=1e-5)


def test_instructions_prefix_queries_only(minilm: Adapter) -> None:
    adapter = load_adapter("all-MiniLM-L6-v2", options={"uses_instructions": True})
    assert adapter.meta.uses_instructions
    query = adapter.encode([{"text": "a cat"}], role="query", instruction="Find pets.")
    document = adapter.encode([{"text": "a cat"}], role="document", instruction="Find pets.")
    np.testing.assert_allclose(query, minilm.encode([{"text": "Find pets. a cat"}]), atol=1e-5)
    np.testing.assert_allclose(document, minilm.encode([{"text": "a cat"}]), atol=1e-5)


def test_registered_models_are_listed() -> None:
    models = registered_models()
    assert {"all-MiniLM-L6-v2", "demo-clip", "openai/clip-vit-base-patch32"} <= set(models)
    assert models["google/siglip-base-patch16-224"].revision == (
        "7fd15f0689c79d79e38b1c2e2e2370a7bf2761ed"
    )
    assert models["demo-clip"].family == "clip"


def test_unknown_name_suggests_registered_names() -> None:
    with pytest.raises(UnknownNameError) as caught:
        load_adapter("all-MiniLM-L6")
    assert "all-MiniLM-L6-v2" in caught.value.suggestions
    assert "harness models" in str(caught.value)


def test_hub_id_not_cached_offline_fails_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(HarnessError, match="could not be found locally") as caught:
        load_adapter("openai/clip-vit-large-patch14")
    assert time.perf_counter() - start < 5
    assert "offline" in str(caught.value) and "local model directory" in str(caught.value)


def test_directory_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"neither modules\.json"):
        load_adapter(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(HarnessError, match="'bert' model"):
        load_adapter(str(tmp_path))


def test_cuda_without_cuda_is_refused(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        HarnessError, match="CUDA is not available on this machine; use --device cpu"
    ):
        load_adapter(str(tiny_clip_dir), device="cuda")


@pytest.mark.parametrize(("setting", "value"), [("dtype", "float64"), ("device", "tpu")])
def test_bad_device_or_dtype_is_refused(tiny_clip_dir: Path, setting: str, value: str) -> None:
    with pytest.raises(HarnessError, match=value):
        load_adapter(str(tiny_clip_dir), **{setting: value})


def test_sentence_transformer_in_bfloat16(minilm: Adapter) -> None:
    adapter = load_adapter("all-MiniLM-L6-v2", dtype="bfloat16")
    low, full = adapter.encode([{"text": "a cat"}]), minilm.encode([{"text": "a cat"}])
    assert low.dtype == np.float32
    assert float(low[0] @ full[0]) / np.linalg.norm(low) / np.linalg.norm(full) > 0.99
