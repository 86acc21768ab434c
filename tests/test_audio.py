"""Issue 15, item 1 and "Bad input": the audio modality.

Audio columns are read undecoded (the stored bytes make the cache key), decoded with soundfile
into mono float32 waveforms in the workers, resampled with soxr and truncated by the adapter's
preprocess step; every bad clip is a clear error naming the task, item, column and fix, or is
skipped under ``--skip-bad-inputs``; results record the decoder and the resampler.
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import soundfile
import soxr

import harness.app.runner
from harness.app.cli import main
from harness.core.adapter import AdapterMeta, Item, Role
from harness.core.audio import (
    AUDIO,
    EncodedAudio,
    Waveform,
    audio_pipeline,
    resample,
    truncate,
)
from harness.core.errors import BadInputError
from harness.core.items import RawItem
from harness.core.modalities import modality, parse_category, registered
from harness.engine.distributed import item_cost
from harness.engine.results import environment
from harness.tasks.loading import undecoded
from tests.dataset_fixtures import read_result_json, result_files, run_cli, task_file

RATE = 16000  # the toy adapter's model rate
MAX_SECONDS = 2.0  # the toy adapter's declared clip cap


def wav_bytes(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    """``samples`` (frames, or frames x channels) as a WAV file."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A sine wave, float32."""
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(waveform: Waveform) -> float:
    """The frequency of the strongest bin of the spectrum."""
    spectrum = np.abs(np.fft.rfft(waveform.samples))
    return float(
        np.fft.rfftfreq(len(waveform.samples), 1 / waveform.sampling_rate)[spectrum.argmax()]
    )


def zero_rate_wav() -> bytes:
    """A valid WAV whose header gives a sampling rate (and byte rate) of 0."""
    data = bytearray(wav_bytes(tone(440, 0.1, 8000), 8000))
    data[24:32] = struct.pack("<II", 0, 0)
    return bytes(data)


# --- the registry entry -------------------------------------------------------------------


def test_audio_is_built_in_after_image_with_letter_a() -> None:
    assert [entry.name for entry in registered()][:3] == ["text", "image", "audio"]
    assert modality("audio") is AUDIO
    assert parse_category("a2t").query == ("audio",)
    assert parse_category("at2a").inputs == ("text", "audio")
    assert parse_category("a2c").labels


def test_audio_key_is_the_stored_bytes_and_stable() -> None:
    clip = wav_bytes(tone(440, 0.05, 8000), 8000)
    item = RawItem.read("x", {"audio": ("clip", {"bytes": clip, "path": "x.wav"})})
    assert item.fault is None and item.parts["audio"] == EncodedAudio(clip, "x.wav")
    expected = hashlib.sha256(b"audio\0" + clip).hexdigest()
    assert item.content_digest() == expected
    assert expected == "9641cbb8c548c255866f3984b0563b8e66ab07bd1a68724b70b5b052f461367a"
    # Raw bytes, a datasets value and a stored value are one key; the path does not count.
    assert RawItem.read("y", {"audio": ("a", clip)}).content_digest() == expected
    assert RawItem.of("z", audio=EncodedAudio(clip)).content_digest() == expected
    both = RawItem.of("w", text="a tone", audio=EncodedAudio(clip))
    text_then_audio = hashlib.sha256(b"text\0a tone\0" + b"audio\0" + clip).hexdigest()
    assert both.content_digest() == text_then_audio


def test_key_cost_and_length_never_decode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clip = wav_bytes(tone(440, 1.5, 8000), 8000)
    path = tmp_path / "clip.wav"
    path.write_bytes(clip)

    def no_decoding(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(soundfile, "read", no_decoding)
    for stored in (EncodedAudio(clip), EncodedAudio(path=str(path))):
        item = RawItem.of("x", audio=stored)
        assert item.content_digest() == hashlib.sha256(b"audio\0" + clip).hexdigest()
        assert item_cost(item) == 1 + 12000  # one, plus the samples the header gives
        assert AUDIO.length(stored) == 1500  # milliseconds: longest clips are batched first
    assert AUDIO.cost(EncodedAudio(b"not audio")) == 0.0  # its decode reports it, per item


def test_datasets_audio_column_is_read_undecoded(tmp_path: Path) -> None:
    clips = [wav_bytes(tone(f, 0.1, 8000), 8000) for f in (300, 600)]
    write_audio_dataset(tmp_path / "data", {"test": [(clip, 0) for clip in clips]})
    data = datasets.load_dataset(str(tmp_path / "data"), split="test")
    assert data.features["audio"] == datasets.Audio()  # as a hub audio column reads
    stored = undecoded(data, ["audio", "label"])
    assert stored.features["audio"] == datasets.Audio(decode=False)
    assert [modality("audio").read(row["audio"]).data for row in stored] == clips


# --- decoding, resampling, truncation -----------------------------------------------------


def test_decode_down_mixes_to_mono_float32() -> None:
    left, right = tone(440, 0.5, 22050), tone(440, 0.5, 22050, amplitude=0.25)
    stereo = np.stack([left, right], axis=1)
    waveform = RawItem.of("x", audio=EncodedAudio(wav_bytes(stereo, 22050, "FLOAT"))).decoded()[
        "audio"
    ]
    assert isinstance(waveform, Waveform) and waveform.sampling_rate == 22050
    assert waveform.samples.dtype == np.float32 and waveform.samples.shape == (11025,)
    np.testing.assert_allclose(waveform.samples, (left + right) / 2, atol=1e-7)
    assert waveform.seconds == 0.5


@pytest.mark.parametrize("rate", [16000, 48000])
def test_resample_keeps_the_frequency_and_duration(rate: int) -> None:
    waveform = Waveform(tone(440, 1.0, 22050), 22050)
    resampled = resample(waveform, rate)
    assert resampled.sampling_rate == rate and resampled.samples.dtype == np.float32
    assert len(resampled.samples) == rate
    assert abs(peak_frequency(resampled) - 440) <= 1.0
    expected = soxr.resample(waveform.samples, 22050, rate, "HQ")
    np.testing.assert_array_equal(resampled.samples, expected)
    assert resample(waveform, 22050) is waveform
    with pytest.raises(ValueError, match="positive rate"):
        resample(waveform, 0)


def test_truncate_keeps_the_first_seconds() -> None:
    waveform = Waveform(np.arange(48000, dtype=np.float32), 16000)
    cut = truncate(waveform, 1.25)
    assert cut.sampling_rate == 16000 and cut.samples.tolist() == list(range(20000))
    assert truncate(waveform, None) is waveform and truncate(waveform, 10.0) is waveform
    with pytest.raises(ValueError, match="positive duration"):
        truncate(waveform, 0)


def test_in_memory_waveforms_are_kept_and_keyed_by_rate_and_samples() -> None:
    cell = {"array": [0.5, -0.5, 0.25], "sampling_rate": 8000}
    item = RawItem.read("x", {"audio": ("clip", cell)})
    decoded = item.decoded()["audio"]
    assert decoded.sampling_rate == 8000 and decoded.samples.tolist() == [0.5, -0.5, 0.25]
    samples = np.asarray(cell["array"], np.float32).tobytes()
    assert item.content_digest() == hashlib.sha256(b"audio\0waveform:8000:" + samples).hexdigest()
    other_rate = RawItem.read("y", {"audio": ("clip", {**cell, "sampling_rate": 16000})})
    assert other_rate.content_digest() != item.content_digest()


def test_pipeline_names_the_decoder_and_resampler_with_versions() -> None:
    assert audio_pipeline() == {
        "decoder": f"soundfile {soundfile.__version__} (libsndfile "
        f"{soundfile.__libsndfile_version__})",
        "resampler": f"soxr {soxr.__version__} (HQ)",
    }
    recorded = environment(["text", "audio"])
    assert recorded["audio_decoder"].startswith(f"soundfile {soundfile.__version__} (libsndfile ")
    assert recorded["audio_resampler"] == f"soxr {soxr.__version__} (HQ)"
    assert not any(key.startswith("audio") for key in environment(["text", "image"]))


# --- bad input ----------------------------------------------------------------------------

CELL_FAULTS: dict[str, tuple[Any, str]] = {
    "None": (None, "is empty (None) where audio belongs; fill the cell or drop the row"),
    "zero bytes": (b"", "holds an empty clip (0 bytes); store the clip's file bytes in it"),
    "zero-byte datasets value": (
        {"bytes": b"", "path": None},
        "holds an empty clip (0 bytes); store the clip's file bytes in it",
    ),
    "rate 0": (
        {"array": [0.1, 0.2], "sampling_rate": 0},
        "holds a waveform with sampling rate 0; give its true rate in Hz",
    ),
    "no rate": ({"array": [0.1, 0.2]}, "holds a waveform with sampling rate None"),
    "no samples": (
        {"array": [], "sampling_rate": 8000},
        "holds an empty waveform (0 samples); fill the cell or drop the row",
    ),
    "stereo array": (
        {"array": [[0.1, 0.2]], "sampling_rate": 8000},
        "holds a waveform of shape (1, 2) under 'array'; store mono samples",
    ),
    "NaN samples": (
        {"array": [0.1, float("nan")], "sampling_rate": 8000},
        "holds a waveform with NaN or infinite samples",
    ),
    "a number": (7, "holds int where audio belongs (audio file bytes, a path"),
}


@pytest.mark.parametrize("fault", list(CELL_FAULTS))
def test_unusable_cells_are_faults_naming_the_column(fault: str) -> None:
    cell, words = CELL_FAULTS[fault]
    item = RawItem.read("x", {"audio": ("clip", cell)})
    assert item.fault is not None and item.fault.startswith(f"column 'clip' {words}")


DECODE_FAULTS: dict[str, tuple[bytes, str]] = {
    "undecodable": (b"RIFF not really a wave file", "libsndfile cannot read it"),
    "no frames": (wav_bytes(np.zeros(0, np.float32), 8000), "the clip has no samples (0 frames)"),
    "header rate 0": (zero_rate_wav(), "its header gives a sampling rate of 0 Hz"),
}


@pytest.mark.parametrize("fault", list(DECODE_FAULTS))
def test_clips_that_do_not_decode_name_the_column_and_fix(fault: str) -> None:
    clip, words = DECODE_FAULTS[fault]
    with pytest.raises(BadInputError, match="the audio in column 'clip' cannot be decoded") as info:
        RawItem.read("x", {"audio": ("clip", clip)}).decoded()
    assert words in str(info.value)


class ToyAudioAdapter:
    """Embeds a clip by its duration, loudness and zero-crossing rate at 16 kHz; its preprocess
    step resamples and truncates as a real adapter does, and ``longest`` records the longest
    clip (seconds) it was given."""

    meta = AdapterMeta(
        "toy-audio",
        "v1",
        "test",
        "cosine",
        ("audio",),
        "float32",
        options={"sampling_rate": RATE, "max_seconds": MAX_SECONDS},
    )

    def __init__(self) -> None:
        self.longest = 0.0

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        return {"audio": truncate(resample(item["audio"], RATE), MAX_SECONDS).samples}

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        rows = []
        for item in items:
            samples = item["audio"]
            self.longest = max(self.longest, len(samples) / RATE)
            crossings = np.count_nonzero(np.diff(np.signbit(samples))) / len(samples)
            rms = float(np.sqrt(np.mean(samples**2)))
            rows.append([len(samples) / RATE, rms, 10 * crossings, 1.0])
        return np.asarray(rows, dtype=np.float32)


@pytest.fixture
def toy_audio(monkeypatch: pytest.MonkeyPatch) -> ToyAudioAdapter:
    """``harness run --model toy-audio`` loads one shared :class:`ToyAudioAdapter`."""
    adapter = ToyAudioAdapter()
    real = harness.app.runner.load_adapter

    def load(model: str, **kwargs: Any) -> Any:
        return adapter if model == "toy-audio" else real(model, **kwargs)

    monkeypatch.setattr(harness.app.runner, "load_adapter", load)
    return adapter


def write_audio_dataset(
    root: Path, splits: dict[str, list[tuple[Any, int]]], *, in_memory: bool = False
) -> Path:
    """MAEB's classification layout: config ``default``, ``data/<split>-*.parquet`` with an
    ``audio`` column (a ``datasets.Audio`` column of clip bytes, or ``{"array",
    "sampling_rate"}`` structs with ``in_memory``) and a ``label`` column."""
    stored = (
        {
            "array": datasets.List(datasets.Value("float32")),
            "sampling_rate": datasets.Value("int64"),
        }
        if in_memory
        else {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    )
    features = datasets.Features({"audio": stored, "label": datasets.Value("int64")})
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        cells = [cell if in_memory else {"bytes": cell, "path": None} for cell, _ in rows]
        data = datasets.Dataset.from_dict(
            {"audio": cells, "label": [label for _, label in rows]}, features=features
        )
        if not in_memory:
            data = data.cast_column("audio", datasets.Audio())  # as the hub's audio columns
        data.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


def tones_task(tmp_path: Path, bad: Any = None, *, in_memory: bool = False) -> Path:
    """An a2c ``linear_probe`` task: low (label 0) and high (label 1) tones at 8 kHz; test
    row 2 replaced by ``bad`` when given."""

    def clip(frequency: float) -> Any:
        samples = tone(frequency, 0.5, 8000)
        if in_memory:
            return {"array": samples.tolist(), "sampling_rate": 8000}
        return wav_bytes(samples, 8000)

    train = [(clip(200 + 10 * i), 0) for i in range(4)] + [
        (clip(2500 + 50 * i), 1) for i in range(4)
    ]
    test = [(clip(230 + 7 * i), 0) for i in range(3)] + [(clip(2600 + 9 * i), 1) for i in range(3)]
    if bad is not None:
        test[2] = (bad, test[2][1])
    data = write_audio_dataset(
        tmp_path / "data", {"train": train, "test": test}, in_memory=in_memory
    )
    entry = {
        "name": "ToyTones",
        "type": "linear_probe",
        "category": "a2c",
        "dataset": {"path": str(data)},
        "protocol": {"samples_per_label": 4, "n_experiments": 2},
    }
    return task_file(tmp_path / "tasks.yaml", [entry])


RUN_FAULTS: dict[str, tuple[Any, bool, list[str]]] = {
    "undecodable clip": (
        b"RIFF not really a wave file",
        False,
        ["cannot be decoded", "libsndfile cannot read it", "store WAV, FLAC, OGG or MP3"],
    ),
    "zero-byte clip": (b"", False, ["holds an empty clip (0 bytes)", "store the clip's file"]),
    "clip of no samples": (
        wav_bytes(np.zeros(0, np.float32), 8000),
        False,
        ["the clip has no samples (0 frames)", "store a clip with sound in it"],
    ),
    "header rate 0": (
        zero_rate_wav(),
        False,
        ["header gives a sampling rate of 0 Hz", "re-encode the clip with its true rate"],
    ),
    "waveform rate 0": (
        {"array": tone(300, 0.5, 8000).tolist(), "sampling_rate": 0},
        True,
        ["holds a waveform with sampling rate 0", "give its true rate in Hz"],
    ),
}


@pytest.mark.parametrize("fault", list(RUN_FAULTS))
def test_bad_clips_stop_the_run_clearly_or_are_skipped(
    fault: str, toy_audio: ToyAudioAdapter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, in_memory, words = RUN_FAULTS[fault]
    tasks = tones_task(tmp_path, bad, in_memory=in_memory)
    code = run_cli("toy-audio", tasks, tmp_path)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 2 and "Traceback" not in output
    for word in ["ToyTones", "item '2'", "column 'audio'", *words, "--skip-bad-inputs"]:
        assert word in output, f"{word!r} not in: {output}"
    assert "ToyTones" not in result_files(tmp_path)

    assert run_cli("toy-audio", tasks, tmp_path, "--skip-bad-inputs") == 0
    result = read_result_json(tmp_path, "ToyTones")
    assert result["harness"]["skipped_inputs"] == {"test": ["2"]}


def test_long_clips_are_truncated_as_the_adapter_declares_and_recorded(
    toy_audio: ToyAudioAdapter, tmp_path: Path
) -> None:
    long_clip = wav_bytes(tone(300, 120.0, 8000), 8000)  # two minutes
    assert run_cli("toy-audio", tones_task(tmp_path, long_clip), tmp_path) == 0
    assert toy_audio.longest == MAX_SECONDS  # the model saw its first two seconds only
    result = read_result_json(tmp_path, "ToyTones")
    assert result["harness"]["model"]["options"] == {
        "sampling_rate": RATE,
        "max_seconds": MAX_SECONDS,
    }
    environment = result["harness"]["environment"]
    assert environment["audio_decoder"] == audio_pipeline()["decoder"]
    assert environment["audio_resampler"] == audio_pipeline()["resampler"]
    assert result["scores"]["test"][0]["main_score"] > 0.5


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_text_only_model_is_refused_on_an_audio_task(
    dry_run: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = tones_task(tmp_path)
    extra = ["--dry-run"] if dry_run else []
    args = ["run", "--model", "demo-clip", "--tasks", str(tasks), "--output", str(tmp_path)]
    code = main([*args, "--quiet", *extra])
    output = "".join(capsys.readouterr())
    assert code == 2 and "Traceback" not in output
    assert "task ToyTones (category a2c) needs audio inputs" in output
    assert "Leave the task out, or run a model that embeds audio" in output
    assert not list(tmp_path.rglob("ToyTones.json"))
