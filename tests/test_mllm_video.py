"""Video in the MLLM adapter, on tiny random Qwen2-VL, Qwen2.5-VL and Qwen2.5-Omni thinker models:
frames become patches as ``Qwen2VLVideoProcessor`` makes them, prompts and vectors are those of
mteb's LCO-Embedding wrapper (run here with the real transformers processors), and ``harness
run`` embeds t2v and va2t retrieval datasets."""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import torch
import transformers
from torch.utils.data import DataLoader, Dataset
from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoTokenizer, processing_utils
from transformers.feature_extraction_utils import BatchFeature
from transformers.video_processing_utils import BaseVideoProcessor, VideoProcessorMixin
from transformers.video_utils import make_batched_metadata

from harness.core.audio import Waveform
from harness.core.errors import BadInputError, HarnessError
from harness.core.video import FrameSampling, Video, encode_video
from harness.model_adapters import load_adapter
from harness.model_adapters.mllm import MllmAdapter
from harness.model_adapters.mllm_video import VideoPatches
from tests import tiny_models
from tests.dataset_fixtures import read_result_json, retrieval_task_yaml, run_cli, write_hub_dataset

BUILDERS = {
    "qwen2_vl": tiny_models.build_tiny_qwen2_vl,
    "qwen2_5_vl": tiny_models.build_tiny_qwen2_5_vl,
    "qwen2_5_omni_thinker": tiny_models.build_tiny_qwen2_5_omni_thinker,
}
PROCESSORS: dict[str, Any] = {
    "qwen2_vl": transformers.Qwen2VLProcessor,
    "qwen2_5_vl": transformers.Qwen2_5_VLProcessor,
    "qwen2_5_omni_thinker": transformers.Qwen2_5OmniProcessor,
}
# The tokens the Qwen processors read from the tokenizer (the hub tokenizers name them).
SPECIAL_TOKENS = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "audio_token": "<|AUDIO|>",
    "vision_bos_token": "<|vision_start|>",
    "vision_eos_token": "<|vision_end|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
VIDEO_PART = "<|vision_start|><|video_pad|><|vision_end|>"
AUDIO_PART = "<|audio_bos|><|AUDIO|><|audio_eos|>"
RATE = 16_000
CAPTIONS = ("a red square", "a green square", "a blue square", "a yellow square")
COLOURS = ((220, 30, 30), (30, 200, 40), (40, 60, 230), (230, 220, 30))


def _frames(n: int, seed: int, height: int = 32, width: int = 32) -> np.ndarray:
    """``n`` frames of a coloured square moving right over a noisy background."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, (n, height, width, 3), dtype=np.uint8)
    for t in range(n):
        x = (4 + 2 * t) % (width - 8)
        frames[t, 10:20, x : x + 8] = COLOURS[seed % len(COLOURS)]
    return frames


def _clip(seed: int, n: int = 8, fps: float = 8.0) -> bytes:
    return encode_video(_frames(n, seed), fps)


def _tone(seed: int, seconds: float = 0.5) -> Waveform:
    t = np.arange(int(RATE * seconds)) / RATE
    return Waveform((0.3 * np.sin(2 * np.pi * (220 + 110 * seed) * t)).astype(np.float32), RATE)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        kind: build(tmp_path_factory.mktemp(f"tiny-{kind}")) for kind, build in BUILDERS.items()
    }


@pytest.fixture(scope="module")
def adapters(model_dirs: dict[str, Path]) -> dict[str, MllmAdapter]:
    loaded = {kind: load_adapter(str(directory)) for kind, directory in model_dirs.items()}
    assert all(isinstance(adapter, MllmAdapter) for adapter in loaded.values())
    return loaded  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def _without_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    """What torchvision's absence hides: mteb's audio collator imports torchaudio even when no
    clip needs resampling, and processors check their video processor against a class that
    transformers exports only with torchvision."""
    monkeypatch.setitem(sys.modules, "torchaudio", types.ModuleType("torchaudio"))
    exports = processing_utils.transformers_module
    monkeypatch.setattr(exports, "VideoProcessorMixin", VideoProcessorMixin, raising=False)


def _patches(min_pixels: int = 56 * 56, max_pixels: int = 112 * 112) -> VideoPatches:
    return VideoPatches(
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        mean=(0.48145466, 0.4578275, 0.40821073),
        std=(0.26862954, 0.26130258, 0.27577711),
        rescale_factor=1 / 255,
    )


def test_patches_follow_the_documented_algorithm() -> None:
    """Frames already sized to multiples of 28 within the bounds are not resized; an odd frame
    count repeats the last frame; patches run merge window by merge window, each flattened as
    (channel, frame of the pair, row, column)."""
    frames = _frames(3, seed=1, height=56, width=84)
    out = _patches()(frames)
    assert out["video_grid_thw"].tolist() == [[2, 4, 6]]
    assert out["pixel_values_videos"].dtype == np.float32
    mean, std = np.array(_patches().mean), np.array(_patches().std)
    normalised = ((frames / 255.0 - mean) / std).transpose(0, 3, 1, 2)  # (T, C, H, W)
    normalised = np.concatenate([normalised, normalised[-1:]])  # 3 frames -> 2 pairs
    rows = []
    for t in range(2):
        for block_row in range(2):
            for block_col in range(3):
                for r in range(2):
                    for c in range(2):
                        top, left = (2 * block_row + r) * 14, (2 * block_col + c) * 14
                        pair = normalised[2 * t : 2 * t + 2, :, top : top + 14, left : left + 14]
                        rows.append(pair.transpose(1, 0, 2, 3).reshape(-1))
    np.testing.assert_allclose(out["pixel_values_videos"], np.stack(rows), atol=1e-5)


@pytest.mark.parametrize(
    ("size", "bounds", "grid"),
    [
        ((32, 32), (56 * 56, 112 * 112), [1, 4, 4]),  # enlarged to the minimum
        ((32, 48), (128 * 28 * 28, 768 * 28 * 28), [1, 20, 28]),  # the Omni processor's bounds
        ((240, 320), (56 * 56, 112 * 112), [1, 6, 8]),  # shrunk to the maximum
    ],
)
def test_frames_are_resized_within_the_bounds(
    size: tuple[int, int], bounds: tuple[int, int], grid: list[int]
) -> None:
    out = _patches(*bounds)(_frames(2, seed=0, height=size[0], width=size[1]))
    assert out["video_grid_thw"].tolist() == [grid]
    assert out["pixel_values_videos"].shape == (np.prod(grid), 3 * 2 * 14 * 14)


def test_patches_equal_the_real_video_processor() -> None:
    """Bit for bit, where torchvision (which the real processor needs) is installed."""
    pytest.importorskip("torchvision")
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    for frames, bounds in (
        (_frames(5, seed=2, height=32, width=48), (128 * 28 * 28, 768 * 28 * 28)),
        (_frames(4, seed=3, height=240, width=320), (56 * 56, 112 * 112)),
    ):
        processor = Qwen2VLVideoProcessor(min_pixels=bounds[0], max_pixels=bounds[1])
        expected = processor(videos=[frames], do_sample_frames=False, cap_pixels_per_frame=False)
        out = _patches(*bounds)(frames)
        np.testing.assert_array_equal(out["video_grid_thw"], expected["video_grid_thw"])
        np.testing.assert_array_equal(out["pixel_values_videos"], expected["pixel_values_videos"])


class _PortedVideoProcessor(BaseVideoProcessor):
    """The real processors' video processor where torchvision is missing, with the pixel
    computation of :class:`VideoPatches`: it honours the frame bounds a processor passes, and
    returns the metadata that frames without any get."""

    def __init__(self, patches: VideoPatches) -> None:
        super().__init__()
        self.patches = patches
        self.merge_size = patches.merge_size
        self.temporal_patch_size = patches.temporal_patch_size

    def __call__(self, videos: Any, **kwargs: Any) -> BatchFeature:  # type: ignore[override]
        size = kwargs.get("size")
        patches = self.patches
        if size is not None:
            bounds = {"min_pixels": size["shortest_edge"], "max_pixels": size["longest_edge"]}
            patches = VideoPatches(**{**vars(patches), **bounds})
        frames = [np.asarray(video).transpose(0, 2, 3, 1) for video in videos]  # from (T,C,H,W)
        outputs = [patches(video) for video in frames]
        data: dict[str, Any] = {
            key: torch.from_numpy(np.concatenate([out[key] for out in outputs]))
            for key in ("pixel_values_videos", "video_grid_thw")
        }
        if kwargs.get("return_metadata"):
            data["video_metadata"] = make_batched_metadata(videos, None)
        return BatchFeature(data=data)


def _video_processor(directory: Path, adapter: MllmAdapter) -> Any:
    """The model's video processor; its pixel computation ported where torchvision is
    missing."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return _PortedVideoProcessor(adapter.video_patches)
    return transformers.AutoVideoProcessor.from_pretrained(directory)


def _processor(kind: str, directory: Path, adapter: MllmAdapter) -> Any:
    """The model's transformers processor."""
    tokenizer = AutoTokenizer.from_pretrained(directory, extra_special_tokens=SPECIAL_TOKENS)
    tokenizer.padding_side = "left"
    parts: dict[str, Any] = {
        "image_processor": AutoImageProcessor.from_pretrained(directory),
        "video_processor": _video_processor(directory, adapter),
        "tokenizer": tokenizer,
        "chat_template": tiny_models.QWEN_CHAT_TEMPLATE,
    }
    if kind == "qwen2_5_omni_thinker":
        parts["feature_extractor"] = AutoFeatureExtractor.from_pretrained(directory)
    return PROCESSORS[kind](**parts)


class _Recorder:
    """A processor that records each call's prompts and outputs. A Qwen2-VL/2.5-VL processor
    gets mteb's call without the Omni-only arguments it refuses (audio, ``use_audio_in_video``)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.omni = isinstance(processor, transformers.Qwen2_5OmniProcessor)
        self.calls: list[tuple[list[str], BatchFeature]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.processor, name)

    def __call__(self, **kwargs: Any) -> BatchFeature:
        if not self.omni:
            assert kwargs.pop("audio") is None
            del kwargs["audio_kwargs"], kwargs["videos_kwargs"]["use_audio_in_video"]
        out = self.processor(**kwargs)
        self.calls.append((kwargs["text"], out))
        return out


class _Decoder:
    """What mteb's frame collator reads from torchcodec's ``VideoDecoder``."""

    def __init__(self, video: Video) -> None:
        self.metadata = types.SimpleNamespace(
            num_frames=video.num_frames, end_stream_seconds=video.seconds
        )
        self._frames = torch.from_numpy(video.frames(FrameSampling())).permute(0, 3, 1, 2)

    def get_frames_at(self, indices: list[int]) -> Any:
        return types.SimpleNamespace(data=self._frames[indices])


class _Rows(Dataset[dict[str, Any]]):
    """A dataset of rows with the ``features`` mteb's wrapper looks at."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.features = dict.fromkeys(rows[0])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(self.rows[index])


def _mteb_lco(adapter: MllmAdapter, processor: Any, items: list[dict[str, Any]]) -> np.ndarray:
    """mteb's ``LCOEmbedding.encode`` on the items, with the adapter's model and the real
    processor; clips reach it as torchcodec decoders would, audio as dataset rows do."""
    from mteb.models.model_implementations.lco_embedding_models import LCOEmbedding

    wrapper = LCOEmbedding.__new__(LCOEmbedding)
    wrapper.model, wrapper.processor, wrapper.device = adapter.model, processor, "cpu"
    wrapper.fps, wrapper.max_frames, wrapper.num_frames = 2.0, 64, None
    wrapper.sampling_rate = RATE
    wrapper.max_audio_length = int(adapter.meta.options.get("max_audio_seconds", 1) * RATE)

    def row(item: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {"video": _Decoder(Video(item["video"]))}
        if "audio" in item:
            values["audio"] = {"array": item["audio"].samples, "sampling_rate": RATE}
        if "text" in item:
            values["text"] = item["text"]
        return values

    loader = DataLoader(_Rows([row(item) for item in items]), batch_size=len(items))
    return np.asarray(wrapper.encode(loader, task_metadata=None, hf_split="test", hf_subset=""))


def _decoded(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**item, "video": Video(item["video"])} for item in items]


KINDS: dict[str, list[dict[str, Any]]] = {
    "v": [{"video": _clip(0)}, {"video": _clip(1, n=6, fps=4.0)}, {"video": _clip(2, n=12)}],
    "vt": [
        {"video": _clip(0), "text": "a red square"},
        {"video": _clip(3, n=6, fps=4.0), "text": "two dogs running in the park"},
    ],
    "va": [
        {"video": _clip(1), "audio": _tone(0)},
        {"video": _clip(2, n=6, fps=4.0), "audio": _tone(1, seconds=0.8)},
    ],
}


@pytest.mark.parametrize(
    ("kind", "items_kind"),
    [(kind, "v") for kind in BUILDERS]
    + [(kind, "vt") for kind in BUILDERS]
    + [("qwen2_5_omni_thinker", "va")],
)
def test_prompts_tokens_and_vectors_equal_mtebs_lco_wrapper(
    adapters: dict[str, MllmAdapter], model_dirs: dict[str, Path], kind: str, items_kind: str
) -> None:
    """mteb's wrapper, run with the real processor of each model: the prompts it renders, the
    token ids and video inputs it feeds the model, and its vectors are the adapter's."""
    adapter = adapters[kind]
    items = KINDS[items_kind]
    processor = _Recorder(_processor(kind, model_dirs[kind], adapter))
    theirs = _mteb_lco(adapter, processor, items)
    decoded = _decoded(items)
    preprocessed = [adapter.preprocess(item) for item in decoded]
    [(prompts, expected)] = processor.calls
    assert prompts == [adapter.prompt(item) for item in preprocessed]
    ours = adapter.model_inputs(
        prompts,
        [],
        [item["audio"] for item in preprocessed if "audio" in item],
        [item["video"] for item in preprocessed],
    )
    for key in ("input_ids", "attention_mask", "video_grid_thw", "pixel_values_videos"):
        np.testing.assert_array_equal(ours[key].numpy(), expected[key].numpy())
    time_key = adapter.video_patches.time_key
    if time_key is None:
        assert not {"second_per_grid_ts", "video_second_per_grid"} & set(expected)
    else:
        np.testing.assert_array_equal(ours[time_key].numpy(), expected[time_key].numpy())
    if "mm_token_type_ids" in expected:
        np.testing.assert_array_equal(ours["mm_token_type_ids"], expected["mm_token_type_ids"])
    # 32 x 32 frames: enlarged to 56 x 56, or to 336 x 336 within the Omni processor's bounds
    side = 24 if kind == "qwen2_5_omni_thinker" else 4
    assert expected["video_grid_thw"][:, 1:].tolist() == [[side, side]] * len(items)
    np.testing.assert_allclose(adapter.encode(decoded), theirs, atol=1e-5)


def test_prompts_name_each_part_in_mtebs_order(adapters: dict[str, MllmAdapter]) -> None:
    adapter = adapters["qwen2_5_omni_thinker"]
    video, audio = Video(_clip(0)), _tone(0)
    user, end = "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"
    suffix = "\nSummarize the above {} in one word:" + end
    assert adapter.prompt({"video": video}).endswith(f"{user}{VIDEO_PART}" + suffix.format("video"))
    assert adapter.prompt({"video": video, "audio": audio, "text": "sky"}).endswith(
        f"{user}{VIDEO_PART}{AUDIO_PART}sky" + suffix.format("video")
    )
    image = {"pixel_values": np.zeros((4, 1176), np.float32), "image_grid_thw": [[1, 2, 2]]}
    assert adapter.prompt({"video": video, "image": image}).endswith(suffix.format("image"))


def test_vector_is_the_last_tokens_final_hidden_state(adapters: dict[str, MllmAdapter]) -> None:
    adapter = adapters["qwen2_5_vl"]
    items = [adapter.preprocess(item) for item in _decoded(KINDS["vt"])]
    inputs = adapter.model_inputs(
        [adapter.prompt(item) for item in items], [], [], [item["video"] for item in items]
    )
    video_id = adapter.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    counts = (inputs["input_ids"] == video_id).sum(dim=1).tolist()
    assert counts == (inputs["video_grid_thw"].prod(dim=1) // 4).tolist()
    with torch.no_grad():
        hidden = adapter.model(**inputs, output_hidden_states=True).hidden_states[-1][:, -1]
    expected = torch.nn.functional.normalize(hidden, dim=-1).numpy()
    np.testing.assert_allclose(adapter.encode(items), expected, atol=1e-6)


def test_preprocess_is_idempotent_and_returns_numpy(adapters: dict[str, MllmAdapter]) -> None:
    adapter = adapters["qwen2_5_omni_thinker"]
    items = _decoded(KINDS["va"])
    preprocessed = [adapter.preprocess(item) for item in items]
    for item in preprocessed:
        assert all(isinstance(value, np.ndarray) for value in item["video"].values())
        assert adapter.preprocess(item) is item
    np.testing.assert_array_equal(adapter.encode(preprocessed), adapter.encode(items))
    together = adapter.encode(items + _decoded(KINDS["v"]) + [{"text": "sky"}])
    alone = np.concatenate([adapter.encode([item]) for item in items])
    np.testing.assert_allclose(together[: len(items)], alone, atol=1e-5)
    with_audio, without = adapter.encode([items[0], {"video": items[0]["video"]}])
    assert np.abs(with_audio - without).max() > 1e-3


def test_sampling_and_bounds_are_recorded_options(
    adapters: dict[str, MllmAdapter], model_dirs: dict[str, Path]
) -> None:
    default = adapters["qwen2_5_vl"]
    assert default.meta.modality_options["video"]["video_fps"] == 2.0
    assert default.meta.modality_options["video"]["video_max_frames"] == 64
    assert default.meta.modality_options["video"]["video_min_frames"] == 1
    assert default.meta.modality_options["video"]["video_min_pixels"] == tiny_models.MLLM_MIN_PIXELS
    assert default.meta.modality_options["video"]["video_max_pixels"] == tiny_models.MLLM_MAX_PIXELS
    omni = adapters["qwen2_5_omni_thinker"].meta.modality_options["video"]
    assert (omni["video_min_pixels"], omni["video_max_pixels"]) == (100_352, 602_112)
    directory = str(model_dirs["qwen2_5_vl"])
    fixed = load_adapter(directory, options={"video_num_frames": 4, "video_max_pixels": 3136})
    assert fixed.meta.modality_options["video"]["video_num_frames"] == 4
    assert "video_fps" not in fixed.meta.modality_options["video"]
    # Video settings key video items only: text, image and audio keep their keys and results.
    assert fixed.meta.fingerprint == default.meta.fingerprint
    assert fixed.meta.key_fingerprint(["video"]) != default.meta.key_fingerprint(["video"])
    [item] = [fixed.preprocess(item) for item in _decoded(KINDS["v"][:1])]
    assert item["video"]["video_grid_thw"].tolist() == [[2, 4, 4]]  # 4 frames of 56 x 56
    [vector] = fixed.encode(_decoded(KINDS["v"][:1]))
    assert np.abs(vector - default.encode(_decoded(KINDS["v"][:1]))[0]).max() > 1e-3


def test_min_frames_option_sets_the_floor(model_dirs: dict[str, Path]) -> None:
    adapter = load_adapter(str(model_dirs["qwen2_vl"]), options={"video_min_frames": 6})
    assert adapter.meta.modality_options["video"]["video_min_frames"] == 6
    [item] = [adapter.preprocess(item) for item in _decoded(KINDS["v"][:1])]  # 1 s at 2 fps
    assert item["video"]["video_grid_thw"].tolist() == [[3, 4, 4]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"video_fps": 1.0, "video_num_frames": 4}, "either fps or num_frames"),
        ({"video_max_frames": 0}, "max_frames must be at least 1"),
        ({"video_max_pixels": 0}, "video_max_pixels must be a positive integer"),
        ({"video_frames": 4}, "unknown option"),
    ],
)
def test_bad_video_options_are_clear_errors(
    model_dirs: dict[str, Path], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(HarnessError, match=message):
        load_adapter(str(model_dirs["qwen2_vl"]), options=options)


def test_e5v_preset_has_no_video_prompt(model_dirs: dict[str, Path]) -> None:
    adapter = load_adapter(str(model_dirs["qwen2_vl"]), options={"preset": "e5v"})
    with pytest.raises(BadInputError, match="no prompt for video items"):
        adapter.encode(_decoded(KINDS["v"][:1]))


def _video_retrieval(root: Path, category: str) -> Path:
    """Four clips (with audio tracks for a ``va`` side) and their captions, the clips typed
    ``datasets.Video`` and the tracks ``datasets.Audio`` (cast from stored bytes)."""
    stored = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    clips = [
        {
            "id": f"{'q' if category[0] != 't' else 'd'}{i}",
            "video": {"bytes": _clip(i), "path": None},
        }
        for i in range(4)
    ]
    texts = [
        {"id": f"{'q' if category[0] == 't' else 'd'}{i}", "text": c}
        for i, c in enumerate(CAPTIONS)
    ]
    video_features = {"id": datasets.Value("string"), "video": stored}
    if "a" in category.split("2")[0]:
        for i, row in enumerate(clips):
            row["audio"] = {"bytes": _wav(_tone(i)), "path": None}
        video_features["audio"] = stored
    text_features = {"id": datasets.Value("string"), "text": datasets.Value("string")}
    queries, corpus = (texts, clips) if category[0] == "t" else (clips, texts)
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(4)]
    qrel_features = {
        "query-id": datasets.Value("string"),
        "corpus-id": datasets.Value("string"),
        "score": datasets.Value("int64"),
    }
    features = (text_features, video_features)
    query_features, corpus_features = features if category[0] == "t" else features[::-1]
    parts = {
        "corpus": (corpus, datasets.Features(corpus_features)),
        "queries": (queries, datasets.Features(query_features)),
        "qrels": (qrels, datasets.Features(qrel_features)),
    }
    write_hub_dataset(root, parts)
    for config, columns in (("corpus", corpus_features), ("queries", query_features)):
        if "video" not in columns:
            continue
        [path] = (root / config).glob("*.parquet")
        typed = {**columns, "video": datasets.Video()}
        if "audio" in columns:
            typed["audio"] = datasets.Audio()
        datasets.Dataset.from_parquet(str(path)).cast(datasets.Features(typed)).to_parquet(
            str(path)
        )
    return root


def _wav(clip: Waveform) -> bytes:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, clip.samples, clip.sampling_rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("kind", "category"),
    [("qwen2_5_vl", "t2v"), ("qwen2_5_omni_thinker", "t2v"), ("qwen2_5_omni_thinker", "va2t")],
)
def test_cli_runs_video_retrieval(
    model_dirs: dict[str, Path], tmp_path: Path, kind: str, category: str
) -> None:
    data = _video_retrieval(tmp_path / "data", category)
    task = retrieval_task_yaml(tmp_path / "task.yaml", "TinyVideoRetrieval", data, category)
    assert run_cli(model_dirs[kind], task, tmp_path, "--batch-size", "3") == 0
    result = read_result_json(tmp_path, "TinyVideoRetrieval")
    [scores] = result["scores"]["test"]
    assert 0.0 <= scores["main_score"] <= 1.0
    model = result["harness"]["model"]
    assert model["family"] == "mllm"
    assert "video" in model["modalities"]
    options: Mapping[str, Any] = model["modality_options"]["video"]
    assert options["video_fps"] == 2.0 and options["video_max_frames"] == 64
