"""How far the harness's resampler (soxr, HQ) is from mteb's (torchaudio's), on real speech.

    python -m benchmarks.audio_resampling [--rates 16000 48000]

mteb resamples with ``torchaudio.transforms.Resample`` at its defaults (Hann-windowed sinc,
``lowpass_filter_width`` 6, ``rolloff`` 0.99). torchaudio has no build for this project's torch,
so the reference here is that documented filter computed in numpy: for rates reduced by their
gcd to ``orig`` -> ``new``, cut-off ``base = min(orig, new) * rolloff``, half-width
``ceil(6 * orig / base)`` input samples, and for output phase ``j`` the taps
``base / orig * sinc(base * (i / orig - j / new)) * cos(pi * t / 12) ** 2`` with ``t`` the sinc's
argument clipped to [-6, 6], applied with stride ``orig`` to the input zero-padded by the
half-width (and ``orig`` more at the end), cut to ``ceil(len * new / orig)`` samples. The
kernel is rounded to float32, as torchaudio keeps it; the sums run in float64.

The speech is generated offline by ``espeak-ng`` (22050 Hz WAV, several voices and speeds),
decoded with the harness's own decoder. Prints, per target rate, the max abs and RMS
difference between the two resamplers (the speech peaks near 1.0), the signal's RMS, and the
difference in the 0-4 kHz band where speech carries most energy, and their wall times.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.core.audio import EncodedAudio, Waveform, audio_pipeline, resample
from harness.core.items import RawItem

SENTENCES = (
    ("en-us", 160, "The quick brown fox jumps over the lazy dog near the river bank."),
    ("en-gb", 130, "She sells sea shells by the sea shore, and the shells she sells are real."),
    (
        "en-us+f3",
        190,
        "Please call Stella and ask her to bring these things with her from the store.",
    ),
    ("en-gb-scotland", 150, "Six thick thistle sticks, and a pale blue whistle for the evening."),
)
WIDTH = 6  # torchaudio's lowpass_filter_width
ROLLOFF = 0.99  # torchaudio's rolloff


def torchaudio_kernel(orig: int, new: int) -> tuple[np.ndarray, int]:
    """torchaudio's Hann-windowed sinc kernel, ``(new, 2 * width + orig)``, and its width."""
    base = min(orig, new) * ROLLOFF
    width = math.ceil(WIDTH * orig / base)
    taps = np.arange(-width, width + orig, dtype=np.float64) / orig
    t = (np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + taps[None, :]) * base
    t = np.clip(t, -WIDTH, WIDTH)
    window = np.cos(t * math.pi / WIDTH / 2) ** 2
    kernel = np.sinc(t) * window * (base / orig)
    return kernel.astype(np.float32), width


def torchaudio_resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` at ``target`` Hz as ``torchaudio.functional.resample`` computes them."""
    gcd = math.gcd(rate, target)
    orig, new = rate // gcd, target // gcd
    kernel, width = torchaudio_kernel(orig, new)
    padded = np.pad(samples.astype(np.float64), (width, width + orig))
    steps = (len(padded) - kernel.shape[1]) // orig + 1
    frames = np.lib.stride_tricks.as_strided(
        padded, (steps, kernel.shape[1]), (padded.strides[0] * orig, padded.strides[0])
    )
    out = (frames @ kernel.T.astype(np.float64)).reshape(-1)  # phase j of step k -> k*new + j
    return out[: math.ceil(new * len(samples) / orig)].astype(np.float32)


def speech(folder: Path) -> list[Waveform]:
    """The sentences spoken by ``espeak-ng``, decoded by the harness."""
    clips = []
    for n, (voice, speed, text) in enumerate(SENTENCES):
        path = folder / f"speech{n}.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True
        )
        clips.append(RawItem.of(path.stem, audio=EncodedAudio(path=str(path))).decoded()["audio"])
    return clips


def low_band(samples: np.ndarray, rate: int, top: float = 4000.0) -> np.ndarray:
    """The 0-``top`` Hz part of ``samples`` (an ideal FFT low-pass)."""
    spectrum = np.fft.rfft(samples)
    spectrum[np.fft.rfftfreq(len(samples), 1 / rate) > top] = 0
    return np.fft.irfft(spectrum, len(samples))


def torchaudio_itself(samples: np.ndarray, rate: int, target: int) -> np.ndarray | None:
    """mteb's own call, ``torchaudio.transforms.Resample``, where torchaudio imports (not in
    this project's environment; e.g. a wheel unpacked under ``PYTHONPATH``); else None."""
    try:
        import torch
        import torchaudio
    except (ImportError, OSError):
        return None
    resampler = torchaudio.transforms.Resample(orig_freq=rate, new_freq=target)
    return resampler(torch.from_numpy(samples).float()).numpy()


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference over the samples both have (soxr rounds the output length,
    torchaudio rounds it up: they may differ by one sample)."""
    n = min(len(a), len(b))
    return float(np.abs(a[:n].astype(np.float64) - b[:n]).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[16000, 48000])
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clips = speech(Path(folder))
    rate = clips[0].sampling_rate
    seconds = sum(clip.seconds for clip in clips)
    print(f"{len(clips)} espeak-ng clips, {seconds:.1f} s at {rate} Hz; {audio_pipeline()}")
    header = (
        "target Hz | max abs | RMS diff | signal RMS | max abs 0-4 kHz | length diff | "
        "soxr s | reference s | reference vs torchaudio"
    )
    print(header)
    print("|".join("---" for _ in header.split("|")))
    for target in options.rates:
        diffs, band, signal, lengths, checks = [], [], [], [], []
        timings = [0.0, 0.0]
        for clip in clips:
            start = time.perf_counter()
            ours = resample(clip, target).samples
            timings[0] += time.perf_counter() - start
            start = time.perf_counter()
            reference = torchaudio_resample(clip.samples, rate, target)
            timings[1] += time.perf_counter() - start
            n = min(len(ours), len(reference))
            lengths.append(len(ours) - len(reference))
            difference = ours[:n].astype(np.float64) - reference[:n]
            diffs.append(difference)
            band.append(low_band(difference, target))
            signal.append(reference.astype(np.float64))
            real = torchaudio_itself(clip.samples, rate, target)
            if real is not None:
                checks.append(max_abs(reference, real))
        every, low, sound = np.concatenate(diffs), np.concatenate(band), np.concatenate(signal)
        check = f"{max(checks):.1e}" if checks else "torchaudio not importable"
        print(
            f"{target} | {np.abs(every).max():.2e} | {np.sqrt(np.mean(every**2)):.2e} | "
            f"{np.sqrt(np.mean(sound**2)):.3f} | {np.abs(low).max():.2e} | "
            f"{sorted(set(lengths))} | {timings[0]:.3f} | {timings[1]:.3f} | {check}"
        )


if __name__ == "__main__":
    main()
