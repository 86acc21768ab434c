"""The audio modality: a part stored as its encoded file bytes (or a path to them), decoded
into a mono float32 :class:`Waveform` in the DataLoader workers.

Decoding is soundfile's (libsndfile: WAV, FLAC, OGG, MP3...), multi-channel clips are
down-mixed by averaging their channels, and adapters' preprocess steps (also in the workers)
bring a waveform to their model's input with :func:`resample` (soxr) and :func:`truncate`.
:func:`audio_pipeline` names these libraries and their versions for the result files.
"""

from __future__ import annotations

import io
import struct
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile
import soxr

from harness.core.modalities import Modality
from harness.core.stored import StoredFile

# soxr's "high quality" preset: a linear-phase filter passing 95% of the band (its distance to
# mteb's torchaudio resampler: ``python -m benchmarks.audio_resampling``).
RESAMPLE_QUALITY = "HQ"


@dataclass(frozen=True, eq=False)
class Waveform:
    """Decoded audio: mono float32 samples and their sampling rate (Hz)."""

    samples: np.ndarray
    sampling_rate: int

    @property
    def seconds(self) -> float:
        """The duration."""
        return len(self.samples) / self.sampling_rate


@dataclass(frozen=True)
class EncodedAudio(StoredFile):
    """A clip as stored: encoded file bytes (WAV, FLAC, MP3...) or a path to such a file."""


StoredAudio = EncodedAudio | Waveform

_ACCEPTED = (
    "audio file bytes, a path, a datasets Audio value, or {'array': samples, 'sampling_rate': Hz}"
)


def _read(value: Any) -> StoredAudio:
    """A cell as stored audio; ``ValueError`` (finishing "column X ...") when it holds none."""
    if isinstance(value, EncodedAudio | Waveform):
        return value
    if value is None:
        raise ValueError("is empty (None) where audio belongs; fill the cell or drop the row")
    if isinstance(value, dict) and "array" in value:
        return _in_memory(value.get("array"), value.get("sampling_rate"))
    stored = EncodedAudio.from_cell(value, "clip")
    if stored is not None:
        return stored
    raise ValueError(
        f"holds {type(value).__name__} where audio belongs ({_ACCEPTED}); map the audio "
        "column under dataset.columns"
    )


def _in_memory(array: Any, rate: Any) -> Waveform:
    """A decoded ``{"array", "sampling_rate"}`` cell as a waveform, checked."""
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        raise ValueError(
            f"holds a waveform with sampling rate {rate!r}; give its true rate in Hz (a "
            "positive integer) under 'sampling_rate'"
        )
    try:
        samples = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(
            f"holds {type(array).__name__} under 'array' where audio samples belong; store "
            "a 1-D sequence of numbers"
        ) from None
    if samples.ndim != 1:
        raise ValueError(
            f"holds a waveform of shape {samples.shape} under 'array'; store mono samples "
            "(1-D) or the clip's file bytes"
        )
    if not samples.size:
        raise ValueError("holds an empty waveform (0 samples); fill the cell or drop the row")
    if not np.isfinite(samples).all():
        raise ValueError("holds a waveform with NaN or infinite samples; fix the samples")
    return Waveform(samples, int(rate))


def _digest(audio: StoredAudio) -> bytes:
    """The stored bytes; an unreadable file hashes to its path and error (its decode reports
    it), and an in-memory waveform, which has no stored bytes, to its rate and samples."""
    if isinstance(audio, EncodedAudio):
        return audio.key_bytes()
    return f"waveform:{audio.sampling_rate}:".encode() + audio.samples.tobytes()


def _decode(audio: StoredAudio) -> Waveform:
    """Decode into a mono float32 waveform; a ``ValueError`` says what is wrong with the clip
    and how to fix it."""
    if isinstance(audio, Waveform):
        return audio
    data = audio.read_bytes()
    if not data:
        raise ValueError("the clip is empty (0 bytes); store the clip's file bytes")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as error:
        if _wav_header_rate(data) == 0:
            raise ValueError(
                "its header gives a sampling rate of 0 Hz; re-encode the clip with its true rate"
            ) from None
        reason = error.error_string.rstrip(".")
        raise ValueError(
            f"libsndfile cannot read it ({reason}); store WAV, FLAC, OGG or MP3 file bytes"
        ) from None
    if not len(samples):
        raise ValueError("the clip has no samples (0 frames); store a clip with sound in it")
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)
    return Waveform(np.ascontiguousarray(mono), int(rate))


def _wav_header_rate(data: bytes) -> int | None:
    """The sampling rate in a RIFF/WAVE file's ``fmt`` chunk, or None when there is none."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = struct.unpack_from("<4sI", data, offset)
        if chunk == b"fmt ":
            return int(struct.unpack_from("<I", data, offset + 12)[0]) if size >= 8 else None
        offset += 8 + size + size % 2
    return None


def _frames_and_rate(audio: StoredAudio) -> tuple[int, int]:
    """The sample count and rate, read from the file's header (never decoded); (0, 1) for a
    clip whose header cannot be read (its decode reports it, per item)."""
    if isinstance(audio, Waveform):
        return len(audio.samples), audio.sampling_rate
    with suppress(Exception):
        source = audio.path if audio.data is None else io.BytesIO(audio.data)
        info = soundfile.info(source)
        if info.samplerate > 0:
            return int(info.frames), int(info.samplerate)
    return 0, 1


def _cost(audio: StoredAudio) -> float:
    """The number of samples, for balancing shards."""
    return float(_frames_and_rate(audio)[0])


def _milliseconds(audio: StoredAudio) -> int:
    """The duration in milliseconds, for ordering batches longest first."""
    frames, rate = _frames_and_rate(audio)
    return frames * 1000 // rate


def _undecoded_feature(feature: Any) -> Any | None:
    import datasets  # only where a dataset is read: harness.core stays light

    return datasets.Audio(decode=False) if isinstance(feature, datasets.Audio) else None


def resample(waveform: Waveform, rate: int) -> Waveform:
    """``waveform`` at ``rate`` Hz (soxr, :data:`RESAMPLE_QUALITY`); itself when it already is."""
    if rate <= 0:
        raise ValueError(f"cannot resample to {rate} Hz; give a positive rate")
    if rate == waveform.sampling_rate:
        return waveform
    samples = soxr.resample(waveform.samples, waveform.sampling_rate, rate, RESAMPLE_QUALITY)
    return Waveform(np.asarray(samples, dtype=np.float32), rate)


def truncate(waveform: Waveform, max_seconds: float | None) -> Waveform:
    """The first ``max_seconds`` of ``waveform`` (all of it when None or shorter)."""
    if max_seconds is None:
        return waveform
    if max_seconds <= 0:
        raise ValueError(f"cannot truncate to {max_seconds} s; give a positive duration")
    limit = int(max_seconds * waveform.sampling_rate)
    if len(waveform.samples) <= limit:
        return waveform
    return Waveform(waveform.samples[:limit], waveform.sampling_rate)


def audio_pipeline() -> dict[str, str]:
    """The decoder and the resampler, with their versions, as result files record them."""
    return {
        "decoder": f"soundfile {soundfile.__version__} (libsndfile "
        f"{soundfile.__libsndfile_version__})",
        "resampler": f"soxr {soxr.__version__} ({RESAMPLE_QUALITY})",
    }


AUDIO = Modality(
    name="audio",
    letter="a",
    read=_read,
    digest=_digest,
    cost=_cost,
    decode=_decode,
    length=_milliseconds,
    undecoded_feature=_undecoded_feature,
    pipeline=audio_pipeline,
)
