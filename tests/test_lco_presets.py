"""The mllm family's ``protocol`` option: ``mteb-2.26`` (the default, mteb 2.26's LCO-Embedding
wrapper) and ``lco-paper`` (the LCO-Embedding paper's evaluation), on tiny random Qwen2-VL and
Qwen2.5-Omni thinker models."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, Qwen2VLForConditionalGeneration

from harness.core.audio import Waveform
from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters import load_adapter
from harness.model_adapters.mllm import MllmAdapter
from tests import tiny_models
from tests.dataset_fixtures import read_result_json, run_cli
from tests.test_mllm import _image

PAPER = {"protocol": "lco-paper"}
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
END = "<|im_end|>\n<|im_start|>assistant\n"
IMAGE = "<|vision_start|>{}<|vision_end|>"


def _items() -> list[dict]:
    return [
        {"text": "sky"},
        {"image": _image(56, 56)},
        {"text": "a red car", "image": _image(84, 56, 1)},
        {"image": _image(140, 140, 2)},
    ]


def _load(model: Path, options: dict | None = None) -> MllmAdapter:
    """A tiny model loaded through the registry's directory detection."""
    loaded = load_adapter(str(model), options=options)
    assert isinstance(loaded, MllmAdapter)
    return loaded


@pytest.fixture(scope="module")
def qwen2_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny-qwen2-vl"))


@pytest.fixture(scope="module")
def default(qwen2_vl: Path) -> MllmAdapter:
    return _load(qwen2_vl)


@pytest.fixture(scope="module")
def paper(qwen2_vl: Path) -> MllmAdapter:
    return _load(qwen2_vl, PAPER)


def test_default_protocol_is_mteb_2_26_and_changes_nothing(
    qwen2_vl: Path, default: MllmAdapter
) -> None:
    explicit = load_adapter(str(qwen2_vl), options={"protocol": "mteb-2.26"})
    assert "protocol" not in default.meta.options  # old cache keys and results stay valid
    assert explicit.meta.to_dict() == default.meta.to_dict()
    vectors = default.encode(_items())
    np.testing.assert_array_equal(explicit.encode(_items()), vectors)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    item = {"text": "a red car", "image": _image(56, 56)}
    assert default.prompt(item) == (
        f"{SYSTEM}{IMAGE.format('<|image_pad|>')}a red car"
        f"\nSummarize the above image in one word:{END}"
    )


def test_paper_prompts_put_the_text_before_the_image(paper: MllmAdapter) -> None:
    image = IMAGE.format("<|image_pad|>")
    assert paper.prompt({"text": "sky"}) == (
        f"{SYSTEM}sky\nSummarize the above text in one word:{END}"
    )
    assert paper.prompt({"image": _image(56, 56)}) == (
        f"{SYSTEM}{image}\nSummarize the above image in one word:{END}"
    )
    assert paper.prompt({"text": "a red car", "image": _image(56, 56)}) == (
        f"{SYSTEM}a red car{image}\nSummarize the above in one word:{END}"
    )


def test_paper_record_and_fingerprint(default: MllmAdapter, paper: MllmAdapter) -> None:
    options = paper.meta.options
    assert options["protocol"] == "lco-paper"
    assert options["preset"] == "lco"
    assert options["max_pixels"] == 1280 * 28 * 28
    assert (options["normalized"], options["output_dtype"]) == (False, "float16")
    assert paper.meta.similarity == default.meta.similarity == "cosine"
    assert paper.meta.fingerprint != default.meta.fingerprint
    assert paper.meta.to_dict()["options"]["protocol"] == "lco-paper"


def _grid(adapter: MllmAdapter, image: Image.Image) -> list[int]:
    return adapter.preprocess({"image": image})["image"]["image_grid_thw"].tolist()[0]


def test_paper_caps_images_at_1280_blocks_unless_max_pixels_is_given(
    qwen2_vl: Path, default: MllmAdapter, paper: MllmAdapter
) -> None:
    large = _image(140, 140)  # over the tiny processor's own 112 x 112 limit
    assert _grid(default, large) == [1, 8, 8]
    assert _grid(paper, large) == [1, 10, 10]
    big = _image(1400, 1400)  # 2,500 blocks of 28 x 28: capped at 1,280 (35 x 35 = 1,225)
    assert _grid(paper, big) == [1, 70, 70]
    explicit = _load(qwen2_vl, {**PAPER, "max_pixels": 56 * 56})
    assert explicit.meta.options["max_pixels"] == 56 * 56
    assert _grid(explicit, large) == [1, 4, 4]
    assert explicit.meta.fingerprint != paper.meta.fingerprint


@pytest.mark.parametrize(
    ("size", "fetched", "grid"),
    [
        ((100, 60), (112, 56), [1, 4, 8]),  # sides rounded to multiples of 28
        # over 16,384 blocks of 28 x 28: shrunk to 3,808 x 3,332 first, then to the cap
        ((4000, 3500), (3808, 3332), [1, 66, 76]),
    ],
)
def test_paper_resizes_images_as_fetch_image_first(
    paper: MllmAdapter, size: tuple[int, int], fetched: tuple[int, int], grid: list[int]
) -> None:
    image = _image(*size)
    bounds = {"shortest_edge": paper.image_processor.size["shortest_edge"]}
    bounds["longest_edge"] = 1280 * 28 * 28
    expected = paper.image_processor(
        images=[image.resize(fetched, Image.Resampling.BICUBIC)], size=bounds, return_tensors="np"
    )
    got = paper.preprocess({"image": image})["image"]
    assert got["image_grid_thw"].tolist() == [grid]
    np.testing.assert_array_equal(got["pixel_values"], expected["pixel_values"])
    if size[0] > 3000:  # one resize straight to the cap gives other pixels
        direct = paper.image_processor(images=[image], size=bounds, return_tensors="np")
        assert not np.array_equal(direct["pixel_values"], got["pixel_values"])


def test_paper_vectors_are_the_float16_rounded_last_hidden_state(
    qwen2_vl: Path, paper: MllmAdapter
) -> None:
    """Prompts written out by hand, image tokens expanded by hand, one forward pass each."""
    model = Qwen2VLForConditionalGeneration.from_pretrained(qwen2_vl).eval()
    tokenizer = AutoTokenizer.from_pretrained(qwen2_vl)
    processor = AutoImageProcessor.from_pretrained(qwen2_vl)
    image = _image(56, 56, 3)  # 4 x 4 patches of 14, merged 2 x 2: 4 image tokens
    pixels = processor(images=[image], return_tensors="pt")
    prompts = {
        "text": f"{SYSTEM}two dogs\nSummarize the above text in one word:{END}",
        "image,text": (
            f"{SYSTEM}two dogs{IMAGE.format('<|image_pad|>' * 4)}"
            f"\nSummarize the above in one word:{END}"
        ),
    }
    expected = []
    for kind, prompt in prompts.items():
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        inputs = {"input_ids": ids}
        if kind == "image,text":
            inputs.update(pixel_values=pixels.pixel_values, image_grid_thw=pixels.image_grid_thw)
            if "mm_token_type_ids" in inspect.signature(model.forward).parameters:
                image_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
                inputs["mm_token_type_ids"] = (ids == image_id).int()
        with torch.no_grad():
            hidden = model(**inputs, output_hidden_states=True).hidden_states[-1][0, -1]
        expected.append(hidden.to(torch.float16).float().numpy())
    vectors = paper.encode([{"text": "two dogs"}, {"text": "two dogs", "image": image}])
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, vectors.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(vectors, np.stack(expected), rtol=2e-3, atol=1e-3)
    assert np.abs(np.linalg.norm(vectors, axis=1) - 1.0).min() > 0.5  # not normalised


def test_paper_refuses_audio_and_video_items(tmp_path: Path) -> None:
    omni = _load(tiny_models.build_tiny_qwen2_5_omni_thinker(tmp_path / "omni"), PAPER)
    vectors = omni.encode([{"text": "sky"}, {"image": _image(56, 56)}])
    assert vectors.shape == (2, tiny_models.HIDDEN)
    clip = Waveform(np.zeros(1600, dtype=np.float32), 16000)
    with pytest.raises(BadInputError, match="protocol lco-paper embeds texts, images and"):
        omni.encode([{"audio": clip}])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"protocol": "lco"}, "protocol must be one of mteb-2.26, lco-paper"),
        ({"protocol": "lco-paper", "preset": "e5v"}, "preset cannot be 'e5v'"),
    ],
)
def test_bad_protocol_options_are_clear_errors(qwen2_vl: Path, options: dict, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        load_adapter(str(qwen2_vl), options=options)


def test_registered_lco_options_take_the_paper_protocol(qwen2_vl: Path) -> None:
    """A registered LCO model's options (preset lco) merged with protocol=lco-paper."""
    merged = load_adapter(str(qwen2_vl), options={"preset": "lco", **PAPER})
    assert merged.meta.options["protocol"] == "lco-paper"


def test_cli_model_args_protocol_end_to_end(
    qwen2_vl: Path, paper: MllmAdapter, tmp_path: Path
) -> None:
    task = "DemoShapesRelationChoice"  # image+text queries, text choices
    args = ("--model-args", "protocol=lco-paper", "--limit", "4", "--batch-size", "4")
    assert run_cli(qwen2_vl, task, tmp_path, *args) == 0
    model = read_result_json(tmp_path, task)["harness"]["model"]
    assert model["options"]["protocol"] == "lco-paper"
    assert model["options"]["max_pixels"] == 1280 * 28 * 28
    assert model["fingerprint"] == paper.meta.fingerprint
    assert run_cli(qwen2_vl, task, tmp_path / "bad", "--model-args", "protocol=paper") == 2
