"""Mini visual-document-retrieval datasets in the hub layouts of ViDoRe v3, ViDoRe v3.1 and
KoViDoRe v2, and mteb's own task pointed at such a folder.

ViDoRe v3 and v3.1 are written as mteb's ``push_dataset_to_hub`` writes a multilingual retrieval
dataset: configs ``<language>-queries`` (id, text), ``<language>-corpus`` (id, image; v3.1 adds
``text``, the page's OCR markdown) and ``<language>-qrels`` (query-id, corpus-id, score), each as
``<config>/test-00000-of-00001.parquet`` under a card that declares them. The questions are
translated, so every language shares the query and page ids (``query-test-<k>``,
``corpus-test-<n>``) with its own question texts. KoViDoRe v2 has one subset: configs ``queries``,
``corpus`` and ``qrels``. The judgments are graded, a page is judged for two questions, and one
question has only a judgment of 0 (mteb and the harness both drop it); two pages of v3.1 have a
blank markdown (mteb encodes it as an empty text).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import datasets

from harness.tasks.definition import TaskDefinition
from tests.dataset_fixtures import COLOURS, RGB, png_bytes
from tests.document_fixtures import Parts, write_configs

VIDORE3_LANGUAGES = ("french", "spanish", "english", "german", "italian", "portuguese")
QUESTIONS = (
    "What was the quarterly revenue?",
    "How many pallets does the warehouse store?",
    "Which share of the power comes from solar panels?",
    "When does the clinic open?",
)
KOREAN_QUESTIONS = (
    "분기 매출은 얼마였습니까?",
    "창고에는 팔레트가 몇 개 보관됩니까?",
    "태양광 패널이 공급하는 전력의 비율은?",
    "진료소는 몇 시에 문을 엽니까?",
)
# Each page's OCR markdown: a table, blank ones, and one with spaces around it (mteb strips it).
MARKDOWN = (
    "# Revenue\n\n| quarter | revenue |\n|---|---|\n| Q3 | 4.2 M$ |",
    "   ",
    "The warehouse stores 1,200 pallets of grain.",
    "",
    "  Solar panels supply 38 percent of the power.  ",
    "## Opening hours\n\nThe clinic opens at 7 am on weekdays.",
)
# (question, page, relevance): graded, page 2 judged for two questions, question 3 only a 0.
JUDGMENTS = ((0, 0, 2), (0, 3, 1), (1, 2, 1), (2, 4, 2), (2, 2, 1), (1, 1, 0), (3, 5, 0))

QUERY_FEATURES = datasets.Features(
    {"id": datasets.Value("string"), "text": datasets.Value("string")}
)
PAGE_FEATURES = datasets.Features({"id": datasets.Value("string"), "image": datasets.Image()})
OCR_PAGE_FEATURES = datasets.Features({**PAGE_FEATURES, "text": datasets.Value("string")})
QRELS_FEATURES = datasets.Features(
    {
        "query-id": datasets.Value("string"),
        "corpus-id": datasets.Value("string"),
        "score": datasets.Value("int64"),
    }
)


def query_id(k: int) -> str:
    return f"query-test-{k}"


def page_id(n: int) -> str:
    return f"corpus-test-{n}"


def _pages(markdown: bool) -> list[dict[str, Any]]:
    pages = []
    for n, text in enumerate(MARKDOWN):
        image = {"bytes": png_bytes(RGB[COLOURS[n]], size=24, seed=n), "path": None}
        pages.append({"id": page_id(n), "image": image, **({"text": text} if markdown else {})})
    return pages


def _qrels() -> list[dict[str, Any]]:
    return [
        {"query-id": query_id(k), "corpus-id": page_id(n), "score": score}
        for k, n, score in JUDGMENTS
    ]


def translated(question: str, language: str) -> str:
    """The fixture's stand-in for a question's translation into ``language``."""
    return f"{question} ({language})"


def write_vidore3(root: Path, *, markdown: bool = False) -> Path:
    """ViDoRe v3's hub layout (v3.1's with ``markdown``): three configs per language."""
    parts: Parts = {}
    pages, features = _pages(markdown), OCR_PAGE_FEATURES if markdown else PAGE_FEATURES
    for language in VIDORE3_LANGUAGES:
        queries = [
            {"id": query_id(k), "text": translated(question, language)}
            for k, question in enumerate(QUESTIONS)
        ]
        parts[f"{language}-queries"] = ("test", queries, QUERY_FEATURES)
        parts[f"{language}-corpus"] = ("test", pages, features)
        parts[f"{language}-qrels"] = ("test", _qrels(), QRELS_FEATURES)
    return write_configs(root, parts)


def write_kovidore2(root: Path) -> Path:
    """KoViDoRe v2's hub layout: configs ``queries``, ``corpus`` and ``qrels``."""
    queries = [{"id": query_id(k), "text": text} for k, text in enumerate(KOREAN_QUESTIONS)]
    parts: Parts = {
        "queries": ("test", queries, QUERY_FEATURES),
        "corpus": ("test", _pages(False), PAGE_FEATURES),
        "qrels": ("test", _qrels(), QRELS_FEATURES),
    }
    return write_configs(root, parts)


def on_folder(task: TaskDefinition, root: Path) -> TaskDefinition:
    """A catalog entry reading its dataset from the local folder ``root``."""
    dataset = task.dataset.model_copy(update={"path": str(root), "revision": None})
    return task.model_copy(update={"dataset": dataset})


def mteb_task_on(name: str, root: Path) -> Any:
    """mteb's own task ``name`` with its dataset path pointed at the folder ``root`` (its class'
    metadata is left as it is), data not loaded yet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mteb

    task = mteb.get_task(name)
    dataset = {**task.metadata.dataset, "path": str(root)}
    task.metadata = task.metadata.model_copy(update={"dataset": dataset})
    return task
