"""The audio adapters (CLAP, Whisper's encoder, wav2vec2-style encoders, the Qwen2.5-Omni
thinker) on tiny random models saved with save_pretrained: vectors equal to mteb's wrappers on
identical clips, and ``harness run`` end to end on a tiny audio retrieval task."""

from __future__ import annotations

import io
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import soundfile
import torch
from torch.utils.data import DataLoader

from harness.core.audio import Waveform, resample
from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters import load_adapter
from harness.model_adapters.audio_encoder import RECIPES, AudioEncoderAdapter
from harness.model_adapters.clap import ClapAdapter
from harness.model_adapters.families import AUDIO_ENCODER_MODEL_TYPES
from harness.model_adapters.mllm import MllmAdapter
from harness.model_adapters.registry import model_modalities
from tests import tiny_models
from tests.dataset_fixtures import (
    read_result_json,
    retrieval_task_yaml,
    run_cli,
    write_hub_dataset,
)

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "clap": tiny_models.build_tiny_clap,
    "clap-fusion": lambda path: tiny_models.build_tiny_clap(path, fusion=True),
    "whisper": tiny_models.build_tiny_whisper,
    "wav2vec2": tiny_models.build_tiny_wav2vec2,
    "hubert-group": lambda path: tiny_models.build_tiny_wav2vec2(path, kind="hubert", norm="group"),
    "omni": tiny_models.build_tiny_qwen2_5_omni_thinker,
}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {kind: build(tmp_path_factory.mktemp(kind)) for kind, build in BUILDERS.items()}


def _clips(rate: int, seconds: tuple[float, ...] = (0.4, 1.0, 1.7, 0.01)) -> list[Waveform]:
    """Noisy chirps of different lengths at ``rate`` Hz (one shorter than 400 samples at
    16 kHz, one longer than the tiny models' 1 s windows)."""
    rng = np.random.default_rng(7)
    clips = []
    for index, length in enumerate(seconds):
        t = np.arange(int(length * rate)) / rate
        tone = 0.4 * np.sin(2 * np.pi * (200 + 150 * index) * t * (1 + t))
        clips.append(Waveform((tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32), rate))
    return clips


def _mteb_audio(wrapper: Any, clips: list[Waveform], batch_size: int = 2) -> np.ndarray:
    """mteb's ``get_audio_embeddings`` on the clips (already at the model's rate, so its
    torchaudio resampler, not installable here, is never called)."""
    rows = [{"audio": {"array": c.samples, "sampling_rate": c.sampling_rate}} for c in clips]
    loader: DataLoader[Any] = DataLoader(rows, batch_size=batch_size)  # type: ignore[arg-type]
    return np.asarray(wrapper.get_audio_embeddings(loader, show_progress_bar=False))


@pytest.fixture(autouse=True)
def _torchaudio_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """mteb's audio collator imports torchaudio even when no clip needs resampling."""
    monkeypatch.setitem(sys.modules, "torchaudio", types.ModuleType("torchaudio"))


@pytest.mark.parametrize("kind", ["clap", "clap-fusion"])
def test_clap_equals_mteb(model_dirs: dict[str, Path], kind: str) -> None:
    from mteb.models.model_implementations.clap_models import ClapZeroShotWrapper

    adapter = load_adapter(str(model_dirs[kind]))
    assert isinstance(adapter, ClapAdapter)
    assert adapter.meta.family == "clap" and adapter.meta.modalities == ("audio", "text")
    assert adapter.meta.options["sampling_rate"] == 48_000
    assert adapter.meta.options["max_seconds"] == (None if kind == "clap-fusion" else 1.0)
    wrapper = ClapZeroShotWrapper(str(model_dirs[kind]), revision=None, device="cpu")
    clips = _clips(48_000)
    ours = adapter.encode([{"audio": clip} for clip in clips])
    np.testing.assert_allclose(ours, _mteb_audio(wrapper, clips), atol=1e-5)
    texts = ["a dog runs in the park", "red car", "the sea"]
    theirs = wrapper.get_text_embeddings(DataLoader([{"text": t} for t in texts], batch_size=2))  # type: ignore[arg-type]
    ours = adapter.encode([{"text": text} for text in texts])
    np.testing.assert_allclose(ours, np.asarray(theirs), atol=1e-5)
    with pytest.raises(HarnessError, match="max_length must be a positive integer"):
        load_adapter(str(model_dirs[kind]), options={"max_length": "77"})
    both = adapter.encode([{"audio": clips[0], "text": texts[0]}])
    alone = adapter.encode([{"audio": clips[0]}, {"text": texts[0]}])
    np.testing.assert_allclose(both[0], alone.sum(axis=0), atol=1e-6)


def test_clap_resamples_and_is_deterministic(model_dirs: dict[str, Path]) -> None:
    adapter = load_adapter(str(model_dirs["clap"]))
    [clip] = _clips(16_000, (2.5,))
    first = adapter.encode([{"audio": clip}])
    np.random.seed(123)  # the extractor's random crop must not depend on the global state
    again = adapter.encode([{"audio": clip}])
    np.testing.assert_array_equal(first, again)
    at_48k = adapter.encode([{"audio": resample(clip, 48_000)}])
    np.testing.assert_allclose(first, at_48k, atol=1e-6)


def test_whisper_equals_mteb(model_dirs: dict[str, Path]) -> None:
    from mteb.models.model_implementations.whisper_models import WhisperAudioWrapper

    adapter = load_adapter(str(model_dirs["whisper"]))
    assert isinstance(adapter, AudioEncoderAdapter)
    assert adapter.meta.modalities == ("audio",)
    assert adapter.meta.options["max_seconds"] == 1.0  # the extractor's chunk_length
    wrapper = WhisperAudioWrapper.__new__(WhisperAudioWrapper)
    wrapper.model = types.SimpleNamespace(encoder=adapter.model, dtype=torch.float32)
    wrapper.processor = adapter.feature_extractor  # WhisperProcessor forwards audio to it
    wrapper.sampling_rate, wrapper.device = 16_000, "cpu"
    wrapper.max_audio_length_seconds = 1.0
    clips = _clips(16_000)
    ours = adapter.encode([{"audio": clip} for clip in clips])
    np.testing.assert_allclose(ours, _mteb_audio(wrapper, clips), atol=1e-5)
    with pytest.raises(HarnessError, match="chunk_length"):
        load_adapter(str(model_dirs["whisper"]), options={"max_seconds": 0.5})


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert-group"])
def test_wav2vec2_style_equals_mteb(model_dirs: dict[str, Path], kind: str) -> None:
    from mteb.models.model_implementations.hubert_models import HubertWrapper
    from mteb.models.model_implementations.wav2vec2_models import Wav2Vec2AudioWrapper

    adapter = load_adapter(str(model_dirs[kind]))
    assert isinstance(adapter, AudioEncoderAdapter)
    per_clip = kind == "hubert-group"
    assert adapter.meta.options["one_clip_per_pass"] is per_clip
    wrapper_class = HubertWrapper if kind.startswith("hubert") else Wav2Vec2AudioWrapper
    wrapper = wrapper_class(str(model_dirs[kind]), revision=None, device="cpu")
    clips = _clips(16_000)
    # 6409 samples: the feature encoder's exact output length (639 frames) differs from the
    # batch's proportional one (640), so the pooled lengths must follow mteb's per type.
    clips.append(Waveform(clips[2].samples[:6409], 16_000))
    ours = adapter.encode([{"audio": clip} for clip in clips])
    np.testing.assert_allclose(ours, _mteb_audio(wrapper, clips, batch_size=5), atol=1e-5)
    alone = np.concatenate([adapter.encode([{"audio": clip}]) for clip in clips])
    np.testing.assert_allclose(ours, alone, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_family_detected_and_modalities_known_without_loading(
    model_dirs: dict[str, Path], kind: str
) -> None:
    adapter = load_adapter(str(model_dirs[kind]))
    assert model_modalities(str(model_dirs[kind])) == adapter.meta.modalities
    assert "audio" in adapter.meta.modalities
    assert adapter.meta.options["sampling_rate"] > 0


def test_audio_encoder_family_detects_every_type_it_loads() -> None:
    assert set(RECIPES) == AUDIO_ENCODER_MODEL_TYPES


def test_audio_encoder_refuses_texts_and_bad_options(model_dirs: dict[str, Path]) -> None:
    adapter = load_adapter(str(model_dirs["wav2vec2"]))
    with pytest.raises(BadInputError, match="audio clips only"):
        adapter.encode([{"text": "a cat"}])
    with pytest.raises(HarnessError, match="positive number"):
        load_adapter(str(model_dirs["wav2vec2"]), options={"max_seconds": 0})
    capped = load_adapter(str(model_dirs["wav2vec2"]), options={"max_seconds": 0.5})
    assert capped.meta.options["max_seconds"] == 0.5
    assert capped.meta.fingerprint != adapter.meta.fingerprint
    [long_clip] = _clips(16_000, (1.7,))
    cut = Waveform(long_clip.samples[:8000], 16_000)
    np.testing.assert_allclose(
        capped.encode([{"audio": long_clip}]), adapter.encode([{"audio": cut}]), atol=1e-6
    )


def test_omni_thinker_embeds_audio_as_the_processor_does(model_dirs: dict[str, Path]) -> None:
    adapter = load_adapter(str(model_dirs["omni"]))
    assert isinstance(adapter, MllmAdapter)
    assert adapter.meta.modalities == ("audio", "image", "text", "video")
    assert adapter.meta.options["max_audio_seconds"] == 30.0
    clips = _clips(16_000)[:3]
    prompt = adapter.prompt({"audio": clips[0]})
    assert "<|audio_bos|><|AUDIO|><|audio_eos|>\nSummarize the above audio in one word:" in prompt
    assert adapter.prompt({"audio": clips[0], "text": "sky"}).count(
        "sky\nSummarize the above audio"
    )
    ours = adapter.encode(
        [{"audio": clip} for clip in clips] + [{"audio": clips[0], "text": "a dog"}]
    )
    # The reference: every clip padded to the extractor's window, as Qwen2_5OmniProcessor does.
    extractor = adapter.feature_extractor
    features = extractor(
        [clip.samples for clip in clips],
        sampling_rate=16_000,
        padding="max_length",
        return_attention_mask=True,
        return_tensors="pt",
    )
    frames = features["attention_mask"].sum(-1)
    counts = ((frames - 1) // 2 + 1 - 2) // 2 + 1
    prompts = [adapter.prompt({"audio": clip}) for clip in clips]
    prompts = [
        p.replace("<|AUDIO|>", "<|AUDIO|>" * int(n)) for p, n in zip(prompts, counts, strict=True)
    ]
    tokens = adapter.tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        output = adapter.model(
            **tokens,
            input_features=features["input_features"],
            feature_attention_mask=features["attention_mask"],
            output_hidden_states=True,
        )
    reference = torch.nn.functional.normalize(output.hidden_states[-1][:, -1], dim=-1)
    np.testing.assert_allclose(ours[:3], reference.numpy(), atol=1e-5)
    assert np.abs(ours[3] - ours[0]).max() > 1e-3


def test_omni_thinker_cuts_clips_as_declared(model_dirs: dict[str, Path]) -> None:
    adapter = load_adapter(str(model_dirs["omni"]))
    capped = load_adapter(str(model_dirs["omni"]), options={"max_audio_seconds": 0.5})
    assert capped.meta.options["max_audio_seconds"] == 0.5
    assert capped.meta.fingerprint != adapter.meta.fingerprint
    [clip] = _clips(16_000, (1.7,))
    np.testing.assert_allclose(
        capped.encode([{"audio": clip}]),
        adapter.encode([{"audio": Waveform(clip.samples[:8000], 16_000)}]),
        atol=1e-6,
    )
    with pytest.raises(HarnessError, match="max_audio_seconds must be a positive number"):
        load_adapter(str(model_dirs["omni"]), options={"max_audio_seconds": -1})
    e5v = load_adapter(str(model_dirs["omni"]), options={"preset": "e5v"})
    with pytest.raises(BadInputError, match="no prompt for audio items"):
        e5v.encode([{"audio": clip}])


def test_vision_mllm_has_no_audio(tmp_path: Path) -> None:
    directory = tiny_models.build_tiny_qwen2_vl(tmp_path / "vl")
    adapter = load_adapter(str(directory))
    assert adapter.meta.modalities == ("image", "text", "video")
    assert "max_audio_seconds" not in adapter.meta.options
    with pytest.raises(HarnessError, match="embeds no audio"):
        load_adapter(str(directory), options={"max_audio_seconds": 10})


def _wav(clip: Waveform) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, clip.samples, clip.sampling_rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _audio_retrieval(root: Path, category: str) -> Path:
    """Four 22.05 kHz clips (queries) and their captions or copies (documents), the audio
    columns typed ``datasets.Audio`` (cast from stored bytes: encoding an Audio value needs
    torchcodec)."""
    stored = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    columns = {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "text": datasets.Value("string"),
    }
    clips = _clips(22_050, (0.3, 0.6, 0.9, 1.2))
    captions = ("a dog", "a red car", "the sea", "a bird flies")

    def row(item_id: str, text: str | None = None, clip: Waveform | None = None) -> dict:
        audio = {"bytes": _wav(clip), "path": None} if clip is not None else None
        return {
            "id": item_id,
            "modality": "audio" if clip else "text",
            "text": text,
            "audio": audio,
        }

    queries = [row(f"q{i}", clip=clip) for i, clip in enumerate(clips)]
    corpus = [
        row(f"d{i}", text=caption) if category == "a2t" else row(f"d{i}", clip=clips[i])
        for i, caption in enumerate(captions)
    ]
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(4)]
    qrel_features = datasets.Features(
        {
            "query-id": datasets.Value("string"),
            "corpus-id": datasets.Value("string"),
            "score": datasets.Value("int64"),
        }
    )
    items = datasets.Features({**columns, "audio": stored})
    parts = {
        "corpus": (corpus, items),
        "queries": (queries, items),
        "qrels": (qrels, qrel_features),
    }
    write_hub_dataset(root, parts)
    for config in ("corpus", "queries"):
        [path] = (root / config).glob("*.parquet")
        table = datasets.Dataset.from_parquet(str(path)).cast(
            datasets.Features({**columns, "audio": datasets.Audio()})
        )
        table.to_parquet(str(path))
    return root


@pytest.mark.parametrize(
    ("kind", "category", "family"),
    [("clap", "a2t", "clap"), ("whisper", "a2a", "audio-encoder"), ("omni", "a2t", "mllm")],
)
def test_cli_runs_an_audio_retrieval_task(
    model_dirs: dict[str, Path], tmp_path: Path, kind: str, category: str, family: str
) -> None:
    data = _audio_retrieval(tmp_path / "data", category)
    task = retrieval_task_yaml(tmp_path / "task.yaml", "TinyAudioRetrieval", data, category)
    assert run_cli(model_dirs[kind], task, tmp_path, "--batch-size", "3") == 0
    result = read_result_json(tmp_path, "TinyAudioRetrieval")
    [scores] = result["scores"]["test"]
    assert 0.0 <= scores["main_score"] <= 1.0
    model = result["harness"]["model"]
    assert model["family"] == family
    assert "sampling_rate" in model["options"]
    if category == "a2a":  # each clip retrieves itself
        assert scores["main_score"] == pytest.approx(1.0)
