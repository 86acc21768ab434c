"""MIEB's retrieval entries (``mieb_retrieval.yaml``) score end to end on fixtures in their layouts.

Each distinct layout gets a tiny dataset written from the entry itself: the BEIR-style MIEB
layout (configs ``query``/``corpus``/``qrels``, the corpus in its own split, only the columns
the category needs), and the paired image-caption tables (one config: a split per language for
WIT, XM3600 and XFlickr30k-CO; train/validation/test for HatefulMemes, Memotion and SciMMIR).
The paired loader's ids, judgments and corpus rules are checked against mteb's.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import datasets
import pytest
import yaml

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb

from harness.tasks.definition import TaskDefinition
from harness.tasks.retrieval import Retrieval, RetrievalProtocol
from tests.catalog_layouts import catalog_tasks, layout_params, score_on_fixture
from tests.dataset_fixtures import COLOURS, QREL_FEATURES, RGB, png_bytes, write_hub_dataset

ROWS = 6
# Facts about the real paired tables the fixture reproduces: which caption columns hold a list
# of captions (WIT, XM3600), which datasets store images as raw {bytes, path} structs, which have
# rows without a caption (Memotion), and the order of a table's splits on the hub. Every fixture
# also repeats a caption, as the meme tables do.
CAPTION_LISTS = {"captions"}
IMAGE_STRUCT_DATASETS = {"mteb/xm3600", "mteb/xflickrco"}
MISSING_TEXT_DATASETS = {"mteb/MMSoc_Memotion_corrected"}
HUB_SPLIT_ORDER = ("train", "validation", "test")
IMAGE_STRUCT = {"bytes": datasets.Value("binary"), "path": datasets.Value("null")}
# Columns the real tables carry beside id, image and caption (mteb's loaders drop them by name).
EXTRA_COLUMNS = {
    "mteb/MMSoc_HatefulMemes": ("split", "label"),
    "mteb/MMSoc_Memotion_corrected": (
        *("split", "text_ocr", "humor", "sarcasm", "offensive", "motivational", "sentiment"),
    ),
    "mteb/SciMMIR": ("file_name_index", "class", "super_class", "sub_class", "split"),
    "mteb/xm3600": ("captions_tokenized", "captions_tokenized_lowercase", "image_locale"),
}
DEFAULT_CONFIGS = {"queries": "queries", "corpus": "corpus", "qrels": "qrels"}
# The M-BEIR copies (mteb/mbeir_*) give queries and corpus both a `text` and an `image` column,
# empty where the category has no such side (mteb drops the unused one by name); the other MIEB
# datasets carry only the columns their side has.
FULL_COLUMNS_PREFIX = "mteb/mbeir_"

MIEB_RETRIEVAL = [
    task
    for task in catalog_tasks("retrieval")
    if task.source_file is not None and task.source_file.name == "mieb_retrieval.yaml"
]


def _protocol(task: TaskDefinition) -> RetrievalProtocol:
    protocol = Retrieval().protocol(task)
    assert isinstance(protocol, RetrievalProtocol)
    return protocol


def _image(index: int) -> bytes:
    return png_bytes(RGB[COLOURS[index % len(COLOURS)]], size=16, seed=index)


def _item(side: tuple[str, ...], item_id: str, index: int) -> dict[str, Any]:
    """A query or document with the content of its side of the category."""
    text = f"a {COLOURS[index % len(COLOURS)]} square number {index} " if "text" in side else None
    return {
        "id": item_id,
        "modality": ",".join(name for name in ("image", "text") if name in side),
        "text": text,
        "image": {"bytes": _image(index), "path": None} if "image" in side else None,
    }


def _item_features(task: TaskDefinition, side: tuple[str, ...]) -> datasets.Features:
    """The columns a side has on the hub (see ``FULL_COLUMNS_PREFIX``)."""
    full = ("image", "text")
    columns = full if task.dataset.path.startswith(FULL_COLUMNS_PREFIX) else side
    features: dict[str, Any] = {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
    }
    if "text" in columns:
        features["text"] = datasets.Value("string")
    if "image" in columns:
        features["image"] = datasets.Image()
    return datasets.Features(features)


def _card(root: Path, splits_by_config: dict[str, list[str]], folder: str | None = None) -> None:
    """A dataset card declaring each config's splits, as the hub cards do."""
    configs = [
        {
            "config_name": config,
            "data_files": [
                {"split": split, "path": f"{folder or config}/{split}-*.parquet"}
                for split in splits
            ],
        }
        for config, splits in splits_by_config.items()
    ]
    (root / "README.md").write_text(f"---\n{yaml.safe_dump({'configs': configs})}---\n")


def _write_beir(task: TaskDefinition, root: Path) -> Path:
    """Configs ``queries``/``corpus``/``qrels`` under the entry's names and splits."""
    [split] = task.eval_splits
    configs = {part: task.dataset.configs.get(part, name) for part, name in DEFAULT_CONFIGS.items()}
    splits = {part: task.dataset.splits.get(part, split) for part in DEFAULT_CONFIGS}
    queries = [_item(task.sides.query, f"q{i}", i) for i in range(ROWS)]
    corpus = [_item(task.sides.document, f"d{i}", i) for i in range(ROWS)]
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(ROWS)]
    parts = {
        "queries": (queries, _item_features(task, task.sides.query)),
        "corpus": (corpus, _item_features(task, task.sides.document)),
        "qrels": (qrels, QREL_FEATURES),
    }
    for part, data in parts.items():
        write_hub_dataset(root, {configs[part]: data}, split=splits[part], card=False)
    _card(root, {configs[part]: [splits[part]] for part in parts})
    return root


def _paired_rows(task: TaskDefinition, split: str, columns: dict[str, str]) -> list[dict[str, Any]]:
    """Image-caption rows: the last repeats the first caption; one lacks it where the real
    table has such rows."""
    rows = []
    for i in range(ROWS):
        caption = f"{split} caption {i if i < ROWS - 1 else 0}"
        row = {
            columns["id"]: f"{split}{i}",
            columns["image"]: {"bytes": _image(i), "path": None},
            columns["text"]: [caption, f"{caption} again"]
            if columns["text"] in CAPTION_LISTS
            else caption,
        }
        rows.append(row)
    if task.dataset.path in MISSING_TEXT_DATASETS:
        rows.insert(1, {**rows[0], columns["id"]: f"{split}-none", columns["text"]: None})
    return rows


def _write_paired(task: TaskDefinition, root: Path) -> Path:
    """One config of image-caption rows: a split per language, else the eval and corpus splits."""
    protocol = _protocol(task)
    assert protocol.paired is not None
    columns = {name: task.dataset.columns.get(name, name) for name in ("id", "image", "text")}
    text = columns["text"]
    features = {
        columns["image"]: IMAGE_STRUCT
        if task.dataset.path in IMAGE_STRUCT_DATASETS
        else datasets.Image(),
        text: datasets.Sequence(datasets.Value("string"))
        if text in CAPTION_LISTS
        else datasets.Value("string"),
    }
    if protocol.paired.ids == "column":
        features[columns["id"]] = datasets.Value("string")
    for name in EXTRA_COLUMNS.get(task.dataset.path, ()):
        features[name] = features[text] if name.startswith("captions") else datasets.Value("string")
    needed = {*protocol.paired.corpus_splits, *task.eval_splits}
    splits = list(protocol.split_subsets) or [s for s in HUB_SPLIT_ORDER if s in needed]
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split in splits:
        rows = [
            {
                name: row.get(name, row[text] if name.startswith("captions") else "x")
                for name in features
            }
            for row in _paired_rows(task, split, columns)
        ]
        datasets.Dataset.from_list(rows, features=datasets.Features(features)).to_parquet(
            str(root / "data" / f"{split}-00000-of-00001.parquet")
        )
    _card(root, {task.dataset.configs.get("pairs", "default"): splits}, folder="data")
    return root


def write_retrieval_fixture(task: TaskDefinition, root: Path) -> Path:
    """A tiny dataset in ``task``'s layout: paired image-caption rows, or BEIR-style configs."""
    root.mkdir(parents=True, exist_ok=True)
    if _protocol(task).paired is not None:
        return _write_paired(task, root)
    return _write_beir(task, root)


def test_the_mieb_retrieval_entries_are_loaded() -> None:
    names = {task.name for task in MIEB_RETRIEVAL}
    assert {"CIRRIT2IRetrieval", "WITT2IRetrieval", "XM3600T2IRetrieval"} <= names
    assert len(names) == 48


@pytest.mark.parametrize("task", layout_params(MIEB_RETRIEVAL))
def test_layout_scores(task: TaskDefinition, tiny_clip_dir: Path, tmp_path: Path) -> None:
    result = score_on_fixture(task, write_retrieval_fixture, tiny_clip_dir, tmp_path)
    [split] = task.eval_splits
    entries = result["scores"][split]
    subsets = _protocol(task).split_subsets
    assert [entry["hf_subset"] for entry in entries] == (list(subsets) or ["default"])
    for entry in entries:
        assert math.isfinite(entry["main_score"]) and 0.0 <= entry["main_score"] <= 1.0
        assert entry["main_score"] == entry[task.main_score or "ndcg_at_10"]
        assert {"ndcg_at_10", "map_at_5", "hit_rate_at_1", "mrr_at_1000"} <= set(entry)
        assert entry["languages"] == subsets.get(entry["hf_subset"], task.languages)


def _paired_task(root: Path, category: str, paired: dict[str, Any]) -> TaskDefinition:
    return TaskDefinition(
        name="PairedCheck",
        type="retrieval",
        dataset={"path": str(root)},
        category=category,
        protocol={"paired": paired, "unknown_qrels": "mteb"},
    )


def _write_table(root: Path, splits: dict[str, list[tuple[str, Any]]]) -> Path:
    """A paired table: per split, rows of (id, caption or captions) with a small image each."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        data = [
            {"id": row_id, "text": text, "image": {"bytes": _image(n), "path": None}}
            for n, (row_id, text) in enumerate(rows)
        ]
        datasets.Dataset.from_list(data).cast_column("image", datasets.Image()).to_parquet(
            str(root / "data" / f"{split}-00000-of-00001.parquet")
        )
    _card(root, {"default": list(splits)}, folder="data")
    return root


def _loaded(task: TaskDefinition) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    data = Retrieval().load(task, "test").parts["default"]
    return [q.id for q in data.queries], [d.id for d in data.corpus], data.qrels


def test_paired_captions_become_queries_named_as_in_mteb(tmp_path: Path) -> None:
    """WIT/XM3600: a list of captions gives one query each, relevant to its row's image."""
    root = _write_table(tmp_path / "d", {"test": [("a", ["x", "y"]), ("b", ["z"])]})
    queries, corpus, qrels = _loaded(_paired_task(root, "t2i", {"ids": "column"}))
    assert queries == ["query-a-0", "query-a-1", "query-b-0"]
    assert corpus == ["corpus-a", "corpus-b"]
    assert qrels["query-a-1"] == {"corpus-a": 1}


def test_paired_single_captions_and_i2t(tmp_path: Path) -> None:
    """XFlickr30k-CO: one caption per row; in i2t the image is the query and the captions,
    as documents, are stripped as mteb strips a corpus (queries are left as they are)."""
    root = _write_table(tmp_path / "d", {"test": [("a", " x "), ("b", "y")]})
    queries, corpus, qrels = _loaded(_paired_task(root, "t2i", {"ids": "column"}))
    assert (queries, corpus, qrels["query-b"]) == (
        ["query-a", "query-b"],
        ["corpus-a", "corpus-b"],
        {"corpus-b": 1},
    )
    queries, corpus, qrels = _loaded(_paired_task(root, "i2t", {"ids": "column"}))
    assert (queries, corpus, qrels["query-a"]) == (
        ["query-a", "query-b"],
        ["corpus-a", "corpus-b"],
        {"corpus-a": 1},
    )
    for category, part, text in (("i2t", "corpus", "x"), ("t2i", "queries", " x ")):
        task = _paired_task(root, category, {"ids": "column"})
        data = Retrieval().load(task, "test").parts["default"]
        assert getattr(data, part)[0].parts["text"] == text


def test_paired_corpus_from_several_splits_first_of_each_text(tmp_path: Path) -> None:
    """HatefulMemes: the corpus spans splits and keeps the first row of each text; a query
    whose text came earlier keeps its (unretrievable) judgment, as mteb does."""
    splits = {"test": [("1", "a"), ("2", "b"), ("3", "a")], "train": [("4", "b"), ("5", "c")]}
    root = _write_table(tmp_path / "d", splits)
    paired = {"ids": "column", "corpus_splits": ["test", "train"], "unique_text": True}
    queries, corpus, qrels = _loaded(_paired_task(root, "i2t", paired))
    assert queries == ["query-1", "query-2", "query-3"]
    assert corpus == ["corpus-1", "corpus-2", "corpus-5"]
    assert qrels["query-3"] == {"corpus-3": 1}


def test_paired_row_ids_after_dropping_rows_without_text(tmp_path: Path) -> None:
    """Memotion/SciMMIR: items named after split and row number, counted after the filter."""
    splits = {"test": [("1", None), ("2", "b")], "train": [("3", "c")]}
    root = _write_table(tmp_path / "d", splits)
    paired = {"ids": "row", "corpus_splits": ["train", "test"], "require_text": True}
    queries, corpus, qrels = _loaded(_paired_task(root, "t2i", paired))
    assert queries == ["query-test-0"]
    assert corpus == ["corpus-train-0", "corpus-test-0"]
    assert qrels == {"query-test-0": {"corpus-test-0": 1}}


@pytest.mark.parametrize("task", layout_params(MIEB_RETRIEVAL))
def test_entries_read_their_data_as_mteb_does(
    task: TaskDefinition, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the entry's fixture, mteb's own task loader finds the same queries, corpus (in the same
    order, with the same texts) and qrels; for a multilingual task, in its first language."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    root = write_retrieval_fixture(task, tmp_path / "fixture")
    subsets = _protocol(task).split_subsets
    split = next(iter(subsets), "test")
    local = task.model_copy(
        update={"dataset": task.dataset.model_copy(update={"path": str(root), "revision": None})}
    )
    ours = Retrieval().load(local, "test").parts[split if subsets else "default"]

    reference = mteb.get_task(task.name)
    dataset = {**reference.metadata.dataset, "path": str(root), "revision": None}
    reference.metadata = reference.metadata.model_copy(update={"dataset": dataset})
    if subsets:
        reference.hf_subsets = [split]
    reference.load_data()
    reference.convert_v1_dataset_format_to_v2(num_proc=None)
    theirs = reference.dataset[split if subsets else "default"]["test"]

    assert [q.id for q in ours.queries] == list(theirs["queries"]["id"])
    assert [d.id for d in ours.corpus] == list(theirs["corpus"]["id"])
    if "text" in task.sides.query:
        assert [q.parts["text"] for q in ours.queries] == list(theirs["queries"]["text"])
    if "text" in task.sides.document:
        expected = [t.strip() for t in theirs["corpus"]["text"]]
        assert [d.parts["text"] for d in ours.corpus] == expected
    assert ours.qrels == {qid: dict(docs) for qid, docs in theirs["relevant_docs"].items()}
