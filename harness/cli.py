"""The ``harness`` command line: ``run``, ``tasks``, ``models``, ``validate`` and ``submit``."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.cache import default_cache_dir
from harness.errors import HarnessError
from harness.table import format_table

# The embedded demo: demo-clip on every demo task, and the OCR + MiniLM baseline on the
# document task (when Tesseract is installed; `make demo` installs it).
DEMO_MODEL = "demo-clip"
DEMO_OCR_BASELINE = ("ocr-tesseract-minilm", ["DemoDocRetrieval"])


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _data_dir(text: str) -> tuple[str, Path]:
    task, sep, path = text.partition("=")
    if not sep or not task or not path:
        raise argparse.ArgumentTypeError(f"expected TASK=PATH, got {text!r}")
    return task, Path(path)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    parser = argparse.ArgumentParser(
        prog="harness", description="Evaluate embedding models on MTEB/MIEB-style tasks."
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="evaluate a model on tasks",
        description="Evaluate a model on tasks. With neither --model nor --tasks, runs the "
        "embedded offline demo.",
    )
    run.add_argument("--model", help="registered name, hub id or local model directory")
    run.add_argument("--tasks", help="comma-separated task names and/or custom task YAML files")
    run.add_argument("--output", type=Path, default=Path("results"), help="results folder")
    run.add_argument("--batch-size", type=_positive_int, default=32)
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    run.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    run.add_argument("--num-workers", type=_non_negative_int, default=2, help="image decoders")
    cache = run.add_mutually_exclusive_group()
    cache.add_argument("--cache-dir", type=Path, default=None, help="embedding cache folder")
    cache.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    run.add_argument("--overwrite", action="store_true", help="recompute finished tasks")
    run.add_argument("--limit", type=_positive_int, help="at most N queries/items per split")
    run.add_argument(
        "--skip-bad-inputs",
        action="store_true",
        help="skip items whose image cannot be decoded and record them, instead of failing",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument(
        "--data-dir",
        type=_data_dir,
        action="append",
        default=[],
        metavar="TASK=PATH",
        help="read TASK's dataset from a local copy in the hub layout (repeatable)",
    )

    tasks = commands.add_parser("tasks", help="list the known tasks")
    tasks.add_argument("--type", help="only tasks of this type")
    commands.add_parser("models", help="list the registered model names")

    validate = commands.add_parser(
        "validate", help="check results before submitting them (exit 1 when problems are found)"
    )
    validate.add_argument("path", type=Path, help="a results folder or one result file")
    submit = commands.add_parser(
        "submit", help="validate results, then file them under a leaderboard results tree"
    )
    submit.add_argument("path", type=Path, help="a results folder or one result file")
    submit.add_argument("--to", type=Path, required=True, help="the leaderboard results folder")
    submit.add_argument(
        "--overwrite", action="store_true", help="replace filed results that differ"
    )

    board = commands.add_parser(
        "leaderboard", help="build the static leaderboard site from results folders"
    )
    board.add_argument(
        "--results", type=Path, action="append", required=True, help="results folder (repeatable)"
    )
    board.add_argument("--out", type=Path, required=True, help="folder for the site")
    board.add_argument(
        "--benchmark",
        type=Path,
        help="a text file naming the benchmark's tasks, one per line (its name is the file's)",
    )
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    """Run the evaluation and print the summary table."""
    from harness.runner import RunSettings, run
    from tasks.registry import demo_tasks

    if args.model is None and args.tasks is None:
        plan = _demo_plan(demo_tasks())
    elif args.model is None or args.tasks is None:
        raise HarnessError("pass both --model and --tasks, or neither to run the embedded demo")
    else:
        plan = [(args.model, args.tasks.split(","))]
    settings = RunSettings(
        output=args.output,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        num_workers=args.num_workers,
        cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()),
        overwrite=args.overwrite,
        limit=args.limit,
        skip_bad_inputs=args.skip_bad_inputs,
        show_progress=not args.quiet,
        data_dirs=dict(args.data_dir),
    )
    for model, task_specs in plan:
        report = run(model, task_specs, settings)
        print(f"\n{model}:")
        print(report.summary())
        print(f"\nResults written to {report.model_folder}")
    return 0


def _demo_plan(tasks: list[str]) -> list[tuple[str, list[str]]]:
    """The models and tasks of the embedded demo."""
    print("No --model/--tasks given: running the embedded offline demo.")
    plan = [(DEMO_MODEL, tasks)]
    if shutil.which("tesseract"):
        plan.append(DEMO_OCR_BASELINE)
    else:
        print(f"Tesseract is not installed: skipping the {DEMO_OCR_BASELINE[0]} baseline.")
    return plan


def cmd_tasks(args: argparse.Namespace) -> int:
    """Print the table of known tasks."""
    from tasks.registry import TASK_TYPES, builtin_tasks, task_type

    if args.type and args.type not in TASK_TYPES:
        from harness.errors import UnknownNameError

        raise UnknownNameError("task type", args.type, TASK_TYPES)
    rows = [
        (
            t.name,
            t.type,
            t.category,
            task_type(t).main_score(t),
            ",".join(t.eval_splits),
            t.dataset.path,
        )
        for t in builtin_tasks().values()
        if args.type in (None, t.type)
    ]
    print(format_table(("task", "type", "category", "main score", "splits", "dataset"), rows))
    return 0


def cmd_models(_: argparse.Namespace) -> int:
    """Print the registered model names."""
    from model_adapters.registry import registered_models

    rows = [
        (entry.name, entry.family, entry.revision, entry.description)
        for entry in registered_models().values()
    ]
    print(format_table(("model", "family", "revision", "description"), rows))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Print each problem with its file and fix; 1 when there are problems."""
    from harness.validation import validate

    validation = validate(args.path)
    for problem in validation.problems:
        print(problem)
    count = len(validation.results)
    if validation.problems:
        print(f"\n{len(validation.problems)} problem(s) in {args.path}.")
        return 1
    print(f"{count} result file(s) in {args.path} are valid.")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate, then file the results under the canonical layout."""
    from harness.submission import submit

    for entry in submit(args.path, args.to, overwrite=args.overwrite):
        print(f"{entry.status:9}  {entry.path}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Build the static site and print the page to open."""
    from leaderboard.site import Benchmark, build_site
    from tasks.registry import builtin_tasks

    benchmark = None
    if args.benchmark is not None:
        known = {name: task.type for name, task in builtin_tasks().items()}
        benchmark = Benchmark.from_file(args.benchmark, known)
    collection = build_site(args.results, args.out, benchmark)
    models = len({entry.model for entry in collection.entries})
    print(f"{len(collection.entries)} results of {models} models; ", end="")
    print(f"{len(collection.skipped)} files skipped (listed on skipped.html).")
    print(f"Open {(args.out / 'index.html').resolve().as_uri()}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "tasks": cmd_tasks,
    "models": cmd_models,
    "validate": cmd_validate,
    "submit": cmd_submit,
    "leaderboard": cmd_leaderboard,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted; finished result files are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
