"""The command line, and bad input: clear errors with exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from harness.app.cli import main
from tests.dataset_fixtures import (
    ITEM_FEATURES,
    QREL_FEATURES,
    colour_retrieval,
    item_row,
    png_bytes,
    read_result_json,
    retrieval_task_yaml,
    run_cli,
    write_hub_dataset,
)


def test_unknown_task_names_the_closest_and_runs_nothing(
    tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(tiny_clip_dir, "DemoShapesT2IRetrieval,DemoShapesI2TRetreival", tmp_path)
    error = capsys.readouterr().err
    assert code == 2
    assert "DemoShapesI2TRetreival" in error and "Did you mean: DemoShapesI2TRetrieval" in error
    assert not (tmp_path / "out").exists()


def test_unknown_model_names_the_closest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli("all-MiniLM-L6", "DemoShapesT2IRetrieval", tmp_path)
    assert code == 2
    assert "all-MiniLM-L6-v2" in capsys.readouterr().err


def test_missing_column_names_column_config_and_task(
    tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_text = datasets.Features({"id": datasets.Value("string"), "image": datasets.Image()})
    image = {"bytes": png_bytes((255, 0, 0)), "path": None}
    data = write_hub_dataset(
        tmp_path / "broken",
        {
            "corpus": ([{"id": "d0", "image": image}], no_text),
            "queries": ([{"id": "q0", "image": image}], no_text),
            "qrels": ([{"query-id": "q0", "corpus-id": "d0", "score": 1}], QREL_FEATURES),
        },
    )
    task = retrieval_task_yaml(tmp_path / "broken.yaml", "BrokenT2I", data, "t2i")
    code = run_cli(tiny_clip_dir, task, tmp_path)
    error = capsys.readouterr().err
    assert code == 2
    assert "BrokenT2I" in error and "'queries'" in error and "text" in error


def _task_with_a_corrupt_image(tmp_path: Path) -> Path:
    good = png_bytes((0, 0, 255))
    corpus = [item_row("d0", image=good), item_row("broken-doc", image=b"\x89PNG not really")]
    queries = [item_row("q0", text="blue"), item_row("q1", text="red")]
    qrels = [
        {"query-id": "q0", "corpus-id": "d0", "score": 1},
        {"query-id": "q1", "corpus-id": "broken-doc", "score": 1},
    ]
    data = write_hub_dataset(
        tmp_path / "corrupt",
        {
            "corpus": (corpus, ITEM_FEATURES),
            "queries": (queries, ITEM_FEATURES),
            "qrels": (qrels, QREL_FEATURES),
        },
    )
    return retrieval_task_yaml(tmp_path / "corrupt.yaml", "CorruptT2I", data, "t2i")


def test_undecodable_image_names_item_and_task(
    tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _task_with_a_corrupt_image(tmp_path)
    code = run_cli(tiny_clip_dir, task, tmp_path)
    error = capsys.readouterr().err
    assert code == 2
    assert "broken-doc" in error and "CorruptT2I" in error and "--skip-bad-inputs" in error


def test_skip_bad_inputs_records_the_skipped_items(tiny_clip_dir: Path, tmp_path: Path) -> None:
    task = _task_with_a_corrupt_image(tmp_path)
    code = run_cli(tiny_clip_dir, task, tmp_path, "--skip-bad-inputs")
    assert code == 0
    result = read_result_json(tmp_path, "CorruptT2I")
    assert result["harness"]["skipped_inputs"] == {"test": ["broken-doc"]}


def test_cuda_without_cuda_is_a_clear_error(
    tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = run_cli(tiny_clip_dir, "DemoShapesT2IRetrieval", tmp_path, "--device", "cuda")
    assert code == 2
    assert "CUDA" in capsys.readouterr().err


def test_unwritable_output_fails_before_encoding(
    tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = colour_retrieval(tmp_path / "colours", "t2i")
    task = retrieval_task_yaml(tmp_path / "colours.yaml", "ColoursT2I", data, "t2i")
    code = main(
        [
            "run",
            "--model",
            str(tiny_clip_dir),
            "--tasks",
            str(task),
            "--quiet",
            "--output",
            str(blocker / "results"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 2
    assert "not writable" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_empty_task_name_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli("demo-clip", "DemoShapesT2IRetrieval,,DemoShapesI2TRetrieval", tmp_path)
    assert code == 2
    assert "stray comma" in capsys.readouterr().err


def test_tasks_and_models_listings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks", "--type", "retrieval"]) == 0
    listing = capsys.readouterr().out
    assert "DemoShapesI2IRetrieval" in listing and "ndcg_at_10" in listing
    assert main(["models"]) == 0
    models = capsys.readouterr().out
    assert "demo-clip" in models and "all-MiniLM-L6-v2" in models
    assert main(["tasks", "--type", "retreival"]) == 2


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--model",
            "no-such-model",
            "--tasks",
            "DemoShapesT2IRetrieval",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "unknown model 'no-such-model'" in completed.stderr
