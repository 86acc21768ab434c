"""The clip family on the transformers dual encoders beyond CLIP and SigLIP (SigLIP 2 NaFlex,
Chinese-CLIP, AltCLIP, ALIGN, MetaCLIP 2, GroupViT, OWL-ViT, AIMv2, VisionTextDualEncoder), the
model types it refuses, and the registered SigLIP 2 checkpoints."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer, BlipConfig, BlipModel

from harness.core.adapter import Adapter, Preprocessing
from harness.core.errors import HarnessError
from harness.model_adapters import load_adapter, registered_models
from harness.model_adapters.families import CLIP
from tests import tiny_dual_encoders
from tests.dataset_fixtures import read_result_json, run_cli
from tests.tiny_models import IMAGE_SIZE, PATCH_SIZE, SEED, _text_tower, _tower

TEXTS = ["a cat sits on a mat", "two dogs running in the park", "a red car", "sky"]
TASK = "DemoShapesT2IRetrieval"


def _images() -> list[Image.Image]:
    """Four noisy RGB images of different sizes and aspect ratios."""
    rng = np.random.default_rng(0)
    sizes = [(32, 32), (48, 40), (20, 36), (64, 24)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


@pytest.fixture(scope="module", params=sorted(tiny_dual_encoders.BUILDERS))
def tiny_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model of one dual-encoder type, saved with save_pretrained."""
    build = tiny_dual_encoders.BUILDERS[request.param]
    return build(tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> Adapter:
    return load_adapter(str(tiny_dir))


def test_the_clip_family_detects_and_loads_it(tiny: Adapter, tiny_dir: Path) -> None:
    assert tiny.meta.family == CLIP
    assert tiny.meta.modalities == ("image", "text", "video")
    assert np.asarray(tiny.encode([{"text": "a cat"}])).shape == (1, tiny.meta.embed_dim)
    siglip2 = "siglip2" in tiny_dir.name
    assert tiny.meta.options["padding"] == ("max_length" if siglip2 else "longest")
    assert tiny.meta.options["max_length"] == (64 if siglip2 else 16)


def test_vectors_equal_the_models_own_features(tiny: Adapter, tiny_dir: Path) -> None:
    """Texts, images and fused items equal get_text_features/get_image_features on the same
    inputs, preprocessed by the model's own tokenizer and image processor in one batch."""
    model = AutoModel.from_pretrained(tiny_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    processor = AutoImageProcessor.from_pretrained(tiny_dir)
    padding = tiny.meta.options["padding"]
    images = _images()
    with torch.no_grad():
        text_inputs = tokenizer(
            TEXTS,
            padding=padding,
            truncation=True,
            max_length=tiny.meta.options["max_length"],
            return_tensors="pt",
        )
        texts = model.get_text_features(**text_inputs).pooler_output.numpy()
        pixels = model.get_image_features(**processor(images=images, return_tensors="pt"))
        pictures = pixels.pooler_output.numpy()
    np.testing.assert_allclose(tiny.encode([{"text": t} for t in TEXTS]), texts, atol=1e-5)
    np.testing.assert_allclose(tiny.encode([{"image": i} for i in images]), pictures, atol=1e-5)
    fused = tiny.encode([{"text": t, "image": i} for t, i in zip(TEXTS, images, strict=True)])
    np.testing.assert_allclose(fused, texts + pictures, atol=1e-5)


def test_harness_run_scores_a_demo_task(tiny_dir: Path, tmp_path: Path) -> None:
    assert run_cli(tiny_dir, TASK, tmp_path, "--limit", "4") == 0
    result = read_result_json(tmp_path, TASK)
    assert result["harness"]["model"]["family"] == CLIP
    [scores] = result["scores"]["test"]
    assert 0.0 <= scores["main_score"] <= 1.0


def test_siglip2_keeps_each_images_aspect_in_patches(tmp_path: Path) -> None:
    """NaFlex: a wide image becomes a wide grid of patches, padded to max_num_patches."""
    adapter = load_adapter(str(tiny_dual_encoders.build_tiny_siglip2(tmp_path / "s2")))
    assert isinstance(adapter, Preprocessing)
    arrays = adapter.preprocess({"image": _images()[3]})["image"]
    assert arrays["pixel_values"].shape[:2] == (1, tiny_dual_encoders.SIGLIP2_MAX_PATCHES)
    rows, columns = arrays["spatial_shapes"][0]
    assert columns > rows and rows * columns <= tiny_dual_encoders.SIGLIP2_MAX_PATCHES
    assert arrays["pixel_attention_mask"][0].sum() == rows * columns
    frame_size = adapter.meta.modality_options["video"]["video_frame_size"]
    assert frame_size == {"max_num_patches": 256, "patch_size": 16}


# mteb 2.26's wrappers of these model types: (module, class, whether its image path runs).
# Its ALIGN wrapper fails on images under transformers 5.23 (get_image_features returns an
# output object it calls .cpu() on), so ALIGN's images are checked against the model alone.
MTEB_WRAPPERS = {
    "siglip2": ("siglip_models", "SiglipModelWrapper", True),
    "metaclip_2": ("metaclip_models", "MetaClip2Model", True),
    "align": ("align_models", "ALIGNModel", False),
}


@pytest.mark.parametrize("model_type", sorted(MTEB_WRAPPERS))
def test_vectors_equal_mtebs_wrapper(model_type: str, tmp_path: Path) -> None:
    """mteb 2.26's own wrapper (AutoProcessor, its padding, raw features) on the same model:
    texts, and images of different aspect ratios where its image path runs, come out the
    same here."""
    module, name, images_run = MTEB_WRAPPERS[model_type]
    wrapper_class = getattr(
        importlib.import_module(f"mteb.models.model_implementations.{module}"), name
    )
    directory = tiny_dual_encoders.BUILDERS[model_type](tmp_path / model_type)
    wrapper = wrapper_class(str(directory), revision=None, device="cpu")
    adapter = load_adapter(str(directory))
    texts: DataLoader[Any] = DataLoader([{"text": t} for t in TEXTS], batch_size=3)  # type: ignore[arg-type]
    theirs = np.asarray(wrapper.get_text_embeddings(texts, show_progress_bar=False))
    np.testing.assert_allclose(adapter.encode([{"text": t} for t in TEXTS]), theirs, atol=1e-5)
    if images_run:
        images: DataLoader[Any] = DataLoader(
            [{"image": image} for image in _images()],  # type: ignore[arg-type]
            batch_size=3,
            collate_fn=lambda rows: {"image": [row["image"] for row in rows]},
        )
        theirs = np.asarray(wrapper.get_image_embeddings(images, show_progress_bar=False))
        ours = adapter.encode([{"image": image} for image in _images()])
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_blip_is_not_taken_for_a_dual_encoder(tmp_path: Path) -> None:
    """BlipModel has both feature methods, but BLIP's hub checkpoints (captioning, VQA,
    retrieval) lack its projections: the clip family does not claim the type."""
    text = _text_tower(tiny_dual_encoders.bert_tokenizer())
    vision = _tower(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE)
    torch.manual_seed(SEED)
    BlipModel(BlipConfig(text_config=text, vision_config=vision)).save_pretrained(tmp_path)
    with pytest.raises(HarnessError, match="a 'blip' model that the harness cannot load"):
        load_adapter(str(tmp_path))


def test_a_checkpoint_missing_weights_is_refused(tmp_path: Path) -> None:
    """Weights the checkpoint lacks would be random: loading names them and stops."""
    directory = tiny_dual_encoders.build_tiny_chinese_clip(tmp_path / "partial")
    [weights] = directory.glob("*.safetensors")
    tensors = load_file(weights)
    del tensors["text_projection.weight"]
    save_file(tensors, weights, metadata={"format": "pt"})
    adapter = load_adapter(str(directory))
    with pytest.raises(HarnessError, match=r"no weights for text_projection\.weight"):
        adapter.encode([{"text": "a cat"}])


def test_siglip2_checkpoints_are_registered_as_mteb_lists_them() -> None:
    """Every SigLIP 2 checkpoint of mteb's catalogue, at mteb's revision, with its parameter
    count and embedding size in the description."""
    import mteb

    listed = {m.name: m for m in mteb.get_model_metas() if m.name and "/siglip2-" in m.name}
    ours = {
        name: e for name, e in registered_models().items() if name.startswith("google/siglip2-")
    }
    assert ours.keys() == listed.keys() and len(ours) == 15
    for name, entry in ours.items():
        meta = listed[name]
        assert (entry.family, entry.resolved_source()) == (CLIP, name)
        assert entry.revision == meta.revision, name
        assert f"{meta.n_parameters:,} parameters, {meta.embed_dim}-d" in entry.description
