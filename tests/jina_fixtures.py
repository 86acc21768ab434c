"""Mini JinaVDR datasets in Jina's hub layout: folders ``queries`` (query-id, query), ``corpus``
(corpus-id, image) and ``qrels`` (query-id, corpus-id, score), one parquet file each in split
``test``, under ``default/`` for a single-language task (where mteb's loader reads them), under
each language's folder for a multilingual one (``ar/queries``...).

The card declares configs that are not the folders (as a hub card may): JinaVDR is read with
``load_dataset(path, data_dir=<folder>)``, by mteb and by harness, which ignores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from harness.tasks.definition import TaskDefinition
from harness.tasks.registry import task_type
from harness.tasks.retrieval import RetrievalProtocol
from tests.document_fixtures import VIDORE_PAGES, VIDORE_QRELS, Page, render_page

QUERIES = datasets.Features(
    {"query-id": datasets.Value("int64"), "query": datasets.Value("string")}
)
CORPUS = datasets.Features({"corpus-id": datasets.Value("int64"), "image": datasets.Image()})
# (query number, page numbers it is judged relevant to): a query with two relevant pages, and
# pages no query is relevant to.
JUDGMENTS = ((0, (0,)), (1, (1, 3)), (2, (2,)))
PAGES = VIDORE_PAGES[:5]


def jina_subsets(task: TaskDefinition) -> list[str]:
    """The language folders of a multilingual entry; none for a single-language one."""
    protocol = task_type(task).protocol(task)
    assert isinstance(protocol, RetrievalProtocol)
    return list(protocol.dir_subsets)


def write_mini_jina(task: TaskDefinition, root: Path) -> Path:
    """``task``'s layout with a few rendered pages per language folder (ids repeat across
    folders, as each language is a dataset of its own; pages differ by language)."""
    folders = [f"{subset}/" for subset in jina_subsets(task)] or ["default/"]
    card = ["---", "configs:"]
    for folder in folders:
        language = folder.rstrip("/")
        parts = _parts(language)
        for part, (rows, features) in parts.items():
            path = f"{folder}{part}/test-00000-of-00001.parquet"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows, features=features).to_parquet(str(root / path))
            card += [f"- config_name: {language}-{part}-card", "  data_files:"]
            card += ["  - split: train", f"    path: {path}"]
    (root / "README.md").write_text("\n".join([*card, "---", ""]), encoding="utf-8")
    return root


def _parts(language: str) -> dict[str, tuple[list[dict[str, Any]], datasets.Features]]:
    """One language's queries, corpus and qrels."""
    pages = [Page("en", f"{page.text} [{language}]", page.question) for page in PAGES]
    queries = [
        {"query-id": number, "query": f"{pages[number].question} ({language})"}
        for number, _ in JUDGMENTS
    ]
    corpus = [
        {"corpus-id": 100 + k, "image": {"bytes": render_page(page)}}
        for k, page in enumerate(pages)
    ]
    qrels = [
        {"query-id": number, "corpus-id": 100 + k, "score": 1}
        for number, relevant in JUDGMENTS
        for k in relevant
    ]
    return {
        "queries": (queries, QUERIES),
        "corpus": (corpus, CORPUS),
        "qrels": (qrels, VIDORE_QRELS),
    }
