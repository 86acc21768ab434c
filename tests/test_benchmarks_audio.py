"""The audio suites of ``benchmarks/compare_mteb.py``: mteb's side decodes as the harness does,
never resamples, and both sides score the demo CLAP's a2t retrieval alike."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from benchmarks import compare_mteb
from benchmarks.mteb_side import _NoResampling, decode_with_soundfile
from harness.core.audio import AUDIO


def test_mteb_side_decodes_as_the_harness_does() -> None:
    rng = np.random.default_rng(3)
    stereo = (0.3 * rng.standard_normal((800, 2))).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, stereo, 22_050, format="FLAC", subtype="PCM_16")
    value = {"bytes": buffer.getvalue(), "path": None}
    theirs = decode_with_soundfile(None, value)
    assert AUDIO.decode is not None
    ours = AUDIO.decode(AUDIO.read(value))
    assert theirs["sampling_rate"] == ours.sampling_rate == 22_050
    np.testing.assert_array_equal(theirs["array"], ours.samples)
    assert decode_with_soundfile(None, theirs) is theirs  # decoding is idempotent


def test_the_torchaudio_stand_in_refuses_to_resample() -> None:
    with pytest.raises(AssertionError, match="resample 44100 Hz to 16000 Hz"):
        _NoResampling(orig_freq=44_100, new_freq=16_000)


@pytest.mark.parametrize(
    ("suites", "message"), [("e,x", "unknown suites ['x']"), ("g", "reruns suite f warm")]
)
def test_bad_suite_lists_are_refused(
    suites: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        compare_mteb.main(["--suites", suites])
    assert message in capsys.readouterr().err


def test_audio_retrieval_suite_scores_alike_on_both_sides(tmp_path: Path) -> None:
    report = tmp_path / "measures.json"
    argv = ["--models", "demo", "--suites", "e", "--workdir", str(tmp_path), "--json", str(report)]
    assert compare_mteb.main(argv) == 0
    [row] = json.loads(report.read_text())
    mteb, harness = row["mteb"]["report"], row["harness"]["report"]
    assert compare_mteb.same_scores(mteb["scores"], harness["scores"])
    assert harness["scores"]["DemoAudioA2TRetrieval"] > 0.5  # chance is far below
    assert harness["decoded"] == mteb["decoded"] == 135  # every clip, once
    assert (
        harness["forwards"]
        == mteb["forwards"]
        == {
            "get_audio_features": 5,
            "get_text_features": 1,
        }
    )
