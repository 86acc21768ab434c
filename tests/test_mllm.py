"""The MLLM adapter on tiny random Qwen2-VL, Qwen2.5-VL and Qwen2.5-Omni thinker models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoTokenizer

from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters import load_adapter, registered_models
from harness.model_adapters.mllm import MODEL_CLASSES, MllmAdapter, _effective_dtype
from tests import tiny_models
from tests.dataset_fixtures import colour_retrieval, read_result_json, retrieval_task_yaml, run_cli

BUILDERS = {
    "qwen2_vl": tiny_models.build_tiny_qwen2_vl,
    "qwen2_5_vl": tiny_models.build_tiny_qwen2_5_vl,
    "qwen2_5_omni_thinker": tiny_models.build_tiny_qwen2_5_omni_thinker,
}
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
INSTRUCTION = "Find a screenshot that relevant to the user's question."


def _image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _items() -> list[dict]:
    """Texts of different lengths, images of different sizes, and image+text items."""
    return [
        {"text": "sky"},
        {"image": _image(56, 56)},
        {"text": "a cat sits on a mat in the park with two dogs", "image": _image(84, 56, 1)},
        {"text": "a red car"},
        {"image": _image(112, 112, 2)},
    ]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three tiny models, saved with save_pretrained."""
    return {
        kind: build(tmp_path_factory.mktemp(f"tiny-{kind}")) for kind, build in BUILDERS.items()
    }


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def adapter(model_dirs: dict[str, Path], kind: str) -> MllmAdapter:
    """A tiny model loaded through the registry's directory detection."""
    loaded = load_adapter(str(model_dirs[kind]))
    assert isinstance(loaded, MllmAdapter)
    return loaded


def test_meta_and_unit_vectors(adapter: MllmAdapter, kind: str) -> None:
    meta = adapter.meta
    assert meta.family == "mllm"
    assert type(adapter.model).__name__ == MODEL_CLASSES[kind]
    assert meta.embed_dim == tiny_models.HIDDEN
    assert meta.options["preset"] == "lco"
    assert meta.options["max_text_tokens"] == 300
    assert meta.options["pooling"] == "last_token"
    vectors = adapter.encode(_items())
    assert vectors.dtype == np.float32 and vectors.shape == (5, tiny_models.HIDDEN)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.abs(vectors[0] - vectors[3]).max() > 1e-3


def test_left_padded_batch_equals_one_by_one(adapter: MllmAdapter) -> None:
    items = _items()
    inputs = adapter.model_inputs([adapter.prompt(item) for item in items[::3]], [])
    mask = inputs["attention_mask"]
    assert mask[:, -1].all() and not mask[:, 0].all()  # padded on the left
    together = adapter.encode(items)
    alone = np.concatenate([adapter.encode([item]) for item in items])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_preprocessed_items_encode_bit_for_bit_as_decoded_ones(adapter: MllmAdapter) -> None:
    """The image processor runs per item in the workers (``preprocess``); the patches it
    gives concatenate to the batch the processor builds, so the vectors are the same."""
    items = _items()
    preprocessed = [adapter.preprocess(item) for item in items]
    with_image = [p for p in preprocessed if p.get("image") is not None]
    assert with_image and all("image_grid_thw" in p["image"] for p in with_image)
    assert all(adapter.preprocess(item) is item for item in preprocessed)  # idempotent
    np.testing.assert_array_equal(adapter.encode(preprocessed), adapter.encode(items))


def test_embedding_is_the_last_tokens_final_hidden_state(
    adapter: MllmAdapter, model_dirs: dict[str, Path], kind: str
) -> None:
    texts = ["sky", "two dogs running in the park", "a red car"]
    model = type(adapter.model).from_pretrained(model_dirs[kind]).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dirs[kind])
    expected = []
    for text in texts:
        prompt = (
            f"{SYSTEM}<|im_start|>user\n{text}\nSummarize the above text in one word:"
            "<|im_end|>\n<|im_start|>assistant\n"
        )
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
        expected.append(torch.nn.functional.normalize(hidden[0, -1], dim=-1).numpy())
    vectors = adapter.encode([{"text": text} for text in texts])
    np.testing.assert_allclose(vectors, np.stack(expected), atol=1e-5)


@pytest.mark.parametrize(
    ("size", "grid", "tokens"),
    [((56, 56), [1, 4, 4], 4), ((84, 56), [1, 4, 6], 6), ((112, 112), [1, 8, 8], 16)],
)
def test_image_placeholder_expands_to_the_grids_token_count(
    adapter: MllmAdapter, size: tuple[int, int], grid: list[int], tokens: int
) -> None:
    items = [{"image": _image(*size)}, {"text": "a red car", "image": _image(56, 56)}]
    prompts = [adapter.prompt(item) for item in items]
    inputs = adapter.model_inputs(prompts, [adapter.preprocess(item)["image"] for item in items])
    assert inputs["image_grid_thw"].tolist() == [grid, [1, 4, 4]]
    image_id = adapter.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert (inputs["input_ids"] == image_id).sum(dim=1).tolist() == [tokens, 4]
    assert inputs["pixel_values"].shape[0] == 4 * (tokens + 4)


def test_lco_prompts_follow_the_model_chat_template(adapter: MllmAdapter) -> None:
    user = "<|im_start|>user\n"
    end = "<|im_end|>\n<|im_start|>assistant\n"
    image = "<|vision_start|><|image_pad|><|vision_end|>"
    assert adapter.prompt({"text": "a red car"}) == (
        f"{SYSTEM}{user}a red car\nSummarize the above text in one word:{end}"
    )
    assert adapter.prompt({"image": _image(56, 56)}) == (
        f"{SYSTEM}{user}{image}\nSummarize the above image in one word:{end}"
    )
    assert adapter.prompt({"text": ""}) == (
        f"{SYSTEM}{user}\nSummarize the above text in one word:{end}"
    )
    assert adapter.prompt({"image": _image(56, 56), "text": "a red car"}) == (
        f"{SYSTEM}{user}{image}a red car\nSummarize the above image in one word:{end}"
    )


def test_texts_are_cut_to_max_text_tokens(model_dirs: dict[str, Path]) -> None:
    adapter = load_adapter(str(model_dirs["qwen2_vl"]), options={"max_text_tokens": 3})
    prompt = adapter.prompt({"text": "a cat sits on a mat"})
    assert "a cat sits\nSummarize" in prompt
    short = adapter.prompt({"text": "a cat"})
    assert "a cat\nSummarize" in short


def test_max_pixels_option_shrinks_large_images(model_dirs: dict[str, Path]) -> None:
    default = load_adapter(str(model_dirs["qwen2_vl"]))
    assert default.meta.options["max_pixels"] == tiny_models.MLLM_MAX_PIXELS
    small = load_adapter(str(model_dirs["qwen2_vl"]), options={"max_pixels": 56 * 56})
    item = {"image": _image(112, 112)}
    inputs = small.model_inputs([small.prompt(item)], [small.preprocess(item)["image"]])
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert small.meta.fingerprint != default.meta.fingerprint
    assert small.encode([item]).shape == (1, tiny_models.HIDDEN)


def test_e5v_preset_changes_prompts_and_fingerprint(model_dirs: dict[str, Path]) -> None:
    e5v = load_adapter(str(model_dirs["qwen2_vl"]), options={"preset": "e5v"})
    assert "a red car\nSummary above sentence in one word: " in e5v.prompt({"text": "a red car"})
    assert "\nSummary above image in one word: " in e5v.prompt({"image": _image(56, 56)})
    lco = load_adapter(str(model_dirs["qwen2_vl"]))
    assert e5v.meta.fingerprint != lco.meta.fingerprint
    item = {"text": "a red car"}
    assert np.abs(e5v.encode([item]) - lco.encode([item])).max() > 1e-3


def test_instruction_placement(model_dirs: dict[str, Path]) -> None:
    directory = str(model_dirs["qwen2_vl"])
    item = {"text": "a red car"}
    ignoring = load_adapter(directory)
    assert not ignoring.meta.uses_instructions
    assert ignoring.prompt(item, INSTRUCTION) == ignoring.prompt(item)
    system = load_adapter(directory, options={"instruction": "system"})
    assert system.meta.uses_instructions
    assert system.prompt(item, INSTRUCTION).startswith(
        f"<|im_start|>system\n{INSTRUCTION}<|im_end|>\n<|im_start|>user\na red car\n"
    )
    prefix = load_adapter(directory, options={"instruction": "prefix"})
    assert f"user\n{INSTRUCTION}\na red car\nSummarize" in prefix.prompt(item, INSTRUCTION)
    vectors = prefix.encode([item, item], instruction=INSTRUCTION)
    assert np.abs(vectors[0] - prefix.encode([item])[0]).max() > 1e-3


def test_bfloat16_on_cpu_is_close_to_float32(model_dirs: dict[str, Path]) -> None:
    directory = str(model_dirs["qwen2_5_vl"])
    half = load_adapter(directory, dtype="bfloat16")
    assert half.meta.dtype == "bfloat16"
    assert next(half.model.parameters()).dtype == torch.bfloat16
    items = _items()
    low, full = half.encode(items), load_adapter(directory).encode(items)
    assert low.dtype == np.float32
    assert (np.sum(low * full, axis=1) > 0.98).all()


def test_cuda_dtype_replaces_only_the_float32_default() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert _effective_dtype("float32", cuda, "bfloat16") == "bfloat16"
    assert _effective_dtype("float16", cuda, "bfloat16") == "float16"
    assert _effective_dtype("float32", cpu, "bfloat16") == "float32"
    assert _effective_dtype("float32", cuda, None) == "float32"


def test_missing_chat_template_names_the_model_and_the_fix(tmp_path: Path) -> None:
    directory = tiny_models.build_tiny_qwen2_vl(tmp_path / "no-template", chat_template=None)
    with pytest.raises(HarnessError, match=r"'no-template' has no chat template.*chat_template"):
        load_adapter(str(directory))


def test_processor_chat_template_file_is_used(tmp_path: Path) -> None:
    directory = tiny_models.build_tiny_qwen2_vl(tmp_path / "processor-template", chat_template=None)
    template = {"chat_template": tiny_models.QWEN_CHAT_TEMPLATE}
    (directory / "chat_template.json").write_text(json.dumps(template))
    adapter = load_adapter(str(directory))
    assert adapter.prompt({"text": "sky"}).startswith(SYSTEM)


def test_template_without_image_placeholders_is_a_clear_error(tmp_path: Path) -> None:
    image_part = "<|vision_start|><|image_pad|><|vision_end|>"
    template = tiny_models.QWEN_CHAT_TEMPLATE.replace(image_part, "")
    directory = tiny_models.build_tiny_qwen2_vl(tmp_path / "textonly", chat_template=template)
    adapter = load_adapter(str(directory))
    with pytest.raises(HarnessError, match=r"'textonly' placed 0 image placeholder"):
        adapter.encode([{"image": _image(56, 56)}])


def test_empty_item_is_a_bad_input(adapter: MllmAdapter) -> None:
    with pytest.raises(BadInputError, match="item 1 has neither"):
        adapter.encode([{"text": "sky"}, {}])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pooling": "mean"}, "unknown option"),
        ({"preset": "gme"}, "preset must be one of"),
        ({"instruction": "user"}, "instruction must be one of"),
        ({"max_text_tokens": 0}, "max_text_tokens must be a positive integer"),
        ({"max_text_tokens": None}, "max_text_tokens must be a positive integer"),
        ({"max_pixels": "big"}, "max_pixels must be a positive integer"),
        ({"cuda_dtype": "int8"}, "cuda_dtype must be one of"),
    ],
)
def test_bad_options_are_clear_errors(
    model_dirs: dict[str, Path], options: dict, message: str
) -> None:
    with pytest.raises(HarnessError, match=message):
        load_adapter(str(model_dirs["qwen2_vl"]), options=options)


def test_registered_lco_models() -> None:
    models = registered_models()
    revisions = {
        "LCO-Embedding-Omni-3B": "eea763cfaf673e955ae86c64968896a3fea70189",
        "LCO-Embedding-Omni-7B": "3d38f58aae1253a4443b1270b0767f1e533936cf",
    }
    for name, revision in revisions.items():
        entry = models[name]
        assert entry.family == "mllm"
        assert entry.source == f"LCO-Embedding/{name}"
        assert entry.revision == revision
        assert entry.options == {"preset": "lco", "cuda_dtype": "bfloat16"}
    with pytest.raises(HarnessError, match="could not be found locally"):
        load_adapter("LCO-Embedding-Omni-3B")  # offline, and not in the test's empty HF cache


@pytest.mark.parametrize("model_kind", sorted(BUILDERS))
def test_cli_runs_a_text_to_image_task(
    model_dirs: dict[str, Path], tmp_path: Path, model_kind: str
) -> None:
    data = colour_retrieval(tmp_path / "data", "t2i", n=6)
    task = retrieval_task_yaml(tmp_path / "task.yaml", "TinyColourT2I", data, "t2i")
    assert run_cli(model_dirs[model_kind], task, tmp_path, "--batch-size", "4") == 0
    result = read_result_json(tmp_path, "TinyColourT2I")
    [scores] = result["scores"]["test"]
    assert 0.0 <= scores["main_score"] <= 1.0
    assert scores["main_score"] == scores["ndcg_at_10"]
    assert result["harness"]["model"]["family"] == "mllm"
