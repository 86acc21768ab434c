"""Local folders holding one data file per part (``corpus.parquet``, ``queries.jsonl``...) and
BEIR's own layout, read without a ``configs:`` map, end to end through ``harness run``."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.core.errors import HarnessError
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import local_content_hash
from harness.tasks.registry import load_task_file
from harness.tasks.retrieval import Retrieval
from tests.dataset_fixtures import (
    QREL_FEATURES,
    read_result_json,
    run_cli,
    task_file,
    write_hub_dataset,
)

Rows = list[dict[str, Any]]
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
# Ids with leading zeros: a delimited file must keep them as text ("007", not 7).
CORPUS: Rows = [
    {"_id": f"00{i}", "title": "" if i == 0 else f"{name} swatch", "text": f"a {name} square"}
    for i, name in enumerate(COLOURS)
]
QUERIES: Rows = [
    {"_id": f"0{i}", "text": f"which one is {name}?"} for i, name in enumerate(COLOURS)
]
QRELS: Rows = [
    {"query-id": f"0{i}", "corpus-id": f"00{j}", "score": score}
    for i in range(len(COLOURS))
    for j, score in ((i, 2), ((i + 1) % len(COLOURS), 1))
]
EXPECTED_QRELS = {
    f"0{i}": {f"00{i}": 2, f"00{(i + 1) % len(COLOURS)}": 1} for i in range(len(COLOURS))
}
PARTS = {"corpus": CORPUS, "queries": QUERIES, "qrels": QRELS}


def _write_delimited(path: Path, rows: Rows, delimiter: str) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


WRITERS: dict[str, Callable[[Path, Rows], object]] = {
    ".parquet": lambda path, rows: pq.write_table(pa.Table.from_pylist(rows), path),
    ".jsonl": lambda path, rows: path.write_text("".join(json.dumps(r) + "\n" for r in rows)),
    ".json": lambda path, rows: path.write_text(json.dumps(rows)),
    ".csv": lambda path, rows: _write_delimited(path, rows, ","),
    ".tsv": lambda path, rows: _write_delimited(path, rows, "\t"),
}


def one_file_per_part(root: Path, suffix: str, parts: dict[str, Rows] = PARTS) -> Path:
    """``<part><suffix>`` for each part, at the top of ``root``."""
    root.mkdir(parents=True)
    for part, rows in parts.items():
        WRITERS[suffix](root / f"{part}{suffix}", rows)
    return root


def beir_folder(root: Path) -> Path:
    """BEIR's download layout: corpus.jsonl, queries.jsonl (with ``metadata``), and one
    qrels/<split>.tsv per split (a dev split judging other pairs)."""
    root.mkdir(parents=True)
    for part, rows in (("corpus", CORPUS), ("queries", QUERIES)):
        WRITERS[".jsonl"](root / f"{part}.jsonl", [{**row, "metadata": {}} for row in rows])
    (root / "qrels").mkdir()
    WRITERS[".tsv"](root / "qrels" / "test.tsv", QRELS)
    WRITERS[".tsv"](root / "qrels" / "dev.tsv", [{**QRELS[0], "corpus-id": "005"}])
    return root


def hub_folder(root: Path) -> Path:
    """The same rows in the hub layout with a dataset card (the reference reading)."""
    text = datasets.Features({name: datasets.Value("string") for name in CORPUS[0]})
    query = datasets.Features({name: datasets.Value("string") for name in QUERIES[0]})
    parts: dict[str, tuple[Sequence[dict[str, Any]], datasets.Features]] = {
        "corpus": (CORPUS, text),
        "queries": (QUERIES, query),
        "qrels": (QRELS, QREL_FEATURES),
    }
    return write_hub_dataset(root, parts)


def entry(name: str, data: Path, **dataset: Any) -> dict[str, Any]:
    """A text-to-text retrieval task over ``data``."""
    return {
        "name": name,
        "type": "retrieval",
        "category": "t2t",
        "dataset": {"path": str(data), **dataset},
        "eval_splits": ["test"],
    }


def read_task(path: Path, name: str, data: Path, **dataset: Any) -> TaskDefinition:
    """The one task of a task file written at ``path``."""
    [task] = load_task_file(task_file(path, [entry(name, data, **dataset)]))
    return task


@pytest.mark.parametrize("layout", [*WRITERS, "beir"])
def test_each_layout_reads_the_rows_as_written(tmp_path: Path, layout: str) -> None:
    data = (
        beir_folder(tmp_path / "d")
        if layout == "beir"
        else one_file_per_part(tmp_path / "d", layout)
    )
    task = read_task(tmp_path / "t.yaml", "Parts", data)
    retrieval = Retrieval()
    assert retrieval._qrels(task, "test") == EXPECTED_QRELS
    docs = retrieval._items(task, "corpus", "test")
    assert [(d.id, d.parts["text"]) for d in docs][:2] == [
        ("000", "a red square"),
        ("001", "green swatch a green square"),
    ]
    queries = retrieval._items(task, "queries", "test")
    assert [(q.id, q.parts) for q in queries] == [
        (row["_id"], {"text": row["text"]}) for row in QUERIES
    ]


def test_layouts_score_as_the_hub_layout_through_harness_run(
    tiny_clip_dir: Path, tmp_path: Path
) -> None:
    """Every layout, an explicit ``configs:`` map over decoy files, and an ambiguity settled
    by naming the file: one run, each task scoring exactly as the carded hub layout does."""
    folders = {"Hub": hub_folder(tmp_path / "hub"), "Beir": beir_folder(tmp_path / "beir")}
    for suffix in WRITERS:
        folders[f"Files{suffix[1:].title()}"] = one_file_per_part(tmp_path / suffix[1:], suffix)
    decoy = [{**row, "text": "decoy"} for row in CORPUS]
    declared = one_file_per_part(tmp_path / "declared", ".parquet", {**PARTS, "corpus": decoy})
    WRITERS[".jsonl"](declared / "pages.jsonl", CORPUS)
    settled = one_file_per_part(tmp_path / "settled", ".jsonl")
    WRITERS[".csv"](settled / "corpus.csv", decoy)
    entries = [entry(name, data) for name, data in folders.items()]
    entries += [
        entry("Declared", declared, configs={"corpus": "pages"}),
        entry("Settled", settled, configs={"corpus": "corpus.jsonl"}),
    ]
    assert run_cli(tiny_clip_dir, task_file(tmp_path / "tasks.yaml", entries), tmp_path) == 0
    reference = read_result_json(tmp_path, "Hub")["scores"]
    assert 0 < reference["test"][0]["ndcg_at_10"] < 1
    for task in entries[1:]:
        result = read_result_json(tmp_path, task["name"])
        assert result["scores"] == reference, task["name"]
        revision = local_content_hash(Path(task["dataset"]["path"]))
        assert result["dataset_revision"] == revision, task["name"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"corpus.jsonl": CORPUS}, ("corpus.parquet", "corpus.jsonl")),
        ({"queries.json": QUERIES}, ("queries.parquet", "queries.json")),
        ({"qrels/test.tsv": QRELS}, ("qrels.parquet", "qrels/")),
    ],
)
def test_two_files_for_one_part_is_an_error_naming_them(
    tmp_path: Path, extra: dict[str, Rows], named: tuple[str, ...]
) -> None:
    data = one_file_per_part(tmp_path / "d", ".parquet")
    for name, rows in extra.items():
        (data / name).parent.mkdir(exist_ok=True)
        WRITERS[Path(name).suffix](data / name, rows)
    task = read_task(tmp_path / "t.yaml", "Twice", data)
    part = named[0].split(".")[0]
    retrieval = Retrieval()
    with pytest.raises(HarnessError) as caught:
        retrieval._qrels(task, "test") if part == "qrels" else retrieval._items(task, part, "test")
    message = str(caught.value)
    assert all(name in message for name in named), message
    assert f"configs: {{{part}: {named[0]}}}" in message and "Twice" in message


def test_a_config_folder_mixing_formats_is_an_error(tmp_path: Path) -> None:
    data = beir_folder(tmp_path / "d")
    WRITERS[".jsonl"](data / "qrels" / "test.jsonl", QRELS)
    task = read_task(tmp_path / "t.yaml", "Mixed", data)
    with pytest.raises(HarnessError, match=r"qrels/test\.jsonl.*qrels/test\.tsv"):
        Retrieval()._qrels(task, "test")
    fixed = read_task(tmp_path / "f.yaml", "Mixed", data, configs={"qrels": "qrels/test.tsv"})
    assert Retrieval()._qrels(fixed, "test") == EXPECTED_QRELS


def test_split_folders_hold_their_splits_rows(tmp_path: Path) -> None:
    """``qrels/test/*.parquet`` and ``qrels/dev/*.parquet``: each folder is its split."""
    data = one_file_per_part(tmp_path / "d", ".parquet", {"corpus": CORPUS, "queries": QUERIES})
    for split, rows in (("test", QRELS), ("dev", QRELS[:1])):
        (data / "qrels" / split).mkdir(parents=True)
        WRITERS[".parquet"](data / "qrels" / split / "judgements.parquet", rows)
    task = read_task(tmp_path / "t.yaml", "Folders", data)
    assert Retrieval()._qrels(task, "test") == EXPECTED_QRELS
    assert Retrieval()._qrels(task, "dev") == {"00": {"000": 2}}
    with pytest.raises(HarnessError, match=r"no split 'train'.*it has dev, test"):
        Retrieval()._qrels(task, "train")


def test_a_missing_part_names_the_file_to_add(tmp_path: Path) -> None:
    data = one_file_per_part(tmp_path / "d", ".parquet", {"corpus": CORPUS, "queries": QUERIES})
    task = read_task(tmp_path / "t.yaml", "NoQrels", data)
    with pytest.raises(
        HarnessError, match=r"NoQrels.*'qrels'.*dataset\.configs\.qrels.*qrels\.parquet"
    ):
        Retrieval()._qrels(task, "test")


def test_ambiguity_exits_2_without_a_traceback(
    tiny_clip_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = one_file_per_part(tmp_path / "d", ".parquet")
    WRITERS[".jsonl"](data / "corpus.jsonl", CORPUS)
    tasks = task_file(tmp_path / "t.yaml", [entry("Ambiguous", data)])
    assert run_cli(tiny_clip_dir, tasks, tmp_path) == 2
    error = capsys.readouterr().err
    assert "corpus.parquet" in error and "corpus.jsonl" in error and "configs:" in error
    assert "Traceback" not in error
