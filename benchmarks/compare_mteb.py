"""Side-by-side benchmark: the same CLIP on the same data through mteb and through ``harness run``.

Each side runs in its own fresh process (``benchmarks/mteb_side.py``,
``benchmarks/harness_side.py``); this script builds the models, starts the processes one after
the other, and prints, per suite, wall time, time inside the run, peak RSS, images decoded,
model forward calls, the ratio between the sides, and the main scores of both sides, which
must agree.

Suites: (a) text-to-image retrieval; (b) linear probe, zero-shot and clustering over one image
set, as CIFAR10 has in MIEB; (c) suite (b) again through the harness with the cache (b) left
(mteb has no cross-task cache; its row repeats (b)); (d) a Winoground-style compositionality task.

    python -m benchmarks.compare_mteb                 # demo CLIP and ViT-B/32-size CLIP
    python -m benchmarks.compare_mteb --models demo   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.models import DEMO_CLIP, ROOT

SUITES = ("a", "b", "c", "d")
SUITE_NAMES = {
    "a": "t2i retrieval",
    "b": "probe+zero-shot+clustering",
    "c": "(b) with a warm cache",
    "d": "compositionality",
}
# Targets of the issue, as the least harness-over-mteb speed-up per suite (for (c): over cold).
SCORE_DECIMALS = 6
TARGETS = {"a": 1.5, "b": 2.5, "c": 20.0, "d": 3.0}
MODEL_DIR_CACHE = Path(
    os.environ.get("HARNESS_BENCH_MODELS", Path.home() / ".cache" / "harness-bench")
)


@dataclass
class Measure:
    """One side of one suite, as its child process reported it."""

    side: str
    wall: float
    peak_rss_mib: float
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def run(self) -> float:
        return float(self.report["run_seconds"])

    @property
    def scores(self) -> dict[str, float]:
        return self.report["scores"]


def child_env(workdir: Path) -> dict[str, str]:
    """Offline, quiet, one fresh datasets cache for the whole benchmark (both sides)."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_CACHE=str(workdir / "hf-datasets"),
        TOKENIZERS_PARALLELISM="false",
        PYTHONWARNINGS="ignore",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def run_child(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run a child process; return its wall seconds and peak RSS (MiB, its largest process)."""
    start = time.perf_counter()
    with log.open("ab") as stream:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=stream, stderr=stream)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}); see {log}")
    return wall, usage.ru_maxrss / 1024


def model_dir(kind: str, workdir: Path, env: dict[str, str], log: Path) -> Path:
    """The directory of a model, built (once, cached) when it is not shipped."""
    if kind == "demo":
        return DEMO_CLIP
    directory = (MODEL_DIR_CACHE if kind == "b32" else workdir) / f"clip-{kind}-random"
    if not (directory / "model.safetensors").exists():
        run_child([sys.executable, "-m", "benchmarks.models", kind, str(directory)], env, log)
    return directory


def measure_suite(
    model: Path, suite: str, workdir: Path, env: dict[str, str], log: Path, batch_size: int
) -> dict[str, Measure]:
    """Run one suite on both sides; (c) reuses the cache that (b) left."""
    out: dict[str, Measure] = {}
    tag = f"{model.name}-{suite}"
    cache = workdir / f"cache-{model.name}-{'b' if suite == 'c' else suite}"
    sides: dict[str, list[str]] = {
        "harness": [
            "benchmarks.harness_side",
            str(model),
            suite,
            "",
            str(workdir / f"out-{tag}"),
            str(cache),
            str(batch_size),
        ],
    }
    if suite != "c":
        sides = {"mteb": ["benchmarks.mteb_side", str(model), suite, "", str(batch_size)], **sides}
    for side, args in sides.items():
        report = workdir / f"{side}-{tag}.json"
        args[args.index("")] = str(report)
        wall, rss = run_child([sys.executable, "-m", *args], env, log)
        out[side] = Measure(side, wall, rss, json.loads(report.read_text()))
    return out


def same_scores(reference: dict[str, float], mine: dict[str, float]) -> bool:
    """Equal at the precision of a result file (harness writes 6 decimals, as mteb's JSON)."""
    return reference.keys() == mine.keys() and all(
        round(reference[name], SCORE_DECIMALS) == round(mine[name], SCORE_DECIMALS)
        for name in reference
    )


def ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:.2f}x" if fast > 0 else "-"


def print_table(rows: list[tuple[str, str, dict[str, Measure]]], load: str) -> bool:
    """Print the table; returns whether every pair of main scores agrees."""
    header = (
        "model",
        "suite",
        "side",
        "wall s",
        "run s",
        "peak RSS MiB",
        "images decoded",
        "forward calls",
        "main scores",
    )
    lines = [header]
    agree = True
    cold: dict[str, Measure] = {}
    for model, suite, sides in rows:
        for side, m in sides.items():
            scores = " ".join(f"{v:.6f}" for _, v in sorted(m.scores.items()))
            lines.append(
                (
                    model,
                    suite,
                    side,
                    f"{m.wall:.1f}",
                    f"{m.run:.1f}",
                    f"{m.peak_rss_mib:.0f}",
                    str(m.report["images_decoded"]),
                    str(m.report["forward_calls"]),
                    scores,
                )
            )
        harness = sides["harness"]
        if suite == "b":
            cold[model] = harness
        reference = sides.get("mteb") or (cold.get(model) if suite == "c" else None)
        if reference is None:
            continue
        same = same_scores(reference.scores, harness.scores)
        agree &= same
        against = "harness cold" if suite == "c" else "mteb"
        lines.append(
            (
                model,
                suite,
                f"speed-up vs {against}",
                ratio(reference.wall, harness.wall),
                ratio(reference.run, harness.run),
                f"{harness.peak_rss_mib / reference.peak_rss_mib:.2f} of it",
                "",
                "",
                "scores agree" if same else "SCORES DIFFER",
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    print(f"\nload average at start: {load}")
    for n, line in enumerate(lines):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))
    print(f"load average at end: {load_average()}")
    return agree


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,b32", help="comma-separated: demo, tiny, b32")
    parser.add_argument("--suites", default=",".join(SUITES), help="comma-separated: a, b, c, d")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workdir", type=Path, help="keep reports and logs here")
    parser.add_argument("--json", type=Path, help="also write every measure to this JSON file")
    args = parser.parse_args(argv)
    suites = [s for s in SUITES if s in args.suites.split(",")]
    if "c" in suites and "b" not in suites:
        parser.error("suite c reruns suite b warm: list b too")
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        env, log = child_env(workdir), workdir / "children.log"
        print(f"children's output: {log}", flush=True)
        rows = []
        for kind in args.models.split(","):
            model = model_dir(kind, workdir, env, log)
            for suite in suites:
                print(f"  {kind} suite {suite} ({SUITE_NAMES[suite]}) ...", flush=True)
                rows.append(
                    (kind, suite, measure_suite(model, suite, workdir, env, log, args.batch_size))
                )
        agree = print_table(rows, load)
        if args.json:
            payload = [
                {"model": m, "suite": s, **{k: vars(v) for k, v in sides.items()}}
                for m, s, sides in rows
            ]
            args.json.write_text(json.dumps(payload, indent=1))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
