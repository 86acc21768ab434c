"""Write every demo dataset: ``python -m harness.tasks.demo OUT_DIR``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import datasets

from harness.tasks.demo.audio import build_audio
from harness.tasks.demo.build import build_demo_datasets
from harness.tasks.demo.classification import build_classification
from harness.tasks.demo.compositionality import build_compositionality
from harness.tasks.demo.documents import build_documents
from harness.tasks.demo.multiple_choice import build_multiple_choice
from harness.tasks.demo.video import build_video
from harness.tasks.demo.visual_sts import build_visual_sts


def build_all(out_dir: Path) -> None:
    """Every demo task type's datasets, deterministically, under ``out_dir``."""
    build_demo_datasets(out_dir)
    for build in (
        build_audio,
        build_classification,
        build_compositionality,
        build_documents,
        build_multiple_choice,
        build_visual_sts,
        build_video,
    ):
        build(out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m harness.tasks.demo OUT_DIR", file=sys.stderr)
        return 2
    datasets.disable_progress_bars()
    build_all(Path(args[0]))
    print(f"demo datasets written to {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
