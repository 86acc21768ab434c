"""Light commands stay light: listing, validating, checking, exporting and publishing results, and
managing the embedding cache, never import torch, transformers, datasets or scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "datasets", "sklearn")
# Runs one `harness` command in a fresh interpreter, then reports its exit status and the heavy
# libraries it imported on a last line of its own.
WRAPPER = f"""
import json, sys
from harness.app.cli import main
status = main(sys.argv[1:])
heavy = sorted(name for name in {HEAVY!r} if name in sys.modules)
print("\\n" + json.dumps({{"status": status, "heavy": heavy}}))
"""


def run_light(*argv: str) -> tuple[int, list[str], str]:
    """The command's exit status, the heavy libraries it imported, and what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output, _, last = done.stdout.rstrip().rpartition("\n")
    report = json.loads(last)
    return report["status"], report["heavy"], output


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("tasks",), "DemoShapesT2IRetrieval"),
        (("tasks", "--type", "retrieval"), "DemoShapesT2IRetrieval"),
        (("benchmarks",), "mieb-lite"),
        (("models",), "demo-clip"),
        (("validate", "results"), "are valid"),
        (("check", "--results", "results", "--baseline", "results"), "DemoShapesT2IRetrieval"),
        (("results", "--results", "results"), "demo-clip,demo-v1,False,DemoShapesT2IRetrieval"),
    ],
    ids=["tasks", "tasks-type", "benchmarks", "models", "validate", "check", "results"],
)
def test_light_command_does_its_job_without_heavy_imports(
    argv: tuple[str, ...], expected: str
) -> None:
    status, heavy, output = run_light(*argv)
    assert status == 0, output
    assert expected in output
    assert heavy == []


def test_leaderboard_builds_the_site_without_heavy_imports(tmp_path: Path) -> None:
    site = tmp_path / "site"
    status, heavy, output = run_light("leaderboard", "--results", "results", "--out", str(site))
    assert status == 0, output
    assert (site / "index.html").is_file()
    assert heavy == []


def test_cache_info_and_prune_without_heavy_imports(tmp_path: Path) -> None:
    from harness.engine.cache import EmbeddingCache

    EmbeddingCache(tmp_path).put_many({"ab" * 32: np.ones(4, np.float32)})
    status, heavy, output = run_light("cache", "info", "--cache-dir", str(tmp_path))
    assert (status, heavy) == (0, [])
    assert "entries               1" in output
    status, heavy, output = run_light("cache", "prune", "--all", "--cache-dir", str(tmp_path))
    assert (status, heavy) == (0, [])
    assert "Dropped 1 entries; reclaimed 16 B" in output


def test_dry_run_loads_no_model_library() -> None:
    """A dry run reads local datasets (to count their inputs) but never imports a model
    library or scikit-learn."""
    argv = ("run", "--model", "demo-clip", "--tasks", "DemoShapesT2IRetrieval", "--dry-run")
    status, heavy, output = run_light(*argv)
    assert status == 0, output
    assert "600 inputs to encode" in output
    assert heavy == ["datasets"]
