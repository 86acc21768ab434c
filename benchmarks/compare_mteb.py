"""Side-by-side benchmark: the same model on the same data through mteb and through ``harness run``.

Each side runs in its own fresh process (``benchmarks/mteb_side.py``,
``benchmarks/harness_side.py``); this script builds the models, starts the processes one after
the other, and prints, per suite, wall time, time inside the run, peak RSS, items decoded
(images or clips), model forward calls, the ratio between the sides, and the main scores of
both sides, which must agree.

Suites (``benchmarks/suites.py``), images with a CLIP: (a) text-to-image retrieval; (b) linear
probe, zero-shot and clustering over one image set, as CIFAR10 has in MIEB; (c) suite (b) again
through the harness with the cache (b) left (mteb has no cross-task cache; its row repeats
(b)); (d) a Winoground-style compositionality task. Audio with the demo CLAP: (e) audio-to-text
retrieval; (f) linear probe, zero-shot and clustering over one clip set, with MAEB's protocols;
(g) suite (f) with the cache (f) left. Video with an X-CLIP: (h) text-to-video and
video-to-text retrieval; (i) linear probe, zero-shot and clustering over one clip set; (j)
suite (i) with the cache (i) left; (k) suite (i) through the harness without the embedding
cache (the run's frame store alone keeps each clip to one decode), against (i)'s mteb side;
(l) the motion probe, whose clips come with their time-reversed twins (equal scores there
mean both sides order the frames alike).

    python -m benchmarks.compare_mteb                 # all suites; images also at ViT-B/32 size
    python -m benchmarks.compare_mteb --models demo   # quick
    python -m benchmarks.compare_mteb --models demo --suites e,f,g --repeat 2   # audio only
    python -m benchmarks.compare_mteb --models demo --suites h,i,j,k             # video only
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

from benchmarks.suites import ROOT, STACKS, SUITES, Suite

SCORE_DECIMALS = 6
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


def model_dir(
    kind: str, modality: str, workdir: Path, env: dict[str, str], log: Path
) -> Path | None:
    """The directory of a model, built (once, cached) when it is not shipped; None when the
    modality has no model of that kind."""
    stack = STACKS[modality]
    if kind in stack.shipped:
        shipped = stack.shipped[kind]
        if not (shipped / "config.json").exists():
            raise SystemExit(f"{shipped} is missing: train it (scripts/) or pick other --models")
        return shipped
    builder = stack.built.get(kind)
    if builder is None:
        return None
    directory = (MODEL_DIR_CACHE if kind == "b32" else workdir) / f"{builder}-random"
    if not (directory / "model.safetensors").exists():
        run_child([sys.executable, "-m", "benchmarks.models", builder, str(directory)], env, log)
    return directory


def measure_suite(
    model: Path, suite: Suite, workdir: Path, env: dict[str, str], log: Path, batch_size: int
) -> dict[str, Measure]:
    """Run one suite on both sides; a suite that reruns another runs on the harness side only,
    with the cache that suite left (warm) or none (bare)."""
    out: dict[str, Measure] = {}
    tag = f"{model.name}-{suite.key}"
    cache = "-" if suite.cache_of is None else str(workdir / f"cache-{model.name}-{suite.cache_of}")
    sides: dict[str, list[str]] = {
        "harness": [
            "benchmarks.harness_side",
            str(model),
            suite.key,
            "",
            str(workdir / f"out-{tag}"),
            cache,
            str(batch_size),
        ],
    }
    if suite.rerun_of is None:
        mteb = ["benchmarks.mteb_side", str(model), suite.key, "", str(batch_size)]
        sides = {"mteb": mteb, **sides}
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


def decoded_cell(report: dict[str, Any]) -> str:
    """Items decoded; for video, clip decodes and the frames they decoded."""
    if "frames" in report:
        return f"{report['decoded']} ({report['frames']} frames)"
    return str(report["decoded"])


def ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:.2f}x" if fast > 0 else "-"


def print_table(rows: list[tuple[str, Suite, dict[str, Measure]]], load: str) -> bool:
    """Print the table; returns whether every pair of main scores agrees."""
    header = (
        "model",
        "suite",
        "side",
        "wall s",
        "run s",
        "peak RSS MiB",
        "decoded",
        "forward calls",
        "main scores",
    )
    lines = [header]
    agree = True
    sides_of: dict[tuple[str, str], dict[str, Measure]] = {}
    for model, suite, sides in rows:
        for side, m in sides.items():
            scores = " ".join(f"{v:.6f}" for _, v in sorted(m.scores.items()))
            lines.append(
                (
                    model,
                    suite.key,
                    side,
                    f"{m.wall:.1f}",
                    f"{m.run:.1f}",
                    f"{m.peak_rss_mib:.0f}",
                    decoded_cell(m.report),
                    str(m.report["forward_calls"]),
                    scores,
                )
            )
        sides_of[model, suite.key] = sides
        against = "harness cold" if suite.warm_of else "mteb"
        of = sides_of.get((model, suite.rerun_of or suite.key), {})
        reference = of.get("harness" if suite.warm_of else "mteb")
        if reference is None:
            continue
        harness = sides["harness"]
        same = same_scores(reference.scores, harness.scores)
        agree &= same
        lines.append(
            (
                model,
                suite.key,
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


def best_of(rounds: list[dict[str, Measure]]) -> dict[str, Measure]:
    """Per side, the round with the least wall time."""
    return {side: min((r[side] for r in rounds), key=lambda m: m.wall) for side in rounds[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default="demo,b32",
        help="comma-separated: demo, tiny, b32 (audio: demo only; video: demo, tiny)",
    )
    parser.add_argument(
        "--suites", default=",".join(SUITES), help=f"comma-separated, of {', '.join(SUITES)}"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--repeat", type=int, default=1, help="run every suite this many times, keep the fastest"
    )
    parser.add_argument("--workdir", type=Path, help="keep reports and logs here")
    parser.add_argument("--json", type=Path, help="also write every measure to this JSON file")
    args = parser.parse_args(argv)
    keys = args.suites.split(",")
    if unknown := sorted(set(keys) - set(SUITES)):
        parser.error(f"unknown suites {unknown}; known: {', '.join(SUITES)}")
    suites = [suite for key, suite in SUITES.items() if key in keys]
    for suite in suites:
        if suite.rerun_of and suite.rerun_of not in keys:
            warm = " warm" if suite.warm_of else ""
            parser.error(f"suite {suite.key} reruns suite {suite.rerun_of}{warm}: list it too")
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        env, log = child_env(workdir), workdir / "children.log"
        print(f"children's output: {log}", flush=True)
        measured: dict[tuple[str, str], list[dict[str, Measure]]] = {}
        for round_number in range(args.repeat):
            round_dir = workdir / f"round-{round_number}"
            round_dir.mkdir(exist_ok=True)
            for kind in args.models.split(","):
                for suite in suites:
                    model = model_dir(kind, suite.modality, workdir, env, log)
                    if model is None:
                        continue  # no model of this kind for the suite's modality
                    print(f"  {kind} suite {suite.key} ({suite.title}) ...", flush=True)
                    measure = measure_suite(model, suite, round_dir, env, log, args.batch_size)
                    measured.setdefault((kind, suite.key), []).append(measure)
        agree = all(
            same_scores(rounds[0][side].scores, other[side].scores)
            for rounds in measured.values()
            for other in rounds
            for side in other
        )
        rows = [(kind, SUITES[key], best_of(rounds)) for (kind, key), rounds in measured.items()]
        agree &= print_table(rows, load)
        if args.json:
            payload = [
                {"model": m, "suite": s.key, **{k: vars(v) for k, v in sides.items()}}
                for m, s, sides in rows
            ]
            args.json.write_text(json.dumps(payload, indent=1))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
