"""Issue 13, item 5: every bad input is a clear error (exit 2, no traceback) naming the task,
the item, the column and the fix; ``--skip-bad-inputs`` skips every per-item data fault and
records it; bad settings, model folders, task files and targets are refused before any work."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import pytest
import yaml

from harness.app.cli import main
from harness.engine import targets
from harness.tasks.registry import TASK_TYPES, builtin_tasks
from tests.dataset_fixtures import (
    COLOURS,
    ITEM_FEATURES,
    QREL_FEATURES,
    RGB,
    colour_retrieval,
    item_row,
    png_bytes,
    read_result_json,
    result_files,
    retrieval_task_yaml,
    run_cli,
    write_hub_dataset,
)

N = 6  # colours in the small t2i datasets below
TEXT_BINARY = datasets.Features({**ITEM_FEATURES, "text": datasets.Value("binary")})
Rows = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def _rows(bad_query: dict[str, Any] | None = None, bad_doc: dict[str, Any] | None = None) -> Rows:
    """Queries (colour names), documents (colour swatches) and one judgment each; item 2 of
    either side replaced by ``bad_query`` / ``bad_doc``."""
    queries = [item_row(f"q{i}", text=f"a {name} square") for i, name in enumerate(COLOURS[:N])]
    corpus = [
        item_row(f"d{i}", image=png_bytes(RGB[name], seed=i)) for i, name in enumerate(COLOURS[:N])
    ]
    if bad_query is not None:
        queries[2] = {**queries[2], **bad_query}
    if bad_doc is not None:
        corpus[2] = {**corpus[2], **bad_doc}
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(N)]
    return queries, corpus, qrels


def _task(
    root: Path,
    name: str,
    rows: Rows,
    queries_features: datasets.Features = ITEM_FEATURES,
    **extra: Any,
) -> Path:
    """A t2i task file over a hub-layout dataset of ``rows`` (queries, corpus, qrels)."""
    queries, corpus, qrels = rows
    parts = {
        "corpus": (corpus, ITEM_FEATURES),
        "queries": (queries, queries_features),
        "qrels": (qrels, QREL_FEATURES),
    }
    data = write_hub_dataset(root / "data", parts)
    return retrieval_task_yaml(root / "task.yaml", name, data, "t2i", **extra)


def _hub_task(
    tmp_path: Path, queries_features: datasets.Features = ITEM_FEATURES, **bad: Any
) -> Path:
    return _task(tmp_path, "Faulty", _rows(**bad), queries_features)


def _json_lines_task(tmp_path: Path, part: str, bad: dict[str, Any]) -> Path:
    """A card-less local dataset whose ``part`` is JSON lines, so a cell may hold any JSON
    value (``datasets`` reads a mixed column as it is); the other parts are parquet."""
    queries, corpus, qrels = _rows(**{"bad_query" if part == "queries" else "bad_doc": bad})
    rows = {"queries": queries, "corpus": corpus}
    others = {"qrels": (qrels, QREL_FEATURES)}
    other = "corpus" if part == "queries" else "queries"
    others[other] = (rows[other], ITEM_FEATURES)
    data = write_hub_dataset(tmp_path / "data", others, card=False)
    (data / part).mkdir()
    lines = [{**row, "image": None} if part == "queries" else row for row in rows[part]]
    (data / part / "test.jsonl").write_text("\n".join(json.dumps(row) for row in lines) + "\n")
    return retrieval_task_yaml(tmp_path / "task.yaml", "Faulty", data, "t2i")


def _missing_file_task(tmp_path: Path) -> Path:
    """The corpus image column holds file paths; the file of d2 does not exist."""
    queries, corpus, qrels = _rows()
    folder = tmp_path / "images"
    folder.mkdir()
    for row in corpus:
        (folder / f"{row['id']}.png").write_bytes(row["image"]["bytes"])
    (folder / "d2.png").unlink()
    paths = [{**row, "image": str(folder / f"{row['id']}.png")} for row in corpus]
    data = write_hub_dataset(
        tmp_path / "data",
        {"queries": (queries, ITEM_FEATURES), "qrels": (qrels, QREL_FEATURES)},
        card=False,
    )
    (data / "corpus").mkdir()
    lines = "\n".join(json.dumps(row) for row in paths)
    (data / "corpus" / "test.jsonl").write_text(lines + "\n")
    return retrieval_task_yaml(tmp_path / "task.yaml", "Faulty", data, "t2i")


PER_ITEM_FAULTS: dict[str, tuple[Callable[[Path], Path], str, list[str]]] = {
    "undecodable image": (
        lambda tmp: _hub_task(tmp, bad_doc={"image": {"bytes": b"\x89PNG no", "path": None}}),
        "d2",
        ["column 'image'", "cannot be decoded"],
    ),
    "zero-byte image": (
        lambda tmp: _hub_task(tmp, bad_doc={"image": {"bytes": b"", "path": None}}),
        "d2",
        ["column 'image'", "empty image (0 bytes)"],
    ),
    "missing image file": (
        _missing_file_task,
        "d2",
        ["column 'image'", "cannot be decoded", "No such file"],
    ),
    "int where text belongs": (
        lambda tmp: _json_lines_task(tmp, "queries", {"text": 7}),
        "q2",
        ["column 'text'", "holds int 7 where text belongs", "store text in it"],
    ),
    "float where text belongs": (
        lambda tmp: _json_lines_task(tmp, "queries", {"text": 2.5}),
        "q2",
        ["column 'text'", "holds float 2.5 where text belongs"],
    ),
    "non-UTF-8 text": (
        lambda tmp: _hub_task(
            tmp,
            TEXT_BINARY,
            bad_query={"text": b"caf\xe9 latin-1"},
        ),
        "q2",
        ["column 'text'", "not UTF-8 text", "store the text as UTF-8"],
    ),
    "empty text": (
        lambda tmp: _hub_task(tmp, bad_query={"text": "  ", "modality": "text"}),
        "q2",
        ["column 'text'", "empty text", "fill the cell or drop the row"],
    ),
    "None text": (
        lambda tmp: _hub_task(tmp, bad_query={"text": None, "modality": "text"}),
        "q2",
        ["column 'text'", "empty (None)", "fill the cell or drop the row"],
    ),
}


def _assert_clean_error(code: int, capsys: pytest.CaptureFixture[str], words: list[str]) -> str:
    """Exit status 2, no traceback, and ``words`` in the output (a failed task's reason is
    listed under the run's summary, a command's error on stderr); returns the output."""
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 2
    assert "Traceback" not in output
    missing = [word for word in words if word not in output]
    assert not missing, f"{missing} not in: {output}"
    return output


@pytest.mark.parametrize("fault", list(PER_ITEM_FAULTS))
def test_per_item_fault_is_a_clear_error_or_skipped(
    fault: str, tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, item_id, words = PER_ITEM_FAULTS[fault]
    task = build(tmp_path)
    code = run_cli(tiny_clip_dir, task, tmp_path)
    fix = "--skip-bad-inputs"
    _assert_clean_error(code, capsys, ["Faulty", f"item '{item_id}'", *words, fix])
    assert "Faulty" not in result_files(tmp_path)

    assert run_cli(tiny_clip_dir, task, tmp_path, "--skip-bad-inputs") == 0
    result = read_result_json(tmp_path, "Faulty")
    assert result["harness"]["skipped_inputs"] == {"test": [item_id]}
    assert 0.0 <= result["scores"]["test"][0]["main_score"] <= 1.0


def _duplicated(tmp_path: Path, part: str, **protocol: Any) -> Path:
    """Query q1 or document d3 on two rows, or (q4, d4) judged 0 and then 1."""
    queries, corpus, qrels = _rows()
    if part == "queries":
        queries.append(queries[1])
    elif part == "corpus":
        corpus.append(corpus[3])
    else:
        qrels.insert(4, {**qrels[4], "score": 0})
    extra = {"protocol": protocol} if protocol else {}
    return _task(tmp_path, "Twice", (queries, corpus, qrels), **extra)


@pytest.mark.parametrize(
    ("part", "words"),
    [
        ("queries", ["queries (column 'id')", "1 id(s): 'q1'"]),
        ("corpus", ["corpus (column 'id')", "1 id(s): 'd3'"]),
        ("qrels", ["qrels (columns 'query-id', 'corpus-id')", "(q4, d4)"]),
    ],
)
def test_duplicate_ids_and_judgments_are_named_or_collapsed_as_mteb_does(
    part: str,
    words: list[str],
    tiny_clip_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_cli(tiny_clip_dir, _duplicated(tmp_path / "a", part), tmp_path / "a")
    _assert_clean_error(code, capsys, ["Twice", *words, "duplicates: last"])
    # Collapsed, the last row of each counts: the scores of the dataset without duplicates.
    collapsed = _duplicated(tmp_path / "b", part, duplicates="last")
    assert run_cli(tiny_clip_dir, collapsed, tmp_path / "b") == 0
    assert run_cli(tiny_clip_dir, _task(tmp_path / "c", "Twice", _rows()), tmp_path / "c") == 0
    scores = [read_result_json(tmp_path / w, "Twice")["scores"]["test"][0] for w in "bc"]
    assert scores[0]["ndcg_at_10"] == scores[1]["ndcg_at_10"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


@pytest.mark.parametrize(
    ("file", "damage"),
    [
        ("model.safetensors", lambda p: p.write_bytes(b"\x10\0\0\0\0\0\0\0{not")),
        ("model.safetensors", _truncate),
        ("config.json", lambda p: p.write_text("{not json")),
        ("config.json", lambda p: p.write_text("[1]")),
    ],
    ids=["corrupt-safetensors", "truncated-safetensors", "config-not-json", "config-a-list"],
)
def test_broken_model_folder_is_refused_before_any_work(
    file: str,
    damage: Callable[[Path], object],
    tiny_clip_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_clip_dir, model)
    damage(model / file)
    code = run_cli(model, "DemoShapesT2IRetrieval", tmp_path)
    words = ["model directory", str(model), "is broken", file, "save the model again"]
    _assert_clean_error(code, capsys, words)
    assert not (tmp_path / "cache").exists()


def test_local_dataset_path_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = {"name": "Nowhere", "type": "retrieval", "category": "t2i"}
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({**entry, "dataset": {"path": "./no-such-data"}}))
    code = run_cli("demo-clip", task, tmp_path)
    words = ["Nowhere", "no such directory", str(tmp_path / "no-such-data"), "--data-dir"]
    assert "hub id" not in _assert_clean_error(code, capsys, words)


def test_task_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = tmp_path / "latin1.yaml"
    task.write_bytes("name: Caf\xe9\ntype: retrieval\n".encode("latin-1"))
    code = run_cli("demo-clip", task, tmp_path)
    _assert_clean_error(code, capsys, [str(task), "not UTF-8", "Save it as UTF-8"])


def test_yaml_alias_bomb_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    entry = {"name": "Bomb", "type": "retrieval", "category": "t2i", "dataset": {"path": "x/y"}}
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n" + yaml.safe_dump(entry) + "protocol: {x: *a9}\n")
    start = time.perf_counter()
    code = run_cli("demo-clip", bomb, tmp_path)
    assert time.perf_counter() - start < 5
    _assert_clean_error(code, capsys, [str(bomb), "alias bomb", "fewer aliases"])


@pytest.mark.parametrize(
    ("protocol", "main_score", "words"),
    [
        ({"k_values": [0, 10]}, None, ["k_values must be distinct positive integers"]),
        ({"k_values": [-5, 10]}, None, ["k_values must be distinct positive integers"]),
        ({"k_values": [1, 5]}, None, ["main score 'ndcg_at_10'", "ndcg_at_5"]),
        ({}, "ndcg@10", ["main score 'ndcg@10'", "Did you mean: ndcg_at_10"]),
        ({"unknown_qrels": "ignore"}, None, ["unknown_qrels", "'error', 'mteb' or 'drop'"]),
        ({"duplicates": "first"}, None, ["duplicates", "'error', 'last' or 'pool'"]),
    ],
    ids=["zero-k", "negative-k", "main-score-not-at-k", "bad-main-score", "bad-policy", "dups"],
)
def test_bad_task_settings_are_refused_before_any_work(
    protocol: dict[str, Any],
    main_score: str | None,
    words: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = colour_retrieval(tmp_path / "data", "t2i")
    extra: dict[str, Any] = {"protocol": protocol}
    if main_score is not None:
        extra["main_score"] = main_score
    task = retrieval_task_yaml(tmp_path / "task.yaml", "Settings", data, "t2i", **extra)
    code = main(["run", "--model", "demo-clip", "--tasks", str(task), "--output", str(tmp_path)])
    _assert_clean_error(code, capsys, ["Settings", *words])
    assert not any(tmp_path.glob("*/*/model_meta.json"))


def _demo_entry(task_type: str) -> tuple[dict[str, Any], list[str]]:
    """The first built-in task of ``task_type`` as a custom entry named ``Custom``, and the
    metrics its type reports for it."""
    task = next(task for task in builtin_tasks().values() if task.type == task_type)
    entry = {**task.model_dump(mode="json", exclude={"n_samples"}), "name": "Custom"}
    return entry, sorted(TASK_TYPES[task_type].metric_names(task))


@pytest.mark.parametrize("task_type", sorted(TASK_TYPES))
def test_a_main_score_the_type_does_not_report_is_refused_for_every_type(
    task_type: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry, known = _demo_entry(task_type)
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({**entry, "main_score": "bogus"}))
    code = main(["run", "--model", "demo-clip", "--tasks", str(task), "--output", str(tmp_path)])
    words = ["Custom", "unknown main score 'bogus'", f"type {task_type}", *known]
    _assert_clean_error(code, capsys, words)
    assert not list(tmp_path.glob("*/*/model_meta.json"))


def test_visual_sts_score_range_is_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry, _ = _demo_entry("visual_sts")
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({**entry, "protocol": {"min_score": 5, "max_score": 5}}))
    code = main(["run", "--model", "demo-clip", "--tasks", str(task), "--output", str(tmp_path)])
    _assert_clean_error(code, capsys, ["Custom", "min_score (5.0) must be below max_score (5.0)"])


def _run_to(tmp_path: Path, option: str, target: Path) -> int:
    """``harness run`` of the demo model on one demo task, writing to ``target``."""
    arguments = {"--output": tmp_path / "out", "--cache-dir": tmp_path / "cache"}
    arguments[option] = target
    paths = [str(arg) for pair in arguments.items() for arg in pair]
    return main(["run", "--model", "demo-clip", "--tasks", "DemoShapesT2IRetrieval", *paths])


@pytest.mark.parametrize("option", ["--output", "--cache-dir"])
@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_run_targets_that_are_files_or_links_are_refused(
    option: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target"  # nothing else exists, so nothing else may be written
    if kind == "file":
        target.write_text("a file")
        words = [str(target), "is a file, not a folder"]
    else:
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
        words = [str(target), "symbolic link", "refusing to follow"]
    code = _run_to(tmp_path, option, target)
    _assert_clean_error(code, capsys, [option, *words])
    written = [p for p in tmp_path.rglob("*") if p.name != "target"]
    assert written == ([tmp_path / "elsewhere"] if kind == "symlink" else [])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = _run_to(tmp_path, "--output", locked / "results")
    finally:
        locked.chmod(0o700)
    _assert_clean_error(code, capsys, ["--output", "not writable"])


def test_full_disk_under_output_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(_: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(targets.os, "fsync", full)
    code = _run_to(tmp_path, "--output", tmp_path / "results")
    words = ["--output", "not writable", os.strerror(errno.ENOSPC), "free space"]
    _assert_clean_error(code, capsys, words)
    assert not list(tmp_path.iterdir())


@pytest.fixture
def demo_results() -> Path:
    """The committed demo results: a valid results folder."""
    return Path(__file__).resolve().parent.parent / "results"


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (lambda results, target: ["submit", str(results), "--to", str(target)], "--to"),
        (
            lambda results, target: [
                "leaderboard",
                "--results",
                str(results),
                "--out",
                str(target),
            ],
            "--out",
        ),
        (
            lambda results, target: [
                "check",
                "--results",
                str(results),
                "--baseline",
                str(results),
                "--json",
                str(target),
            ],
            "--json",
        ),
    ],
    ids=["submit", "leaderboard", "check"],
)
def test_command_targets_that_are_links_are_refused(
    command: Callable[[Path, Path], list[str]],
    option: str,
    demo_results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "target"
    target.symlink_to(elsewhere / "x.json" if option == "--json" else elsewhere)
    code = main(command(demo_results, target))
    words = [option, str(target), "symbolic link", "refusing to follow"]
    _assert_clean_error(code, capsys, words)
    assert not list(elsewhere.iterdir())


def test_check_json_that_is_a_folder_and_submit_to_a_file_are_refused(
    demo_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--results", str(demo_results), "--baseline", str(demo_results)]
    code = main(["check", *args, "--json", str(tmp_path)])
    _assert_clean_error(code, capsys, ["--json", str(tmp_path), "is a folder"])
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    code = main(["submit", str(demo_results), "--to", str(blocker)])
    _assert_clean_error(code, capsys, ["--to", str(blocker), "is a file"])
    code = main(["leaderboard", "--results", str(demo_results), "--out", str(blocker / "site")])
    _assert_clean_error(code, capsys, ["--out", "not writable", "is a file"])


def test_output_piped_into_head_ends_quietly() -> None:
    harness = Path(sys.executable).parent / "harness"
    first = subprocess.run(
        f"'{harness}' tasks | head -1", shell=True, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0 and first.stdout.startswith("task")
    assert "Traceback" not in first.stderr and "BrokenPipe" not in first.stderr
    # A reader that is gone before anything is written: the write itself fails.
    closed = subprocess.Popen([harness, "tasks"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert closed.stdout is not None and closed.stderr is not None
    closed.stdout.close()
    stderr = closed.stderr.read().decode()
    assert closed.wait(timeout=120) in (0, 141)
    assert stderr == ""
