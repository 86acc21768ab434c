"""The gme family on a tiny random Qwen2-VL saved with save_pretrained."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, Qwen2VLForConditionalGeneration

from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters import load_adapter, registered_models, registry
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.gme import GmeAdapter, fetch_size
from tests import tiny_mllm_embedders
from tests.dataset_fixtures import read_result_json, run_cli

INSTRUCTION = "Find a screenshot that relevant to the user's question."
DEFAULT = "You are a helpful assistant."


def _image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _items() -> list[dict]:
    return [
        {"text": "a red car"},
        {"image": _image(70, 40, 0)},
        {"text": "two dogs running in the park", "image": _image(30, 50, 1)},
        {"text": "sky"},
    ]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_mllm_embedders.build_tiny_gme(tmp_path_factory.mktemp("tiny-gme"))


@pytest.fixture(scope="module")
def adapter(model_dir: Path) -> GmeAdapter:
    return GmeAdapter(LoadRequest(source=str(model_dir), name="tiny-gme", revision="t"))


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> tuple[Any, Any, Any]:
    """The tiny model, its tokenizer and its image processor, loaded by transformers."""
    return (
        Qwen2VLForConditionalGeneration.from_pretrained(model_dir).eval(),
        AutoTokenizer.from_pretrained(model_dir),
        AutoImageProcessor.from_pretrained(model_dir),
    )


def _by_hand(reference: tuple[Any, Any, Any], item: dict, system: str) -> np.ndarray:
    """GME's prompt spelled out, the image resized to multiples of 28 and through the image
    processor at 3136..1003520 pixels, one placeholder token per merged patch, the sequence cut
    to 1800 tokens: the last token's final hidden state, L2-normalised."""
    model, tokenizer, processor = reference
    user, inputs = item.get("text") or "", {}
    if item.get("image") is not None:
        image = item["image"].convert("RGB")
        height, width = fetch_size(image.height, image.width)
        size = {"shortest_edge": 3136, "longest_edge": 1280 * 28 * 28}
        inputs = processor(images=[image.resize((width, height))], size=size, return_tensors="pt")
        tokens = int(inputs["image_grid_thw"].prod()) // 4
        user = "<|vision_start|>" + "<|image_pad|>" * tokens + "<|vision_end|>" + user
    prompt = (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
        "<|im_start|>assistant\n<|endoftext|>"
    )
    ids = tokenizer(prompt, return_tensors="pt").input_ids[:, :1800]
    if inputs:
        inputs["mm_token_type_ids"] = (
            ids == tokenizer.convert_tokens_to_ids("<|image_pad|>")
        ).int()
    with torch.no_grad():
        hidden = model(input_ids=ids, **inputs, output_hidden_states=True).hidden_states[-1]
    return torch.nn.functional.normalize(hidden[0, -1], dim=-1).numpy()


def test_meta(adapter: GmeAdapter) -> None:
    meta = adapter.meta
    assert meta.family == "gme" and meta.modalities == ("image", "text")
    assert meta.embed_dim == tiny_mllm_embedders.HIDDEN
    assert meta.uses_instructions and meta.role_aware
    assert meta.options["max_pixels"] == 1280 * 28 * 28 and meta.options["max_length"] == 1800


@pytest.mark.parametrize(
    ("role", "instruction", "system"),
    [
        ("query", INSTRUCTION, INSTRUCTION),
        ("document", INSTRUCTION, DEFAULT),  # documents never take the instruction
        (None, INSTRUCTION, INSTRUCTION),
        ("query", None, DEFAULT),
    ],
)
def test_embedding_is_a_hand_computed_forward_pass(
    adapter: GmeAdapter,
    reference: tuple[Any, Any, Any],
    role: str | None,
    instruction: str | None,
    system: str,
) -> None:
    expected = np.stack([_by_hand(reference, item, system) for item in _items()])
    vectors = adapter.encode(_items(), role=role, instruction=instruction)  # type: ignore[arg-type]
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, atol=2e-5)


def test_prompts_are_cut_to_1800_tokens(
    adapter: GmeAdapter, reference: tuple[Any, Any, Any]
) -> None:
    long_text = " ".join(["cat"] * 1900)
    [vector] = adapter.encode([{"text": long_text}], role="document")
    np.testing.assert_allclose(vector, _by_hand(reference, {"text": long_text}, DEFAULT), atol=2e-5)
    [uncut] = adapter.mllm.embed([adapter.prompt({"text": long_text})], [])
    assert np.abs(vector - uncut).max() > 1e-3


@pytest.mark.filterwarnings("ignore:Absolute aspect ratio")
def test_fetch_size_is_gmes_smart_resize() -> None:
    """Checked against mteb's copy of GME's resize on sizes small, large and elongated."""
    from mteb.models.model_implementations.gme_v_models import smart_resize

    rng = np.random.default_rng(0)
    sizes = [
        (1, 1),
        (10, 3000),
        (27, 29),
        (5000, 4000),
        (20000, 90),
        *rng.integers(1, 9000, (40, 2)),
    ]
    for height, width in sizes:
        assert fetch_size(int(height), int(width)) == smart_resize(int(height), int(width))


def test_bad_inputs_and_options(adapter: GmeAdapter, model_dir: Path) -> None:
    with pytest.raises(BadInputError, match="item 0 has neither a text nor an image"):
        adapter.encode([{}])
    with pytest.raises(HarnessError, match="preset"):
        GmeAdapter(
            LoadRequest(source=str(model_dir), name="x", revision="t", options={"preset": "lco"})
        )


def test_registered_gme_models() -> None:
    models = registered_models()
    for size, commit in (
        ("2B", "ce765ae71b8cdb208203cd8fb64a170b1b84293a"),
        ("7B", "477027a6480f8630363be77751f169cc3434b673"),
    ):
        entry = models[f"Alibaba-NLP/gme-Qwen2-VL-{size}-Instruct"]
        assert entry.family == "gme" and entry.revision == commit  # mteb's pins
        assert entry.options == {"cuda_dtype": "float16"}
    with pytest.raises(HarnessError, match="could not be found locally"):
        load_adapter("Alibaba-NLP/gme-Qwen2-VL-2B-Instruct")


def test_cli_runs_a_demo_task(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GME checkpoint says qwen2_vl, as mllm-vision ones do: it loads by registered name."""
    entry = registry.ModelEntry("tiny-gme", "gme", str(model_dir), "tiny-v1")
    monkeypatch.setattr(
        registry, "_REGISTRY", MappingProxyType({**registered_models(), "tiny-gme": entry})
    )
    task = "DemoShapesT2IRetrieval"
    assert run_cli("tiny-gme", task, tmp_path, "--limit", "12", "--batch-size", "4") == 0
    result = read_result_json(tmp_path, task)
    [scores] = result["scores"]["test"]
    assert 0.0 <= scores["main_score"] <= 1.0
    assert result["harness"]["model"]["family"] == "gme"
