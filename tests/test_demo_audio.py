"""The audio demo: deterministic synthesis, committed data and layouts, train/test separation,
and the committed demo CLAP scoring far above chance through ``harness run``."""

from __future__ import annotations

import importlib.util
import io
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile
import torch

from harness.app.cli import main
from harness.tasks.demo.audio import (
    A2T_INDEX,
    CLIPS_PER_CAPTION,
    PER_LABEL,
    build_audio,
    demo_sounds,
    flac_bytes,
    labelled_sounds,
    retrieval_dataset,
    write_dataset,
)
from harness.tasks.demo.build import DATA_SEED
from harness.tasks.demo.sounds import (
    MAX_SECONDS,
    SAMPLING_RATE,
    captions,
    label_of,
    labels,
    missing_tools,
    sample_sound,
    synthesize,
    tool_versions,
)
from harness.tasks.registry import builtin_tasks, demo_tasks
from tests.dataset_fixtures import DEMO_DATA, read_result_json, run_cli

REPO = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = REPO / "scripts" / "train_demo_clap.py"
# The versions that synthesised the committed clips (see harness/tasks/demo/data/SOURCE.md).
COMMITTED_TOOLS = {"espeak-ng": "1.51", "sox": "14.4.2"}
MAX_BYTES = 8_000_000
DATASETS = ("DemoAudioA2TRetrieval", "DemoAudioT2ARetrieval", "DemoAudioClassification")
TASKS = {
    "DemoAudioA2TRetrieval": "retrieval",
    "DemoAudioT2ARetrieval": "retrieval",
    "DemoAudioClassification": "linear_probe",
    "DemoAudioZeroShot": "zero_shot_classification",
    "DemoAudioClustering": "clustering_fast",
}
# demo-clap's main scores must clear these. Chance, the mean over 10 seeds of random
# embeddings: A2T ndcg@10 0.157, T2A ndcg@10 0.054, linear-probe and zero-shot accuracy 0.067,
# V-measure 0.299 (the bootstrap draws rows with replacement, so chance is not near 0).
FAR_ABOVE_CHANCE = {
    "DemoAudioA2TRetrieval": 0.8,
    "DemoAudioT2ARetrieval": 0.8,
    "DemoAudioClassification": 0.8,
    "DemoAudioZeroShot": 0.8,
    "DemoAudioClustering": 0.8,
}

needs_tools = pytest.mark.skipif(
    bool(missing_tools()), reason=f"needs {' and '.join(missing_tools())} (make system-packages)"
)


def audio_rows(path: Path) -> list[dict[str, Any]]:
    """A parquet file's rows with every clip replaced by its decoded samples and rate."""

    def decode(value: Any) -> Any:
        if isinstance(value, dict) and "bytes" in value:
            samples, rate = soundfile.read(io.BytesIO(value["bytes"]), dtype="int16")
            return samples.tobytes(), rate
        return value

    return [{k: decode(v) for k, v in row.items()} for row in pq.read_table(path).to_pylist()]


def parquet_files(folder: Path) -> list[Path]:
    """Every parquet file under ``folder``, relative to it."""
    return sorted(path.relative_to(folder) for path in folder.rglob("*.parquet"))


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The audio demo datasets as ``build_audio`` writes them now."""
    if missing_tools():
        pytest.skip(f"needs {' and '.join(missing_tools())}")
    out = tmp_path_factory.mktemp("demo-audio")
    build_audio(out)
    return out


@pytest.fixture(scope="module")
def train_script() -> ModuleType:
    """``scripts/train_demo_clap.py`` imported as a module (nothing runs on import)."""
    spec = importlib.util.spec_from_file_location("train_demo_clap", TRAIN_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_captions_and_labels() -> None:
    assert len(set(captions())) == len(captions()) == 27
    assert len(set(labels())) == len(labels()) == 15
    assert {label_of(caption) for caption in captions()} == set(labels())
    assert label_of("a woman saying stop") == "someone saying stop"
    assert label_of("a falling square tone") == "a falling tone"
    assert label_of("pink noise") == "pink noise"


def test_sampling_is_deterministic_and_varied() -> None:
    for caption in captions():
        first, again, other = (sample_sound(caption, seed) for seed in ((1, 2), (1, 2), (1, 3)))
        assert first == again
        assert first.source != other.source, caption
        assert first.caption == caption and first.label == label_of(caption)
    # A man's and a woman's voices are different espeak-ng variants.
    voices = {
        gender: {sample_sound(f"a {gender} saying go", (k,)).source[2] for k in range(20)}
        for gender in ("man", "woman")
    }
    assert all("+m" in voice for voice in voices["man"])
    assert all("+f" in voice for voice in voices["woman"])


@needs_tools
def test_synthesis_is_deterministic() -> None:
    for caption in (
        "a woman saying left",
        "a high square tone",
        "a rising sine tone",
        "pink noise",
    ):
        sound = sample_sound(caption, (7,))
        samples = synthesize(sound)
        assert samples.dtype == np.int16
        assert 0.1 * SAMPLING_RATE < len(samples) <= MAX_SECONDS * SAMPLING_RATE
        assert flac_bytes(sound) == flac_bytes(sound), caption
        assert not np.array_equal(samples[:1000], synthesize(sample_sound(caption, (8,)))[:1000])


@needs_tools
def test_builder_writes_the_same_bytes_twice(rebuilt: Path, tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, retrieval_dataset(DATASETS[0], A2T_INDEX, audio_queries=True))
    files = parquet_files(folder)
    assert files == parquet_files(rebuilt / DATASETS[0])
    for name in files:
        assert (folder / name).read_bytes() == (rebuilt / DATASETS[0] / name).read_bytes()


@pytest.mark.parametrize("name", DATASETS)
def test_committed_data_matches_the_builder(rebuilt: Path, name: str) -> None:
    if tool_versions() != COMMITTED_TOOLS:
        pytest.skip(f"installed {tool_versions()}, committed clips made with {COMMITTED_TOOLS}")
    committed, fresh = DEMO_DATA / name, rebuilt / name
    assert parquet_files(committed) == parquet_files(fresh)
    for file in parquet_files(committed):
        assert audio_rows(committed / file) == audio_rows(fresh / file), file
    readme = (committed / "README.md").read_text(encoding="utf-8")
    assert readme == (fresh / "README.md").read_text(encoding="utf-8")


def test_committed_data_is_small() -> None:
    folders = [DEMO_DATA / name for name in DATASETS]
    size = sum(p.stat().st_size for folder in folders for p in folder.rglob("*") if p.is_file())
    assert size < MAX_BYTES


@pytest.mark.parametrize(
    ("name", "audio_queries"), [("DemoAudioA2TRetrieval", True), ("DemoAudioT2ARetrieval", False)]
)
def test_retrieval_layout(name: str, audio_queries: bool) -> None:
    parts = {
        config: datasets.load_dataset(str(DEMO_DATA / name), config, split="test")
        for config in ("corpus", "queries", "qrels")
    }
    for config in ("corpus", "queries"):
        assert parts[config].column_names == ["id", "modality", "text", "audio"]
        assert isinstance(parts[config].features["audio"], datasets.Audio)
    clips, texts = (parts["queries"], parts["corpus"])[:: 1 if audio_queries else -1]
    assert set(clips["modality"]) == {"audio"} and set(texts["modality"]) == {"text"}
    assert sorted(texts["text"]) == sorted(captions())
    assert len(clips) == CLIPS_PER_CAPTION * len(captions())
    qrels = parts["qrels"]
    assert set(qrels["query-id"]) == set(parts["queries"]["id"])
    assert set(qrels["corpus-id"]) == set(parts["corpus"]["id"])
    per_text = Counter(qrels["query-id" if not audio_queries else "corpus-id"])
    assert set(per_text.values()) == {CLIPS_PER_CAPTION}
    undecoded = clips.cast_column("audio", datasets.Audio(decode=False))
    samples, rate = soundfile.read(io.BytesIO(undecoded[0]["audio"]["bytes"]))
    assert rate == SAMPLING_RATE and samples.ndim == 1


def test_classification_layout() -> None:
    folder = str(DEMO_DATA / "DemoAudioClassification")
    for split, per_label in PER_LABEL.items():
        data = datasets.load_dataset(folder, split=split)
        assert data.column_names == ["audio", "label"]
        assert data.features["label"].names == list(labels())
        assert set(Counter(data["label"]).values()) == {per_label}
        # Rows are shuffled: the label order carries no information.
        assert data["label"] != sorted(data["label"])
    speakers = Counter(
        s.caption.split()[1] for _, s in labelled_sounds("test") if "saying" in s.caption
    )
    assert set(speakers) == {"man", "woman"}


def test_training_clips_are_not_test_clips(train_script: ModuleType) -> None:
    assert train_script.TRAIN_SEED != DATA_SEED
    test_sources = {sound.source for sound in demo_sounds()}
    assert len(test_sources) == len(demo_sounds()), "test clips should be pairwise distinct"
    training = train_script.training_sounds(8)
    assert {sound.caption for sound in training} == set(captions())
    assert not {sound.source for sound in training} & test_sources


def test_training_loss_counts_every_describing_text(train_script: ModuleType) -> None:
    sounds = [
        sample_sound(c, (1,)) for c in ("a man saying go", "a woman saying go", "white noise")
    ]
    texts = ["someone saying go", "a woman saying go", "white noise"]
    targets = train_script.positives(sounds, texts)
    assert targets.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    perfect = torch.where(targets > 0, 10.0, -10.0)
    wrong = torch.where(targets > 0, -10.0, 10.0)
    assert train_script.contrastive_loss(perfect, targets) < 1.0
    assert train_script.contrastive_loss(wrong, targets) > 10.0


def test_demo_audio_tasks_are_registered() -> None:
    known = builtin_tasks()
    assert set(TASKS) <= set(demo_tasks())
    for name, task_type in TASKS.items():
        assert known[name].type == task_type
        assert "audio" in known[name].input_modalities


def test_demo_clap_scores_far_above_chance(tmp_path: Path) -> None:
    assert run_cli("demo-clap", ",".join(TASKS), tmp_path) == 0
    for name, floor in FAR_ABOVE_CHANCE.items():
        [entry] = read_result_json(tmp_path, name)["scores"]["test"]
        assert floor < entry["main_score"] <= 1, name


def test_the_demo_runs_the_audio_tasks_on_demo_clap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    clip_part, clap_part = out.split("\ndemo-clap:\n")
    assert "DemoShapesT2IRetrieval" in clip_part and "DemoShapesT2IRetrieval" not in clap_part
    for name in TASKS:
        assert name in clap_part.split("ocr-tesseract-minilm:")[0] and name not in clip_part
