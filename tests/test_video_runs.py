"""Issue 16, "Bad input" and item 6: video through ``harness run``.

Every bad clip is a clear error naming the task, item, column and fix (exit 2, no traceback),
or is skipped under ``--skip-bad-inputs``; a variable frame rate is sampled as mteb samples it;
an hours-long clip is capped at the frames the adapter declares, recorded in the result with
the decoder; a model without video is refused; and a clip shared by two tasks is decoded once
per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest

import harness.app.runner
from harness.app.cli import main
from harness.core.adapter import AdapterMeta, Item, Role
from harness.core.video import FrameSampling, Video, encode_video, video_pipeline
from tests.dataset_fixtures import read_result_json, result_files, run_cli, task_file
from tests.test_video import _silent_wav, clip_with_times

SAMPLING = FrameSampling(fps=2.0, max_frames=6)


class ToyVideoAdapter:
    """Embeds a clip by its mean brightness and how much it brightens over time."""

    meta = AdapterMeta(
        "toy-video",
        "v1",
        "test",
        "cosine",
        ("video",),
        "float32",
        modality_options={"video": SAMPLING.options()},
    )

    def __init__(self) -> None:
        self.frame_counts: list[int] = []

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        if isinstance(item["video"], np.ndarray):
            return item
        return {"video": item["video"].frames(SAMPLING).mean(axis=(1, 2, 3)) / 255.0}

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        rows = []
        for item in items:
            levels = self.preprocess(item)["video"]
            self.frame_counts.append(len(levels))
            rows.append([float(levels.mean()), float(levels[-1] - levels[0]), 0.2, 1.0])
        return np.asarray(rows, dtype=np.float32)


class ToyImageAdapter:
    meta = AdapterMeta("toy-image", "v1", "test", "cosine", ("image",), "float32")

    def encode(self, items: Sequence[Item], **kwargs: Any) -> np.ndarray:
        return np.ones((len(items), 2), np.float32)


@pytest.fixture
def toy_video(monkeypatch: pytest.MonkeyPatch) -> ToyVideoAdapter:
    """``harness run --model toy-video`` (or ``toy-image``) loads a toy adapter."""
    adapter = ToyVideoAdapter()
    real = harness.app.runner.load_adapter
    toys = {"toy-video": adapter, "toy-image": ToyImageAdapter()}

    def load(model: str, **kwargs: Any) -> Any:
        return toys[model] if model in toys else real(model, **kwargs)

    monkeypatch.setattr(harness.app.runner, "load_adapter", load)
    return adapter


def clip(level: int, n_frames: int = 6, fps: float = 4.0) -> bytes:
    """A clip that brightens from ``level`` by 4 per frame."""
    levels = np.clip(level + 4 * np.arange(n_frames), 0, 255).astype(np.uint8)
    return encode_video(np.broadcast_to(levels[:, None, None, None], (n_frames, 16, 16, 3)), fps)


def video_task(tmp_path: Path, bad: bytes | None = None, *, extra: bool = False) -> Path:
    """A v2c ``linear_probe`` task over dark (label 0) and bright (label 1) clips, in MVEB's
    classification layout (``video``: a datasets Video column; ``label``); test row 2
    replaced by ``bad`` when given. With ``extra``, a clustering task over the same clips."""
    train = [(clip(20 + 3 * i), 0) for i in range(4)] + [(clip(180 + 3 * i), 1) for i in range(4)]
    test = [(clip(25 + 5 * i), 0) for i in range(3)] + [(clip(185 + 5 * i), 1) for i in range(3)]
    if bad is not None:
        test[2] = (bad, 0)
    root = tmp_path / "data"
    (root / "data").mkdir(parents=True, exist_ok=True)
    features = datasets.Features({"video": datasets.Video(), "label": datasets.Value("int64")})
    for split, rows in {"train": train, "test": test}.items():
        table = datasets.Dataset.from_dict(
            {
                "video": [{"bytes": data, "path": None} for data, _ in rows],
                "label": [label for _, label in rows],
            },
            features=features,
        )
        table.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    entries = [
        {
            "name": "ToyClips",
            "type": "linear_probe",
            "category": "v2c",
            "dataset": {"path": str(root)},
            "protocol": {"samples_per_label": 4, "n_experiments": 2},
        }
    ]
    if extra:
        entries.append(
            {
                "name": "ToyClipsClustering",
                "type": "clustering_fast",
                "category": "v2c",
                "dataset": {"path": str(root)},
                "eval_splits": ["test"],
                "main_score": "v_measure",
                "protocol": {"max_fraction_of_documents_to_embed": None},
            }
        )
    return task_file(tmp_path / "tasks.yaml", entries)


def _truncated() -> bytes:
    return clip(10, n_frames=20)[:700]


RUN_FAULTS: dict[str, tuple[bytes, list[str]]] = {
    "undecodable clip": (b"not a video" * 20, ["FFmpeg cannot read it", "store MP4, WebM"]),
    "truncated clip": (_truncated(), ["FFmpeg cannot read it"]),
    "no video stream": (_silent_wav(), ["has no video stream", "read the column as audio"]),
    "zero-byte clip": (b"", ["holds an empty clip (0 bytes)", "store the clip's file bytes"]),
}


@pytest.mark.parametrize("fault", list(RUN_FAULTS))
def test_bad_clips_stop_the_run_clearly_or_are_skipped(
    fault: str, toy_video: ToyVideoAdapter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, words = RUN_FAULTS[fault]
    tasks = video_task(tmp_path, bad)
    code = run_cli("toy-video", tasks, tmp_path)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 2 and "Traceback" not in output
    for word in ["ToyClips", "item '2'", "column 'video'", *words, "--skip-bad-inputs"]:
        assert word in output, f"{word!r} not in: {output}"
    assert "ToyClips" not in result_files(tmp_path)

    assert run_cli("toy-video", tasks, tmp_path, "--skip-bad-inputs") == 0
    result = read_result_json(tmp_path, "ToyClips")
    assert result["harness"]["skipped_inputs"] == {"test": ["2"]}


def test_variable_rate_and_hours_long_clips_are_sampled_capped_and_recorded(
    toy_video: ToyVideoAdapter, tmp_path: Path
) -> None:
    hours_long = clip(30, n_frames=200, fps=0.05)  # 4000 s
    variable = clip_with_times([0, 40, 80, 400, 440, 1500, 1540, 3000])
    for data in (hours_long, variable):
        assert Video(data).num_frames in (200, 8)
    tasks = video_task(tmp_path, hours_long)
    assert run_cli("toy-video", tasks, tmp_path) == 0
    assert max(toy_video.frame_counts) == SAMPLING.max_frames  # the cap, not 8000 frames
    result = read_result_json(tmp_path, "ToyClips")
    recorded = {"video_fps": 2.0, "video_max_frames": 6, "video_min_frames": 1}
    assert result["harness"]["model"]["modality_options"] == {"video": recorded}
    assert result["harness"]["identity"]["model_modality_options"] == {"video": recorded}
    assert result["harness"]["environment"]["video_decoder"] == video_pipeline()["decoder"]
    assert result["scores"]["test"][0]["main_score"] > 0.5
    assert run_cli("toy-video", video_task(tmp_path / "vfr", variable), tmp_path / "vfr") == 0


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_image_only_model_is_refused_on_a_video_task(
    dry_run: bool, toy_video: ToyVideoAdapter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = video_task(tmp_path)
    # A dry run plans without loading a model: a registered image and text model's modalities.
    model, extra = ("ocr-tesseract-minilm", ["--dry-run"]) if dry_run else ("toy-image", [])
    args = ["run", "--model", model, "--tasks", str(tasks), "--output", str(tmp_path)]
    code = main([*args, "--quiet", *extra])
    output = "".join(capsys.readouterr())
    assert code == 2 and "Traceback" not in output
    assert "task ToyClips (category v2c) needs video inputs" in output
    assert "Leave the task out, or run a model that embeds video" in output
    assert not list(tmp_path.rglob("ToyClips.json"))


def test_a_clip_two_tasks_share_is_decoded_once_per_run(
    toy_video: ToyVideoAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[int] = []
    real_decode = Video._decode

    def counted(self: Video, indices: list[int]) -> Any:
        decoded.append(len(indices))
        return real_decode(self, indices)

    monkeypatch.setattr(Video, "_decode", counted)
    tasks = video_task(tmp_path, extra=True)
    # Without the embedding cache, the clustering task encodes the test clips again.
    out = tmp_path / "out"
    args = ["run", "--model", "toy-video", "--tasks", str(tasks), "--output", str(out)]
    assert main([*args, "--no-cache", "--num-workers", "0", "--quiet"]) == 0
    assert set(result_files(tmp_path, "ToyClips*")) == {"ToyClips", "ToyClipsClustering"}
    assert len(decoded) == 14  # 8 train and 6 test clips, each once


def test_modality_options_key_their_modality_only() -> None:
    plain = AdapterMeta("m", "v1", "clip", "cosine", ("image", "text"), "float32")
    video = replace(plain, modality_options={"video": {"video_num_frames": 8}})
    other = replace(plain, modality_options={"video": {"video_num_frames": 16}})
    assert video.fingerprint == plain.fingerprint  # text and image keep their keys and results
    assert video.key_fingerprint(["text"]) == video.key_fingerprint(["image"]) == plain.fingerprint
    assert video.key_fingerprint(["video"]) != plain.fingerprint
    assert video.key_fingerprint(["video", "text"]) != other.key_fingerprint(["video", "text"])
    assert "modality_options" not in plain.to_dict()
    assert video.to_dict()["modality_options"] == {"video": {"video_num_frames": 8}}
    assert video.options_for(["text", "image"]) == {}
