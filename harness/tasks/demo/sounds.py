"""Synthetic sounds for the audio demo: spoken words (espeak-ng), tones, sweeps and noises (sox).

A :class:`Sound` is a caption, a class label and the shell-free commands that synthesise it; the
same sound always yields the same samples (espeak-ng is deterministic, sox runs with ``-R``,
repeatable random numbers, and ``-D``, no dither). Every clip is 16 kHz mono 16-bit, at most
:data:`MAX_SECONDS` long, its leading and trailing silence trimmed and its peak normalised.

Captions (27): ``a man saying left`` / ``a woman saying left`` (8 words), ``a low sine tone``,
``a high square tone``, ``a rising sine tone``, ``a falling square tone``, ``white noise``...
Class labels (15) are coarser: ``someone saying left``, ``a low tone``, ``a rising tone``,
``pink noise``...
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

GENERATOR_VERSION = 1
SAMPLING_RATE = 16_000
MAX_SECONDS = 0.9
WORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")
VOICES = {"man": ("m1", "m2", "m3", "m4", "m6", "m7"), "woman": ("f1", "f2", "f3", "f4")}
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029")
WAVES = ("sine", "square")
PITCHES = {"low": (180, 320), "high": (900, 1500)}
DIRECTIONS = ("rising", "falling")
NOISES = ("white", "pink", "brown")
TOOLS = ("espeak-ng", "sox")


@dataclass(frozen=True)
class Sound:
    """One clip: its caption, its class label and the commands that synthesise it.

    ``source`` writes the raw sound to stdout (a WAV from espeak-ng, or raw samples from sox);
    :func:`synthesize` resamples, trims and normalises it.
    """

    caption: str
    label: str
    source: tuple[str, ...]


def captions() -> tuple[str, ...]:
    """Every caption, in a fixed order."""
    speech = [f"a {gender} saying {word}" for word in WORDS for gender in VOICES]
    tones = [f"a {pitch} {wave} tone" for pitch in PITCHES for wave in WAVES]
    sweeps = [f"a {direction} {wave} tone" for direction in DIRECTIONS for wave in WAVES]
    return (*speech, *tones, *sweeps, *(f"{colour} noise" for colour in NOISES))


def labels() -> tuple[str, ...]:
    """Every class label, in a fixed order."""
    return (
        *(f"someone saying {word}" for word in WORDS),
        *(f"a {pitch} tone" for pitch in PITCHES),
        *(f"a {direction} tone" for direction in DIRECTIONS),
        *(f"{colour} noise" for colour in NOISES),
    )


def vocabulary() -> tuple[str, ...]:
    """Every word of the captions and labels, in order of first appearance."""
    words = dict.fromkeys(word for text in (*captions(), *labels()) for word in text.split())
    return tuple(words)


def label_of(caption: str) -> str:
    """The class label of a caption."""
    words = caption.split()
    if "saying" in words:
        return f"someone saying {words[-1]}"
    if words[-1] == "tone":
        return f"a {words[1]} tone"
    return caption


def _sox_synth(duration: float, *effects: str) -> tuple[str, ...]:
    rate = str(SAMPLING_RATE)
    return ("sox", "-R", "-D", "-n", "-r", rate, "-c", "1", "-b", "16", "-t", "wav", "-", "synth",
            f"{duration:.3f}", *effects)  # fmt: skip


def sample_sound(caption: str, seed: tuple[int, ...]) -> Sound:
    """A random rendition of ``caption`` (voice, speed, pitch, frequency, duration)."""
    rng = np.random.default_rng(seed)
    words = caption.split()
    duration = float(rng.uniform(0.35, MAX_SECONDS))
    source: tuple[str, ...]
    if "saying" in words:
        voice = f"{rng.choice(ACCENTS)}+{rng.choice(VOICES[words[1]])}"
        speed, pitch = int(rng.integers(120, 221)), int(rng.integers(25, 76))
        source = ("espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout",
                  words[-1])  # fmt: skip
    elif words[-1] == "tone" and words[1] in PITCHES:
        low, high = PITCHES[words[1]]
        source = _sox_synth(duration, words[2], f"{float(rng.uniform(low, high)):.1f}")
    elif words[-1] == "tone":
        start, end = float(rng.uniform(200, 400)), float(rng.uniform(1000, 1600))
        if words[1] == "falling":
            start, end = end, start
        source = _sox_synth(duration, words[2], f"{start:.1f}-{end:.1f}")
    else:  # noise: a window of a longer repeatable noise, so that clips differ
        offset = f"{float(rng.uniform(0, 3)):.3f}"
        source = _sox_synth(4.0, f"{words[0]}noise", "trim", offset, f"{duration:.3f}")
    return Sound(caption, label_of(caption), source)


def missing_tools() -> list[str]:
    """The synthesis programs that are not installed."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def tool_versions() -> dict[str, str]:
    """The installed espeak-ng and sox versions ("1.51", "14.4.2"): other versions may
    synthesise slightly different samples."""
    found = {}
    for tool, pattern in (("espeak-ng", r"text-to-speech: (\S+)"), ("sox", r"SoX v(\S+)")):
        output = subprocess.run((tool, "--version"), capture_output=True, text=True).stdout
        match = re.search(pattern, output)
        found[tool] = match.group(1) if match else "unknown"
    return found


def synthesize(sound: Sound) -> np.ndarray:
    """The sound's int16 samples at :data:`SAMPLING_RATE`: silence trimmed, at most
    :data:`MAX_SECONDS` long, peak normalised to -1 dBFS."""
    raw = subprocess.run(sound.source, capture_output=True, check=True).stdout
    finish = (
        "sox", "-R", "-D", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLING_RATE), "-c", "1",
        "-e", "signed", "-b", "16", "-",
        "silence", "1", "0.01", "0.5%", "reverse", "silence", "1", "0.01", "0.5%", "reverse",
        "trim", "0", str(MAX_SECONDS), "gain", "-n", "-1",
    )  # fmt: skip
    samples = subprocess.run(finish, input=raw, capture_output=True, check=True).stdout
    return np.frombuffer(samples, dtype="<i2").copy()
