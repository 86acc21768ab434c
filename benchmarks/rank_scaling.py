"""Data-parallel speed-up: one process against N torchrun ranks, on a compute-bound model.

    python -m benchmarks.rank_scaling [--ranks 2] [--images 240]

Builds the ViT-B/32-size random CLIP (``benchmarks.models``), then encodes the same image
retrieval task with no cache: once in one process (torch using every core), and once as N gloo
ranks with ``OMP_NUM_THREADS`` = cores / N each, so both sides use the same cores. Prints wall
times, the speed-up, and whether the scores agree. On a machine with C cores the honest ceiling
of N ranks is C / (cores one process already keeps busy), so on a 2-core CPU it is small.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.models import build_b32
from benchmarks.suites import ROOT

TASK = "DemoShapesI2IRetrieval"


def harness_run(prefix: list[str], model: Path, out: Path, images: int, env: dict) -> float:
    """Wall seconds of one ``harness run`` of the task under ``prefix``."""
    args = ["run", "--model", str(model), "--tasks", TASK, "--output", str(out), "--no-cache"]
    args += ["--limit", str(images), "--batch-size", "16", "--num-workers", "1", "--quiet"]
    start = time.perf_counter()
    subprocess.run(
        [*prefix, "-m", "harness", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main_score(out: Path) -> float:
    [path] = out.rglob(f"{TASK}.json")
    return json.loads(path.read_text())["scores"]["test"][0]["main_score"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--images", type=int, default=240, help="queries (--limit)")
    options = parser.parse_args()
    cores = os.cpu_count() or 1
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model = build_b32(root / "b32")
        one = harness_run([sys.executable], model, root / "one", options.images, env)
        threads = str(max(1, cores // options.ranks))
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        torchrun += ["--nproc-per-node", str(options.ranks)]
        many = harness_run(
            torchrun, model, root / "many", options.images, {**env, "OMP_NUM_THREADS": threads}
        )
        scores = main_score(root / "one"), main_score(root / "many")
    print(f"{TASK}, ViT-B/32-size CLIP, --limit {options.images}, {cores} cores, no cache")
    print(f"1 process ({cores} threads):         {one:7.1f} s")
    print(f"{options.ranks} ranks ({threads} thread(s) each):   {many:7.1f} s")
    print(f"speed-up: {one / many:.2f}x; scores {scores[0]:.6f} and {scores[1]:.6f}", end=" ")
    print("(identical)" if scores[0] == scores[1] else "(DIFFER)")


if __name__ == "__main__":
    main()
