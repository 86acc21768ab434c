"""One side of the comparison: ``harness run`` on the demo tasks, in this process.

Run as ``python -m benchmarks.harness_side MODEL_DIR SUITE REPORT.json OUTPUT CACHE [BATCH]``
(CACHE ``-``: run with ``--no-cache``); it calls the ``harness`` console entry point with the
suite's tasks, then reads the result files.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks import _probe
from benchmarks.suites import SUITES


def main(
    model_dir: str,
    suite: str,
    report: Path,
    output: Path,
    cache: Path | None,
    batch_size: int = 32,
) -> None:
    """Run the suite through the harness CLI; write scores, counts, time and memory."""
    chosen = SUITES[suite]
    _probe.install(chosen.modality)
    from harness.app.cli import main as harness_main

    tasks = chosen.tasks
    start = time.perf_counter()
    argv = [
        "run",
        "--model",
        model_dir,
        "--tasks",
        ",".join(tasks),
        "--output",
        str(output),
        *(["--no-cache"] if cache is None else ["--cache-dir", str(cache)]),
        "--batch-size",
        str(batch_size),
        "--overwrite",
        "--quiet",
    ]
    status = harness_main(argv)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"harness run failed with status {status}")
    scores, encoding = {}, {}
    for name in tasks:
        [path] = output.glob(f"*/*/{name}.json")
        result = json.loads(path.read_text())
        scores[name] = float(result["scores"]["test"][0]["main_score"])
        encoding[name] = result["harness"]["encoding"]
    payload = {
        "scores": scores,
        "run_seconds": seconds,
        "peak_rss_mib": _probe.peak_rss_mib(),
        "encoding": encoding,
        **_probe.counts(),
    }
    _probe.write_report(report, payload)


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2],
        Path(sys.argv[3]),
        Path(sys.argv[4]),
        None if sys.argv[5] == "-" else Path(sys.argv[5]),
        *map(int, sys.argv[6:7]),
    )
