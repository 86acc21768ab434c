"""The CLIP family's frame-pooling baseline for video, on a tiny random ``CLIPModel``: the mean of
the image tower's embeddings of the sampled frames, equal to mteb's ``Video2ImagesWrapper`` around
mteb's CLIP wrapper on identical clips; default settings that leave the fingerprint (hence image
and text cache keys) as it was; and ``harness run`` end to end on a tiny t2v retrieval task."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from harness.core.adapter import Adapter
from harness.core.errors import HarnessError
from harness.core.video import FrameSampling, Video
from harness.model_adapters import load_adapter
from harness.model_adapters.clip import ClipAdapter
from harness.tasks.demo.build import QREL_FEATURES
from harness.tasks.demo.clips import demo_clips
from harness.tasks.demo.video import ITEM_FEATURES
from tests import tiny_models
from tests.dataset_fixtures import read_result_json, run_cli, write_hub_dataset

# The options of a clip-family model before video existed: unchanged by default.
IMAGE_TEXT_OPTIONS = {"padding", "max_length", "fusion", "image_processor"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.build_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def adapter(model_dir: Path) -> ClipAdapter:
    loaded = load_adapter(str(model_dir))
    assert isinstance(loaded, ClipAdapter)
    return loaded


def clip_bytes(n_frames: int, seed: int, size: tuple[int, int] = (32, 48)) -> bytes:
    """A bright square moving right over noise, ``n_frames`` frames at 8 fps."""
    from harness.core.video import encode_video

    rng = np.random.default_rng(seed)
    height, width = size
    frames = rng.integers(0, 80, (n_frames, height, width, 3)).astype(np.uint8)
    for k in range(n_frames):
        left = k * (width - 10) // max(1, n_frames - 1)
        frames[k, 10:20, left : left + 10] = (230, 40 * (seed % 5), 30)
    return encode_video(frames, 8.0)


def image_tower_mean(adapter: ClipAdapter, frames: np.ndarray) -> np.ndarray:
    """The mean of the model's image features of ``frames``, computed directly."""
    images = [Image.fromarray(frame) for frame in frames]
    pixels = adapter.image_processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        output = adapter.model.get_image_features(pixel_values=pixels)
    features = output if isinstance(output, torch.Tensor) else output.pooler_output
    return features.mean(dim=0).numpy()


def test_default_sampling_keeps_the_image_and_text_fingerprint(model_dir: Path) -> None:
    adapter = load_adapter(str(model_dir))
    assert isinstance(adapter, ClipAdapter)
    assert adapter.meta.modalities == ("image", "text", "video")
    assert set(adapter.meta.options) == IMAGE_TEXT_OPTIONS
    assert adapter.frame_sampling == FrameSampling(num_frames=8)
    video = adapter.meta.modality_options["video"]
    assert {"video_num_frames": 8, "video_pooling": "mean"}.items() <= video.items()
    assert video["video_frame_size"]
    eight = load_adapter(str(model_dir), options={"video_num_frames": 8})
    assert eight.meta == adapter.meta  # the default, said out loud
    by_rate = load_adapter(str(model_dir), options={"video_fps": 4.0, "video_max_frames": 3})
    assert isinstance(by_rate, ClipAdapter)
    assert by_rate.frame_sampling == FrameSampling(fps=4.0, max_frames=3)
    assert {"video_fps": 4.0, "video_max_frames": 3, "video_min_frames": 1}.items() <= (
        by_rate.meta.modality_options["video"].items()
    )
    # Video sampling keys video items only: image and text keys and results stay as they were.
    assert by_rate.meta.fingerprint == adapter.meta.fingerprint
    assert by_rate.meta.key_fingerprint(["video"]) != adapter.meta.key_fingerprint(["video"])
    for bad in ({"video_fps": 2.0, "video_num_frames": 4}, {"video_num_frames": 0}):
        with pytest.raises(HarnessError, match="video options"):
            load_adapter(str(model_dir), options=bad)


@pytest.mark.parametrize(
    ("n_frames", "options", "picked"),
    [
        (12, {}, [0, 2, 3, 5, 6, 8, 9, 11]),  # 8 of 12, evenly spaced
        (5, {}, [0, 0, 1, 1, 2, 3, 3, 4]),  # a short clip repeats frames in place
        (16, {"video_fps": 4.0, "video_max_frames": 3}, [0, 8, 15]),  # 2 s at 4 fps, capped
    ],
)
def test_vectors_are_the_mean_of_the_image_tower_on_the_sampled_frames(
    model_dir: Path, n_frames: int, options: dict[str, Any], picked: list[int]
) -> None:
    adapter = load_adapter(str(model_dir), options=options)
    assert isinstance(adapter, ClipAdapter)
    data = clip_bytes(n_frames, seed=n_frames)
    video = Video(data)
    assert video.frame_indices(adapter.frame_sampling) == picked
    expected = image_tower_mean(adapter, video.frames(FrameSampling())[picked])
    direct = adapter.encode([{"video": Video(data)}])
    in_workers = adapter.encode([adapter.preprocess({"video": Video(data)})])
    np.testing.assert_allclose(direct[0], expected, atol=1e-6)
    np.testing.assert_array_equal(in_workers, direct)


def test_batches_mix_videos_images_and_texts(adapter: ClipAdapter) -> None:
    clips = [clip_bytes(n, seed) for seed, n in enumerate((8, 3, 10))]
    image = Image.fromarray(Video(clips[0]).frames(FrameSampling(num_frames=1))[0])
    items: list[dict[str, Any]] = [
        {"video": Video(clips[0])},
        {"text": "a red square"},
        {"video": Video(clips[1])},
        {"image": image},
        {"video": Video(clips[2]), "text": "a red square"},
    ]
    vectors = adapter.encode(items)
    alone = [adapter.encode([item])[0] for item in items[:4]]
    np.testing.assert_allclose(vectors[:4], np.stack(alone), atol=1e-5)
    fused = adapter.encode([{"video": Video(clips[2])}])[0] + alone[1]
    np.testing.assert_allclose(vectors[4], fused, atol=1e-5)


class _DecoderLike:
    """What mteb's frame collator reads from torchcodec's ``VideoDecoder`` (its metadata and
    ``get_frames_at``), served from every frame of the clip decoded in order."""

    def __init__(self, data: bytes) -> None:
        video = Video(data)
        self._frames = video.frames(FrameSampling())
        self.metadata = SimpleNamespace(
            num_frames=video.num_frames, end_stream_seconds=video.seconds
        )

    def get_frames_at(self, indices: list[int]) -> SimpleNamespace:
        return SimpleNamespace(data=torch.from_numpy(self._frames[indices]).permute(0, 3, 1, 2))


class _VideoRows(list[dict[str, Any]]):
    """Rows of a video column, with the ``features`` the wrapper reads off its dataset."""

    features: ClassVar[dict[str, None]] = {"video": None}


def _frame_bmp(frame: torch.Tensor) -> dict[str, Any]:
    """mteb's frame-to-BMP step without torchvision (not installed): the same lossless bytes."""
    buffer = io.BytesIO()
    Image.fromarray(frame.permute(1, 2, 0).numpy()).save(buffer, format="BMP")
    return {"bytes": buffer.getvalue(), "path": None}


def _mteb_pooled(model_dir: Path, clips: Sequence[bytes], **sampling: Any) -> np.ndarray:
    import mteb
    from mteb.models.model_implementations.clip_models import CLIPModel
    from mteb.models.video_wrappers.video2images_wrapper import Video2ImagesWrapper

    model = CLIPModel(str(model_dir), revision=None, device="cpu")  # type: ignore[arg-type]
    model.mteb_model_meta = mteb.get_model_meta("openai/clip-vit-base-patch32")
    wrapper = Video2ImagesWrapper(model, **sampling)
    rows = _VideoRows({"video": _DecoderLike(data)} for data in clips)
    loader: DataLoader[Any] = DataLoader(rows, batch_size=2)  # type: ignore[arg-type]
    task = mteb.get_task("MSVDT2VRetrieval")
    return np.asarray(
        wrapper.encode(
            loader,
            task_metadata=task.metadata,
            hf_split="test",
            hf_subset="default",
            show_progress_bar=False,
        )
    )


@pytest.mark.parametrize(
    ("sampling", "options"),
    [({}, {}), ({"fps": 4.0, "max_frames": 3}, {"video_fps": 4.0, "video_max_frames": 3})],
)
def test_vectors_equal_mtebs_video2images_wrapper(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, sampling: dict[str, Any], options: dict
) -> None:
    from mteb.models.video_wrappers import video2images_wrapper

    monkeypatch.setattr(video2images_wrapper, "_frame_to_bytes", _frame_bmp)
    clips = [clip_bytes(n, seed) for seed, n in enumerate((12, 5, 16))]
    theirs = _mteb_pooled(model_dir, clips, **sampling)
    adapter: Adapter = load_adapter(str(model_dir), options=options)
    ours = adapter.encode([{"video": Video(data)} for data in clips])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_harness_run_on_a_tiny_t2v_task(model_dir: Path, tmp_path: Path) -> None:
    clips = demo_clips(6, 11)
    queries = [
        {"id": f"q{i}", "modality": "text", "text": clip.caption, "video": None}
        for i, clip in enumerate(clips)
    ]
    corpus = [
        {"id": f"d{i}", "modality": "video", "text": None, "video": {"bytes": clip.mp4()}}
        for i, clip in enumerate(clips)
    ]
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(6)]
    data = write_hub_dataset(
        tmp_path / "data",
        {
            "corpus": (corpus, ITEM_FEATURES),
            "queries": (queries, ITEM_FEATURES),
            "qrels": (qrels, QREL_FEATURES),
        },
    )
    task = tmp_path / "task.yaml"
    task.write_text(
        f"name: TinyT2V\ntype: retrieval\ncategory: t2v\ndataset: {{path: {data}}}\n"
        "eval_splits: [test]\n"
    )
    assert run_cli(model_dir, task, tmp_path) == 0
    result = read_result_json(tmp_path, "TinyT2V")
    [scores] = result["scores"]["test"]
    assert 0 < scores["main_score"] == scores["ndcg_at_10"] <= 1
    harness = result["harness"]
    assert set(harness["model"]["options"]) == IMAGE_TEXT_OPTIONS
    assert harness["model"]["modalities"] == ["image", "text", "video"]
    assert harness["environment"]["video_decoder"].startswith("PyAV")
    assert harness["encoding"]["items_encoded"] == 12
    assert harness["encoding"]["parts_decoded"] == 6  # the clips; texts need no decoding
