"""Task definitions and the hub layouts retrieval reads, through the real ``load_dataset`` path."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from harness.core.errors import HarnessError
from harness.tasks.registry import builtin_tasks, load_task_file, resolve_tasks
from harness.tasks.retrieval import Retrieval
from tests.dataset_fixtures import (
    ITEM_FEATURES,
    QREL_FEATURES,
    colour_retrieval,
    item_row,
    png_bytes,
    retrieval_task_yaml,
    write_hub_dataset,
)

BEIR_FEATURES = datasets.Features(
    {
        "_id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "text": datasets.Value("string"),
    }
)


def load_items(task_file: Path, part: str, split: str = "test"):
    [task] = load_task_file(task_file)
    return Retrieval()._items(task, part, split), task


def test_local_folders_named_alike_are_not_served_stale_data(tmp_path: Path) -> None:
    first = colour_retrieval(tmp_path / "one" / "data", "t2i")
    second = colour_retrieval(tmp_path / "two" / "data", "t2t")
    images, _ = load_items(retrieval_task_yaml(tmp_path / "a.yaml", "A", first, "t2i"), "corpus")
    texts, _ = load_items(retrieval_task_yaml(tmp_path / "b.yaml", "B", second, "t2t"), "corpus")
    assert set(images[0].parts) == {"image"}
    assert texts[0].parts == {"text": "red"}


def test_beir_layout_with_query_config_default_qrels_and_titles(tmp_path: Path) -> None:
    corpus = [
        {"_id": "d1", "title": "Red", "text": "a red thing"},
        {"_id": "d2", "title": "", "text": "blue"},
    ]
    queries = [{"_id": "q1", "title": "", "text": "red?"}]
    qrels = [{"query-id": "q1", "corpus-id": "d1", "score": 2}]
    data = write_hub_dataset(
        tmp_path / "beir",
        {
            "corpus": (corpus, BEIR_FEATURES),
            "query": (queries, BEIR_FEATURES),
            "default": (qrels, QREL_FEATURES),
        },
    )
    task_file = retrieval_task_yaml(tmp_path / "beir.yaml", "Beir", data, "t2t")
    docs, task = load_items(task_file, "corpus")
    assert [(d.id, d.parts["text"]) for d in docs] == [("d1", "Red a red thing"), ("d2", "blue")]
    assert Retrieval()._qrels(task, "test") == {"q1": {"d1": 2}}
    [query] = Retrieval()._items(task, "queries", "test")
    assert query.id == "q1" and query.parts == {"text": "red?"}


def test_declared_configs_splits_and_columns(tmp_path: Path) -> None:
    """SeaDoc-style: the corpus lives in split `corpus`, columns renamed in the definition."""
    features = datasets.Features(
        {"id": datasets.Value("string"), "question": datasets.Value("string")}
    )
    corpus = [item_row("p1", image=png_bytes((1, 2, 3)))]
    write_hub_dataset(
        tmp_path / "sea", {"pages": (corpus, ITEM_FEATURES)}, split="corpus", card=False
    )
    write_hub_dataset(
        tmp_path / "sea", {"questions": ([{"id": "q1", "question": "what?"}], features)}, card=False
    )
    qrels = [{"query-id": "q1", "corpus-id": "p1", "score": 1}]
    write_hub_dataset(tmp_path / "sea", {"judgements": (qrels, QREL_FEATURES)}, card=False)
    task_file = retrieval_task_yaml(
        tmp_path / "sea.yaml",
        "Sea",
        tmp_path / "sea",
        "t2i",
        dataset={
            "path": str(tmp_path / "sea"),
            "configs": {"corpus": "pages", "queries": "questions", "qrels": "judgements"},
            "splits": {"corpus": "corpus"},
            "columns": {"text": "question"},
        },
    )
    [task] = load_task_file(task_file)
    [query] = Retrieval()._items(task, "queries", "test")
    assert query.parts == {"text": "what?"} and query.id == "q1"
    [page] = Retrieval()._items(task, "corpus", "test")
    assert page.id == "p1" and set(page.parts) == {"image"}


def test_invalid_definitions_are_clear_errors(tmp_path: Path) -> None:
    bad_category = tmp_path / "bad.yaml"
    bad_category.write_text("name: X\ntype: retrieval\ncategory: t2z\ndataset: {path: x}\n")
    with pytest.raises(HarnessError, match="category"):
        load_task_file(bad_category)
    bad_protocol = tmp_path / "protocol.yaml"
    bad_protocol.write_text(
        "name: X\ntype: retrieval\ncategory: t2i\ndataset: {path: x}\nprotocol: {k: 3}\n"
    )
    with pytest.raises(HarnessError, match="protocol"):
        load_task_file(bad_protocol)
    unknown_type = tmp_path / "type.yaml"
    unknown_type.write_text("name: X\ntype: retreival\ncategory: t2i\ndataset: {path: x}\n")
    with pytest.raises(HarnessError, match="retrieval"):
        load_task_file(unknown_type)


def test_hub_dataset_unavailable_offline_is_a_clear_error(tmp_path: Path) -> None:
    task_file = tmp_path / "hub.yaml"
    task_file.write_text(
        "name: HubTask\ntype: retrieval\ncategory: t2i\n"
        "dataset: {path: some-org/not-cached, revision: abc}\n"
    )
    [task] = load_task_file(task_file)
    with pytest.raises(HarnessError, match=r"HubTask.*some-org/not-cached.*offline"):
        Retrieval()._qrels(task, "test")


def test_builtin_demo_tasks_are_registered() -> None:
    names = set(builtin_tasks())
    assert {"DemoShapesT2IRetrieval", "DemoShapesI2TRetrieval", "DemoShapesI2IRetrieval"} <= names
    assert [t.name for t in resolve_tasks(["DemoShapesI2IRetrieval"])] == ["DemoShapesI2IRetrieval"]
    with pytest.raises(HarnessError, match="named more than once"):
        resolve_tasks(["DemoShapesI2IRetrieval", "DemoShapesI2IRetrieval"])
