"""The demo document-retrieval task: deterministic builder, committed data, answerable questions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import datasets
import pytest

from harness.tasks.demo.documents import (
    N_PAGES,
    PAGE_WIDTH,
    TASK_NAME,
    build_documents,
    sample_towns,
)
from harness.tasks.registry import builtin_tasks, demo_tasks
from tests.dataset_fixtures import DEMO_DATA, decoded_rows, read_result_json, run_cli

COMMITTED = DEMO_DATA / TASK_NAME
FILES = (
    "corpus/corpus-00000-of-00001.parquet",
    "query/test-00000-of-00001.parquet",
    "qrels/test-00000-of-00001.parquet",
)
MAX_BYTES = 600_000


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The task as ``build_documents`` writes it now."""
    out = tmp_path_factory.mktemp("demo-documents")
    build_documents(out)
    return out / TASK_NAME


def test_builder_reproduces_the_committed_data(rebuilt: Path) -> None:
    for name in FILES:
        assert decoded_rows(rebuilt / name) == decoded_rows(COMMITTED / name), name
    readme = (rebuilt / "README.md").read_text()
    assert readme == (COMMITTED / "README.md").read_text()


def test_committed_data_is_small() -> None:
    size = sum(path.stat().st_size for path in COMMITTED.rglob("*") if path.is_file())
    assert size < MAX_BYTES


def test_hub_layout_of_seadoc() -> None:
    corpus = datasets.load_dataset(str(COMMITTED), "corpus", split="corpus")
    query = datasets.load_dataset(str(COMMITTED), "query", split="test")
    qrels = datasets.load_dataset(str(COMMITTED), "qrels", split="test")
    assert corpus.column_names == ["id", "modality", "image"]
    assert query.column_names == ["id", "modality", "text"]
    assert (len(corpus), len(query), len(qrels)) == (N_PAGES, 2 * N_PAGES, 2 * N_PAGES)
    assert {image.width for image in corpus["image"]} == {PAGE_WIDTH}
    # Page ids follow the shuffled order, so a query's number does not give its page away.
    pairs = zip(qrels["query-id"], qrels["corpus-id"], strict=True)
    same_number = sum(query[1:4] == page[4:] for query, page in pairs)
    assert same_number < 10


def test_questions_are_answerable_from_exactly_one_page() -> None:
    towns = sample_towns(N_PAGES, (1729, 11, 1))
    assert len({town.name for town in towns}) == N_PAGES
    described = Counter((town.kind, town.craft, town.festival) for town in towns)
    assert max(described.values()) == 1
    for town in towns:
        text = " ".join(town.page_text())
        named, description = town.questions()
        assert town.name in named and str(town.founded) in text
        assert all(fact in text for fact in (town.kind, town.craft, town.festival))
        assert all(fact in description for fact in (town.kind, town.craft, town.festival))
    assert sample_towns(5, (1729, 11, 9)) != towns[:5]


def test_demo_task_runs(tiny_clip_dir: Path, tmp_path: Path) -> None:
    assert TASK_NAME in demo_tasks()
    task = builtin_tasks()[TASK_NAME]
    assert task.prompts.query == "Find a screenshot that relevant to the user's question."
    assert run_cli(tiny_clip_dir, TASK_NAME, tmp_path, "--limit", "20") == 0
    [entry] = read_result_json(tmp_path, TASK_NAME)["scores"]["test"]
    assert 0 <= entry["main_score"] == entry["ndcg_at_10"] <= 1
