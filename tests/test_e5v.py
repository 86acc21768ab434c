"""The llava-next family (E5-V) on a tiny random LLaVA-NeXT saved with save_pretrained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters import load_adapter, registered_models
from harness.model_adapters.llava_next import LlavaNextAdapter
from tests import tiny_mllm_embedders
from tests.dataset_fixtures import read_result_json, run_cli

# E5-V's prompts as its README and mteb's e5_v wrapper write them, spelled out.
TURN = (
    "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n \n"
)
TEXT = TURN.format("{}\nSummary above sentence in one word: ")
IMAGE = TURN.format("<image>\nSummary above image in one word: ")
FUSED = TURN.format(
    '[INST] <image> Modify this image with "{}" Describe modified image in one word: [/INST]'
)


def _image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _items() -> list[dict]:
    """Texts of different lengths, images of different sizes and aspect ratios (so crop grids
    and token counts differ), and an image with a text."""
    return [
        {"text": "a red car"},
        {"image": _image(70, 40, 0)},
        {"text": "two dogs running in the park", "image": _image(20, 50, 1)},
        {"image": _image(56, 56, 2)},
        {"text": "sky"},
    ]


def _reference_prompt(item: dict) -> str:
    if item.get("image") is None:
        return TEXT.format(item["text"])
    return FUSED.format(item["text"]) if item.get("text") else IMAGE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_mllm_embedders.build_tiny_e5v(tmp_path_factory.mktemp("tiny-e5v"))


@pytest.fixture(scope="module")
def adapter(model_dir: Path) -> LlavaNextAdapter:
    """The tiny model loaded through the registry's directory detection."""
    loaded = load_adapter(str(model_dir))
    assert isinstance(loaded, LlavaNextAdapter)
    return loaded


def test_meta(adapter: LlavaNextAdapter) -> None:
    meta = adapter.meta
    assert meta.family == "llava-next"
    assert meta.modalities == ("image", "text")
    assert meta.embed_dim == tiny_mllm_embedders.HIDDEN
    assert meta.similarity == "cosine" and not meta.uses_instructions
    assert meta.options["pooling"] == "last_token" and meta.options["normalized"] is False
    assert meta.options["image_processor"] == "LlavaNextImageProcessorPil"


def test_embedding_is_a_hand_computed_forward_pass(
    adapter: LlavaNextAdapter, model_dir: Path
) -> None:
    """Each item alone through the model's own processor with E5-V's prompt: the last token's
    final hidden state, unnormalised, equals the item's vector from one left-padded batch."""
    model = LlavaNextForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = LlavaNextProcessor.from_pretrained(model_dir)
    expected = []
    for item in _items():
        images = [item["image"]] if item.get("image") is not None else None
        inputs = processor(text=[_reference_prompt(item)], images=images, return_tensors="pt")
        assert inputs["input_ids"][0, 0] == processor.tokenizer.bos_token_id
        with torch.no_grad():
            hidden = model(**inputs, output_hidden_states=True).hidden_states[-1]
        expected.append(hidden[0, -1].numpy())
    vectors = adapter.encode(_items())
    assert vectors.dtype == np.float32 and vectors.shape == (5, tiny_mllm_embedders.HIDDEN)
    np.testing.assert_allclose(vectors, np.stack(expected), atol=2e-5)
    assert np.abs(np.linalg.norm(vectors, axis=1) - 1).max() > 1e-2  # not normalised


def test_inputs_match_the_processor(adapter: LlavaNextAdapter, model_dir: Path) -> None:
    """Placeholders expand to the processor's token counts; crops pad as the processor pads."""
    processor = LlavaNextProcessor.from_pretrained(model_dir)
    items = [item for item in _items() if item.get("image") is not None]
    prompts = [adapter.prompt(item) for item in items]
    assert prompts == [_reference_prompt(item) for item in items]
    ours = adapter.model_inputs(prompts, [adapter.preprocess(item)["image"] for item in items])
    processor.tokenizer.padding_side = "left"
    theirs = processor(
        text=prompts, images=[item["image"] for item in items], padding=True, return_tensors="pt"
    )
    for key in ("input_ids", "attention_mask", "image_sizes"):
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0)
    torch.testing.assert_close(ours["pixel_values"], theirs["pixel_values"])
    counts = (ours["input_ids"] == processor.image_token_id).sum(-1)
    assert len(set(counts.tolist())) == len(items)  # three sizes, three token counts


def test_preprocessed_items_encode_as_decoded_ones(adapter: LlavaNextAdapter) -> None:
    items = _items()
    preprocessed = [adapter.preprocess(item) for item in items]
    assert all(adapter.preprocess(item) is item for item in preprocessed)
    np.testing.assert_array_equal(adapter.encode(preprocessed), adapter.encode(items))


def test_bad_inputs_and_options(adapter: LlavaNextAdapter, model_dir: Path) -> None:
    with pytest.raises(BadInputError, match="item 1 has neither a text nor an image"):
        adapter.encode([{"text": "sky"}, {"audio": None}])
    with pytest.raises(HarnessError, match="preset"):
        load_adapter(str(model_dir), options={"preset": "lco"})
    with pytest.raises(HarnessError, match="cuda_dtype must be one of"):
        load_adapter(str(model_dir), options={"cuda_dtype": "int8"})


def test_registered_e5v() -> None:
    entry = registered_models()["royokong/e5-v"]
    assert entry.family == "llava-next" and entry.source == "royokong/e5-v"
    assert entry.revision == "0c1f22679417b3ae925d779442221c40cd1861ab"  # mteb's pin
    assert not entry.options  # float32, as mteb loads it
    with pytest.raises(HarnessError, match="could not be found locally"):
        load_adapter("royokong/e5-v")  # offline, and not in the test's empty HF cache


def test_cli_runs_a_demo_task(model_dir: Path, tmp_path: Path) -> None:
    task = "DemoShapesT2IRetrieval"
    assert run_cli(model_dir, task, tmp_path, "--limit", "12", "--batch-size", "4") == 0
    result = read_result_json(tmp_path, task)
    [scores] = result["scores"]["test"]
    assert 0.0 <= scores["main_score"] <= 1.0
    model = result["harness"]["model"]
    assert model["family"] == "llava-next" and model["options"]["pooling"] == "last_token"
