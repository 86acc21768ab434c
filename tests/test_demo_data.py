"""The embedded demo benchmark: generator determinism, committed data, train/test separation,
and the committed demo CLIP."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import datasets
import numpy as np
import pytest
import torch
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    BaseImageProcessor,
    CLIPModel,
    PreTrainedTokenizerBase,
)

from harness.tasks.demo.build import CONFIGS, DATA_SEED, TASKS, build_demo_datasets
from harness.tasks.demo.shapes import all_layouts, render, sample_scenes, scene_for
from tests.dataset_fixtures import DEMO_DATA, decoded_rows

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO / "harness" / "model_adapters" / "demo_clip"
TRAIN_SCRIPT = REPO / "scripts" / "train_demo_clip.py"
PARQUET = "test-00000-of-00001.parquet"
COLUMNS = {
    "corpus": ["id", "modality", "text", "image"],
    "queries": ["id", "modality", "text", "image"],
    "qrels": ["query-id", "corpus-id", "score"],
}


def _test_image_pixels() -> set[bytes]:
    """Decoded pixels of every committed test image."""
    pixels = set()
    for task in TASKS:
        for config in ("corpus", "queries"):
            rows = decoded_rows(DEMO_DATA / task.name / config / PARQUET)
            pixels.update(row["image"] for row in rows if row["image"] is not None)
    return pixels


@pytest.fixture(scope="module")
def train_script() -> ModuleType:
    """``scripts/train_demo_clip.py`` imported as a module (nothing runs on import)."""
    spec = importlib.util.spec_from_file_location("train_demo_clip", TRAIN_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo datasets as ``build_demo_datasets`` writes them now."""
    out = tmp_path_factory.mktemp("demo-data")
    build_demo_datasets(out)
    return out


@pytest.fixture(scope="module")
def demo_clip() -> tuple[CLIPModel, PreTrainedTokenizerBase, BaseImageProcessor]:
    """The committed demo model, tokenizer and image processor, loaded the standard way."""
    model = CLIPModel.from_pretrained(MODEL_DIR).eval()
    return (
        model,
        AutoTokenizer.from_pretrained(MODEL_DIR),
        AutoImageProcessor.from_pretrained(MODEL_DIR),
    )


def test_scene_sampling_is_deterministic_and_unambiguous() -> None:
    first, again, other = (sample_scenes(300, seed) for seed in (5, 5, 6))
    assert [s.caption for s in first] == [s.caption for s in again]
    assert [s.caption for s in first] != [s.caption for s in other]
    assert len({s.layout for s in first}) == len(first)
    with pytest.raises(ValueError):
        sample_scenes(len(all_layouts()) + 1, 0)


def test_both_captions_of_a_layout_describe_it() -> None:
    for layout in all_layouts():
        forward, backward = scene_for(layout, False), scene_for(layout, True)
        assert forward.layout == backward.layout == layout
        assert forward.caption != backward.caption


def test_rendering_is_deterministic_and_jittered() -> None:
    scene = sample_scenes(1, 0)[0]
    first, again, other = (render(scene, seed=seed).tobytes() for seed in (1, 1, 2))
    assert first == again
    assert first != other
    assert render(scene, size=64, seed=1).size == (64, 64)


@pytest.mark.parametrize("task", [t.name for t in TASKS])
@pytest.mark.parametrize("config", CONFIGS)
def test_committed_data_matches_the_builder(rebuilt: Path, task: str, config: str) -> None:
    committed = decoded_rows(DEMO_DATA / task / config / PARQUET)
    assert committed == decoded_rows(rebuilt / task / config / PARQUET)
    readme = (DEMO_DATA / task / "README.md").read_text(encoding="utf-8")
    assert readme == (rebuilt / task / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("task", [t.name for t in TASKS])
def test_configs_load_through_load_dataset(task: str) -> None:
    parts = {c: datasets.load_dataset(str(DEMO_DATA / task), c, split="test") for c in CONFIGS}
    for config, dataset in parts.items():
        assert dataset.column_names == COLUMNS[config]
    assert isinstance(parts["corpus"].features["image"], datasets.Image)
    assert parts["qrels"].features["score"] == datasets.Value("int64")
    for config in ("corpus", "queries"):
        for row in parts[config]:
            assert (row["text"] is None) == (row["modality"] == "image")
            assert (row["image"] is None) == (row["modality"] == "text")
    qrels = parts["qrels"]
    assert set(qrels["query-id"]) == set(parts["queries"]["id"])
    assert set(qrels["corpus-id"]) <= set(parts["corpus"]["id"])
    assert not set(parts["queries"]["id"]) & set(parts["corpus"]["id"])


def test_training_stream_never_renders_a_test_image(train_script: ModuleType) -> None:
    assert train_script.TRAIN_SEED != DATA_SEED
    test_pixels = _test_image_pixels()
    assert len(test_pixels) == sum(t.n_scenes * (4 if t.kind == "i2i" else 1) for t in TASKS), (
        "test renderings should be pairwise distinct"
    )
    for step in range(16):
        _, images = train_script.train_batch(step, train_script.BATCH_SIZE)
        assert not {image.tobytes() for image in images} & test_pixels


def test_demo_model_loads_and_tokenizes_deterministically(
    demo_clip: tuple[CLIPModel, PreTrainedTokenizerBase, BaseImageProcessor],
    train_script: ModuleType,
) -> None:
    model, tokenizer, processor = demo_clip
    assert tokenizer.get_vocab() == train_script.build_tokenizer().get_vocab()
    assert model.config.text_config.eos_token_id == tokenizer.eos_token_id

    caption = sample_scenes(1, 0)[0].caption
    ids = tokenizer(caption)["input_ids"]
    assert ids == tokenizer(caption)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == caption

    pixels = processor([render(sample_scenes(1, 0)[0], seed=0)], return_tensors="pt")
    with torch.no_grad():
        image = model.get_image_features(**pixels)
        text = model.get_text_features(**tokenizer([caption], return_tensors="pt"))
    assert getattr(image, "pooler_output", image).shape == (1, model.config.projection_dim)
    assert getattr(text, "pooler_output", text).shape == (1, model.config.projection_dim)


def test_demo_model_retrieves_captions_far_above_chance(
    demo_clip: tuple[CLIPModel, PreTrainedTokenizerBase, BaseImageProcessor],
) -> None:
    """A smoke check that the committed weights are the trained ones (chance R@1 is 1/64)."""
    model, tokenizer, processor = demo_clip
    scenes = sample_scenes(64, 99)
    images = [render(scene, seed=(99, k)) for k, scene in enumerate(scenes)]
    with torch.no_grad():
        image = model.get_image_features(**processor(images, return_tensors="pt"))
        text = model.get_text_features(
            **tokenizer([s.caption for s in scenes], padding=True, return_tensors="pt")
        )
    image, text = (getattr(e, "pooler_output", e) for e in (image, text))
    similarity = torch.nn.functional.normalize(image, dim=-1) @ (
        torch.nn.functional.normalize(text, dim=-1).T
    )
    recall_at_1 = float(np.mean(similarity.argmax(dim=1).numpy() == np.arange(len(scenes))))
    assert recall_at_1 > 0.3
