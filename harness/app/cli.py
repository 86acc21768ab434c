"""The ``harness`` command line: run, tasks, benchmarks, models, validate, submit, check,
results, leaderboard and cache."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.app.cache_command import add_cache_parser, cmd_cache
from harness.app.table import format_table
from harness.core.errors import HarnessError
from harness.engine.targets import file_target, folder_target
from harness.scoring.bootstrap import LEVEL

if TYPE_CHECKING:
    from harness.app.runner import RunSettings, TaskOutcome

# The embedded demo: demo-clip on every image, text and video demo task (videos frame-pooled),
# demo-clap on the audio ones, demo-xclip on the video ones, and the OCR + MiniLM baseline on
# the document task (when Tesseract is installed; `make demo` installs it).
DEMO_MODEL = "demo-clip"
DEMO_AUDIO_MODEL = "demo-clap"
DEMO_VIDEO_MODEL = "demo-xclip"
DEMO_OCR_BASELINE = ("ocr-tesseract-minilm", ["DemoDocRetrieval"])
# The exit status of a command stopped by a closed pipe (128 + SIGPIPE), as shells report it.
SIGPIPE_STATUS = 141


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


def _device_list(text: str) -> list[int]:
    try:
        devices = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected GPU indices like 0,1,2,3, got {text!r}"
        ) from None
    if not devices or min(devices) < 0 or len(set(devices)) != len(devices):
        raise argparse.ArgumentTypeError(f"expected distinct GPU indices, got {text!r}")
    return devices


def _data_dir(text: str) -> tuple[str, Path]:
    task, sep, path = text.partition("=")
    if not sep or not task or not path:
        raise argparse.ArgumentTypeError(f"expected TASK=PATH, got {text!r}")
    return task, Path(path)


# Brackets that group a model argument's value: a comma inside them does not end the value.
_CLOSERS = {"[": "]", "{": "}"}
# A quote opens a quoted string only after one of these (else it is text: ``prompt=it's``).
_QUOTE_OPENERS = frozenset("=,[{:")
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "none": None}


def parse_model_args(text: str) -> dict[str, Any]:
    """``key=value,...`` as a dict: values are JSON where they parse (numbers, lists, objects,
    double-quoted strings), ``true``/``false``/``null`` in any case, a single-quoted string
    without its quotes, else the text itself. A comma inside quotes or brackets is part of a
    value (a quote counts as one where a value or a JSON string starts)."""
    options: dict[str, Any] = {}
    for part in _split_top_level(text):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.isidentifier():
            raise argparse.ArgumentTypeError(f"expected key=value,..., got {part.strip()!r}")
        if not value:
            raise argparse.ArgumentTypeError(f"no value for {key} (quote an empty one: {key}='')")
        if key in options:
            raise argparse.ArgumentTypeError(f"{key} is given twice")
        options[key] = _model_arg_value(value)
    return options


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas that are outside quotes and brackets."""
    parts: list[str] = []
    current: list[str] = []
    expected: list[str] = []  # the closing brackets awaited, innermost last
    quote, previous = "", ","
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"" and previous in _QUOTE_OPENERS:
            quote = char
        elif char in _CLOSERS:
            expected.append(_CLOSERS[char])
        elif expected and char == expected[-1]:
            expected.pop()
        elif char == "," and not expected:
            parts.append("".join(current))
            current, previous = [], ","
            continue
        current.append(char)
        previous = char if not char.isspace() else previous
    if quote or expected:
        missing = quote or expected[-1]
        raise argparse.ArgumentTypeError(f"unbalanced {missing!r} in {text!r}")
    return [*parts, "".join(current)]


def _model_arg_value(value: str) -> Any:
    """One value: JSON where it parses (not NaN or Infinity), a word, or the text."""
    if value.lower() in _WORDS:
        return _WORDS[value.lower()]
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    try:
        return json.loads(value, parse_constant=_not_json)
    except ValueError:
        return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


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
    models = run.add_mutually_exclusive_group()
    models.add_argument("--model", help="registered name, hub id or local model directory")
    models.add_argument("--models", help="several comma-separated models, run one after another")
    run.add_argument(
        "--model-args",
        type=parse_model_args,
        default={},
        metavar="KEY=VALUE,...",
        help="model options, merged over a registered model's own and checked against its "
        "family's, e.g. max_length=64,padding=max_length (values parse as JSON where they "
        "can: numbers, true/false, null, [lists], {objects}; else text)",
    )
    selection = run.add_mutually_exclusive_group()
    selection.add_argument(
        "--tasks", help="comma-separated task names and/or custom task YAML files"
    )
    selection.add_argument(
        "--benchmark", help="run every task of a benchmark (`harness benchmarks`)"
    )
    run.add_argument("--output", type=Path, default=Path("results"), help="results folder")
    run.add_argument("--batch-size", type=_positive_int, default=32)
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    run.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    run.add_argument("--num-workers", type=_non_negative_int, default=2, help="image decoders")
    cache = run.add_mutually_exclusive_group()
    cache.add_argument("--cache-dir", type=Path, default=None, help="embedding cache folder")
    cache.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    run.add_argument("--overwrite", action="store_true", help="recompute finished tasks")
    run.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first task that fails (by default the others still run; exit 2)",
    )
    run.add_argument("--limit", type=_positive_int, help="at most N queries/items per split")
    run.add_argument(
        "--skip-bad-inputs",
        action="store_true",
        help="skip items that cannot be used (an image that does not decode or is missing, an "
        "empty or non-text text) and record them, instead of failing",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument(
        "--devices",
        type=_device_list,
        help="GPU indices, e.g. 0,1,2,3: launch one data-parallel rank per GPU (via torchrun)",
    )
    run.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="run here, or fan (model, task group) jobs out over a Ray cluster",
    )
    run.add_argument("--address", help="the Ray cluster to join (default: start a local one)")
    run.add_argument(
        "--gpus-per-job",
        type=float,
        help="GPUs each Ray job asks for (default: 1 with --device cuda, else 0)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the tasks, their sizes and the inputs to encode, then stop",
    )
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
    tasks.add_argument("--benchmark", help="only the tasks of this benchmark, in its order")
    commands.add_parser("benchmarks", help="list the benchmarks")
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

    check = commands.add_parser(
        "check",
        help="compare results with a baseline (exit 1 on a regression, 2 when not comparable)",
    )
    check.add_argument("--results", type=Path, required=True, help="the new results")
    check.add_argument(
        "--baseline",
        type=Path,
        required=True,
        help="the results to compare with: harness results and/or mteb's result files (these "
        "are judged by --tolerance alone)",
    )
    judge = check.add_mutually_exclusive_group()
    judge.add_argument(
        "--tolerance", type=float, help="flag a main score that fell by more than this"
    )
    judge.add_argument(
        "--ci",
        type=float,
        default=LEVEL,
        metavar="LEVEL",
        help=f"flag a drop whose interval at this level excludes 0 (default {LEVEL})",
    )
    check.add_argument("--tasks", help="only these comma-separated tasks")
    check.add_argument(
        "--all-metrics", action="store_true", help="list every metric, not only the main score"
    )
    check.add_argument("--json", type=Path, help="also write the verdicts to this JSON file")

    export = commands.add_parser(
        "results",
        help="export every score of results folders (harness and mteb files) as CSV or JSON",
        description="One row per model, revision, task, split, subset and metric (the Python "
        "API: harness.leaderboard.frame.results_frame). Files that cannot be used are listed on "
        "stderr.",
    )
    export.add_argument(
        "--results", type=Path, action="append", required=True, help="results folder (repeatable)"
    )
    export.add_argument(
        "--format", choices=("csv", "json"), default="csv", help="csv, or json (a list of rows)"
    )
    export.add_argument("--out", type=Path, help="the file to write (default: standard output)")

    board = commands.add_parser(
        "leaderboard", help="build the static leaderboard site from results folders"
    )
    board.add_argument(
        "--results", type=Path, action="append", required=True, help="results folder (repeatable)"
    )
    board.add_argument("--out", type=Path, required=True, help="folder for the site")
    board.add_argument(
        "--benchmark",
        action="append",
        help="a benchmark name (`harness benchmarks`), or a text file naming its tasks, one per "
        "line (its name is the file's); repeatable: a board (tab) per benchmark",
    )
    add_cache_parser(commands)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    """Run the evaluation and print the summary table."""
    from harness.tasks.benchmarks import benchmark_task_names
    from harness.tasks.registry import demo_tasks

    task_specs = benchmark_task_names(args.benchmark) if args.benchmark else None
    if args.tasks is not None:
        task_specs = args.tasks.split(",")
    models = args.models.split(",") if args.models else [args.model] if args.model else None
    if models is None and args.model_args:
        raise HarnessError("--model-args needs --model or --models")
    if models is None and task_specs is None:
        jobs = _demo_jobs(demo_tasks())
    elif models is None or task_specs is None:
        raise HarnessError(
            "pass --model (or --models) with --tasks or --benchmark, or none of them to run "
            "the embedded demo"
        )
    else:
        jobs = [(model, task_specs) for model in models]
    if args.dry_run:
        return _dry_run(jobs, args.executor, dict(args.data_dir), args.model_args)
    _check_model_args([model for model, _ in jobs], args.model_args)
    folder_target(args.output, "--output")
    if args.cache_dir is not None and not args.no_cache:
        folder_target(args.cache_dir, "--cache-dir", probe=False)
    if args.devices:
        return _launch_ranks(args.argv, args.devices)
    return _evaluate(args, jobs)


def _evaluate(args: argparse.Namespace, jobs: list[tuple[str, list[str]]]) -> int:
    """Evaluate each job here (or fan them out over Ray) and print the summaries."""
    from harness.app.runner import RunSettings, run
    from harness.engine.cache import default_cache_dir
    from harness.engine.distributed import rank_device, shards_from_environment

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
        fail_fast=args.fail_fast,
        model_options=args.model_args,
    )
    if args.executor == "ray":
        return _run_on_ray(args, jobs, settings)
    shards = shards_from_environment()
    if shards is not None:
        settings = replace(settings, device=rank_device(settings.device))
    failed: list[TaskOutcome] = []
    for model, task_specs in jobs:
        report = run(model, task_specs, settings, shards)
        failed += report.failed
        if shards is not None and not shards.is_main:
            continue
        print(f"\n{model}:")
        print(report.summary())
        print(f"\nResults written to {report.model_folder}")
    return _failures_status(failed)


def _failures_status(failed: Sequence[TaskOutcome]) -> int:
    """Exit status 2 when tasks failed, each one's error printed on stderr; else 0."""
    if not failed:
        return 0
    for outcome in failed:
        print(f"harness: error: {outcome.reason}", file=sys.stderr)
    print(
        f"harness: {len(failed)} task(s) failed; the others' results are written. Fix them and "
        "rerun: finished tasks are skipped.",
        file=sys.stderr,
    )
    return HarnessError.exit_code


def torchrun_command(argv: Sequence[str], devices: Sequence[int]) -> list[str]:
    """The torchrun command that reruns ``harness run`` (``argv`` less ``--devices``), one rank
    per device, each on ``cuda``."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices="):
            rest.append(arg)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [
        *launcher,
        "--nproc-per-node",
        str(len(devices)),
        "-m",
        "harness",
        *rest,
        "--device",
        "cuda",
    ]


def _launch_ranks(argv: list[str], devices: list[int]) -> int:
    """Run this command again under torchrun, one rank per listed GPU; its exit status."""
    import os
    import subprocess

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, devices))}
    return subprocess.run(torchrun_command(argv, devices), env=env).returncode


def _check_model_args(models: Sequence[str], options: dict[str, Any]) -> None:
    """Refuse model arguments that a model's family declares it does not take, before any
    model runs (a family that declares none refuses them when its model loads)."""
    from harness.model_adapters.registry import check_model_options

    for model in models:
        check_model_options(model, options)


def _dry_run(
    jobs: list[tuple[str, list[str]]],
    executor: str,
    data_dirs: dict[str, Path],
    model_options: dict[str, Any],
) -> int:
    """Print the plan of each model's run (and the Ray jobs), then every problem the runs
    would meet before scoring; exit 2 when there are any."""
    from harness.app.plan import data_dir_problems, plan, preflight, with_data_dirs
    from harness.model_adapters.registry import model_modalities
    from harness.tasks.registry import resolve_tasks

    problems: list[str] = []
    for model, specs in jobs:
        tasks = []
        for spec in specs:  # each bad task file or name is listed, not only the first
            try:
                tasks.extend(resolve_tasks([spec]))
            except HarnessError as error:
                problems.append(str(error))
        folders = data_dir_problems(tasks, data_dirs)
        problems.extend(folders)
        tasks = tasks if folders else with_data_dirs(tasks, data_dirs)
        try:
            modalities: tuple[str, ...] | None = model_modalities(model)
        except HarnessError as error:
            problems.append(str(error))
            modalities = None
        else:
            try:
                _check_model_args([model], model_options)
            except HarnessError as error:
                problems.append(str(error))
        problems.extend(preflight(model, tasks, modalities))
        print(f"{model}:")
        print(plan(tasks).report())
    if executor == "ray" and not problems:
        from harness.app.fanout import jobs_table, plan_jobs

        print("\nRay jobs (tasks that share a dataset run together):")
        fanned = [job for model, specs in jobs for job in plan_jobs([model], specs, data_dirs)]
        print(jobs_table(fanned))
    if problems:
        unique = list(dict.fromkeys(problems))
        print(f"\n{len(unique)} problem(s) would stop this run:", file=sys.stderr)
        print("\n".join(f"  - {problem}" for problem in unique), file=sys.stderr)
        return HarnessError.exit_code
    return 0


def _run_on_ray(
    args: argparse.Namespace, jobs: list[tuple[str, list[str]]], settings: RunSettings
) -> int:
    """Fan the runs out over Ray and print one summary of every job."""
    from harness.app.fanout import plan_jobs, run_on_ray

    fanned = [job for model, specs in jobs for job in plan_jobs([model], specs, settings.data_dirs)]
    gpus = args.gpus_per_job
    if gpus is None:
        gpus = 1.0 if args.device.startswith("cuda") else 0.0
    report = run_on_ray(fanned, settings, address=args.address, gpus_per_job=gpus)
    print(report.summary())
    print(f"\nResults written under {args.output}")
    return _failures_status(report.failed)


def _demo_jobs(tasks: list[str]) -> list[tuple[str, list[str]]]:
    """The models and tasks of the embedded demo."""
    from harness.tasks.registry import builtin_tasks

    print("No --model/--tasks given: running the embedded offline demo.")
    known = builtin_tasks()
    audio = [name for name in tasks if "audio" in known[name].input_modalities]
    video = [name for name in tasks if "video" in known[name].input_modalities]
    jobs = [
        (DEMO_MODEL, [name for name in tasks if name not in audio]),
        (DEMO_AUDIO_MODEL, audio),
        (DEMO_VIDEO_MODEL, video),
    ]
    if shutil.which("tesseract"):
        jobs.append(DEMO_OCR_BASELINE)
    else:
        print(f"Tesseract is not installed: skipping the {DEMO_OCR_BASELINE[0]} baseline.")
    return jobs


def cmd_tasks(args: argparse.Namespace) -> int:
    """Print the table of known tasks, or of one benchmark's tasks."""
    from harness.core.errors import UnknownNameError
    from harness.tasks.benchmarks import get_benchmark
    from harness.tasks.registry import TASK_TYPES, builtin_tasks, task_type

    if args.type and args.type not in TASK_TYPES:
        raise UnknownNameError("task type", args.type, TASK_TYPES)
    known = builtin_tasks()
    names = list(get_benchmark(args.benchmark).tasks) if args.benchmark else list(known)
    rows: list[tuple[object, ...]] = []
    for name in names:
        task = known.get(name)
        if task is None:
            rows.append((name, "not defined yet", "", "", "", "", ""))
        elif args.type in (None, task.type):
            size = sum(task.n_samples.values()) if task.n_samples else None
            splits = ",".join(task.eval_splits)
            main = task_type(task).main_score(task)
            rows.append((name, task.type, task.category, main, splits, size, task.dataset.path))
    headers = ("task", "type", "category", "main score", "splits", "size", "dataset")
    print(format_table(headers, rows))
    if args.benchmark:
        print(f"\n{len(rows)} tasks in {args.benchmark}.")
    return 0


def cmd_benchmarks(_: argparse.Namespace) -> int:
    """Print the benchmarks with their task counts."""
    from harness.tasks.benchmarks import builtin_benchmarks

    rows = [
        (
            b.name,
            len(b.tasks),
            len(b.tasks) - len(b.missing_tasks()),
            b.mteb_name or "",
            b.description,
        )
        for b in builtin_benchmarks().values()
    ]
    print(format_table(("benchmark", "tasks", "defined", "mteb name", "description"), rows))
    return 0


def cmd_models(_: argparse.Namespace) -> int:
    """Print the registered model names."""
    from harness.model_adapters.registry import registered_models

    rows = [
        (entry.name, entry.family, entry.revision, entry.description)
        for entry in registered_models().values()
    ]
    print(format_table(("model", "family", "revision", "description"), rows))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Print each problem with its file and fix; 1 when there are problems."""
    from harness.engine.validation import validate

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
    from harness.app.submission import submit

    folder_target(args.to, "--to")
    for entry in submit(args.path, args.to, overwrite=args.overwrite):
        print(f"{entry.status:9}  {entry.path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Print the verdicts; exit 0 (pass), 1 (a regression) or 2 (not comparable)."""
    from harness.app.check import CheckSettings, check
    from harness.engine.results import write_json_atomic

    settings = CheckSettings(
        tolerance=args.tolerance,
        level=args.ci,
        tasks=tuple(args.tasks.split(",")) if args.tasks else None,
        all_metrics=args.all_metrics,
    )
    if args.json:
        file_target(args.json, "--json")
    report = check(args.results, args.baseline, settings)
    print(report.table())
    if args.json:
        write_json_atomic(args.json, report.to_json())
    return report.exit_code


def cmd_results(args: argparse.Namespace) -> int:
    """Write every score as CSV or JSON; the files left out, and why, go to stderr."""
    from harness.engine.atomic import write_atomic
    from harness.leaderboard.frame import frame_records, results_frame

    if args.out:
        file_target(args.out, "--out")
    frame = results_frame(args.results)
    skipped = frame.attrs["skipped"]
    for item in skipped:
        print(f"skipped {item['path']}: {item['reason']}", file=sys.stderr)
    if frame.empty:
        files = len({item["path"] for item in skipped})
        roots = ", ".join(map(str, args.results))
        raise HarnessError(f"no usable result under {roots}: {files} file(s) skipped (above)")
    if args.format == "csv":
        text = frame.to_csv(index=False)
    else:
        text = json.dumps(frame_records(frame), indent=1) + "\n"
    if args.out:
        write_atomic(args.out, text.encode("utf-8"))
        print(f"{len(frame)} rows written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Build the static site and print the page to open."""
    from harness.leaderboard.board import Benchmark
    from harness.leaderboard.site import build_site
    from harness.tasks.benchmarks import benchmark_task_names
    from harness.tasks.registry import builtin_tasks

    folder_target(args.out, "--out")
    known = {name: task.type for name, task in builtin_tasks().items()}
    benchmarks = []
    for spec in args.benchmark or []:
        if Path(spec).is_file():
            benchmarks.append(Benchmark.from_file(Path(spec), known))
        else:
            tasks = benchmark_task_names(spec)
            benchmarks.append(Benchmark(spec, {name: known[name] for name in tasks}))
    names = [benchmark.name for benchmark in benchmarks]
    if len(set(names)) < len(names):
        raise HarnessError(f"--benchmark names one benchmark twice ({', '.join(names)})")
    collection = build_site(args.results, args.out, benchmarks)
    models = len({entry.key for entry in collection.entries})
    print(f"{len(collection.entries)} results of {models} model revisions; ", end="")
    print(f"{len(collection.custom)} of custom tasks (shown apart, not ranked); ", end="")
    print(f"{collection.skipped_files} files skipped (listed on skipped.html).")
    print(f"Open {(args.out / 'index.html').resolve().as_uri()}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "tasks": cmd_tasks,
    "benchmarks": cmd_benchmarks,
    "models": cmd_models,
    "validate": cmd_validate,
    "submit": cmd_submit,
    "check": cmd_check,
    "results": cmd_results,
    "leaderboard": cmd_leaderboard,
    "cache": cmd_cache,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # The reader went away (`harness tasks | head -1`): stop quietly, as `yes | head` does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_STATUS
    except KeyboardInterrupt:
        print("harness: interrupted; finished result files are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
