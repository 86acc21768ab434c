"""Catalog layouts of compositionality, multiple choice, visual STS and ViDoRe: each distinct
layout gets a tiny dataset written in the entry's exact hub layout (its configs, splits, columns,
filters and subsets), scored end to end through the CLI; subsets are checked against mteb."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import datasets
import pytest

from harness.engine.encoding import BatchEncoder
from harness.tasks.compositionality import CompositionalityProtocol
from harness.tasks.definition import TaskDefinition
from harness.tasks.loading import column
from harness.tasks.registry import task_type
from harness.tasks.retrieval import Retrieval, RetrievalProtocol, SubsetSpec
from harness.tasks.visual_sts import VisualSTS
from tests.catalog_layouts import catalog_tasks, layout_params, score_on_fixture
from tests.dataset_fixtures import (
    COLOURS,
    ITEM_FEATURES,
    QREL_FEATURES,
    RGB,
    item_row,
    png_bytes,
)
from tests.document_fixtures import (
    VIDORE_CORPUS,
    VIDORE_QRELS,
    VIDORE_QUERIES,
    Parts,
    write_configs,
)
from tests.test_multiple_choice import (
    CV_BENCH_FEATURES,
    SUBSET_KEYS,
    ContentAdapter,
    MtebContentModel,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb
    from mteb.results.task_result import TaskResult
    from mteb.tasks.retrieval.multilingual.vidore2_bench_retrieval import (
        _load_data as mteb_vidore2_load,
    )

IMAGE = datasets.Image()
TEXT = datasets.Value("string")
SCORE = datasets.Value("float64")
ROWS = 6


def image(k: int) -> dict[str, Any]:
    """A small swatch, distinct for every ``k``."""
    return {"bytes": png_bytes(RGB[COLOURS[k % len(COLOURS)]], size=8, seed=k), "path": None}


def split_of(task: TaskDefinition, part: str) -> str:
    """The split a part of the entry is read from."""
    return task.dataset.splits.get(part, task.eval_splits[0])


def config_of(task: TaskDefinition, part: str) -> str:
    """The config a part of the entry is read from."""
    return task.dataset.configs.get(part, part)


# --- fixture writers, one per task type --------------------------------------------------------


def write_compositionality_fixture(task: TaskDefinition, root: Path) -> Path:
    """Rows with the entry's image and caption columns, or ImageCoDe's corpus/query/qrels."""
    protocol = task_type(task).protocol(task)
    assert isinstance(protocol, CompositionalityProtocol)
    if protocol.source == "qrels":
        return _write_imagecode(task, protocol.candidates, root)
    rows = [
        {
            **{name: image(10 * i + k) for k, name in enumerate(protocol.image_columns)},
            **{name: f"caption {i} {k}" for k, name in enumerate(protocol.text_columns)},
        }
        for i in range(ROWS)
    ]
    features = datasets.Features(
        {name: IMAGE for name in protocol.image_columns}
        | {name: TEXT for name in protocol.text_columns}
    )
    parts: Parts = {config_of(task, "default"): (split_of(task, "default"), rows, features)}
    return write_configs(root, parts)


def _write_imagecode(task: TaskDefinition, candidates: int, root: Path) -> Path:
    """Three captions, each with a true image and ``candidates - 1`` distractors in its qrels."""
    corpus, queries, qrels = [], [], []
    for i in range(3):
        queries.append({"id": f"q{i}", "modality": "text", "text": f"frame {i}"})
        for k in range(candidates):
            doc = f"c{i}-{k}"
            corpus.append({"id": doc, "modality": "image", "image": image(20 * i + k)})
            qrels.append({"query-id": f"q{i}", "corpus-id": doc, "score": int(k == 2)})
    item = {"id": TEXT, "modality": TEXT}
    parts: Parts = {
        config_of(task, "corpus"): (
            split_of(task, "corpus"),
            corpus,
            datasets.Features(item | {"image": IMAGE}),
        ),
        config_of(task, "queries"): (
            split_of(task, "queries"),
            queries,
            datasets.Features(item | {"text": TEXT}),
        ),
        config_of(task, "qrels"): (split_of(task, "qrels"), qrels, QREL_FEATURES),
    }
    return write_configs(root, parts)


def write_multiple_choice_fixture(task: TaskDefinition, root: Path) -> Path:
    """CV-Bench rows (those the entry filters out have an answer that would fail), or BLINK."""
    protocol = task_type(task).protocol(task)
    if protocol.layout == "choices":
        return _write_cv_bench(task, protocol.where, root)
    return _write_blink(task, root)


def _write_cv_bench(task: TaskDefinition, where: dict[str, Any], root: Path) -> Path:
    rows = []
    for i in range(ROWS + 2):
        kept = i < ROWS
        row: dict[str, Any] = {name: None for name in CV_BENCH_FEATURES}
        row |= {
            column(task, "image"): image(i),
            column(task, "question"): f"question {i}?",
            column(task, "choices"): ["left", "right", str(i)],
            column(task, "answer"): f"({'ABC'[i % 3]})" if kept else "(Z)",
        }
        row |= {name: value if kept else f"not {value}" for name, value in where.items()}
        rows.append(row)
    parts: Parts = {config_of(task, "default"): (task.eval_splits[0], rows, CV_BENCH_FEATURES)}
    return write_configs(root, parts)


def _write_blink(task: TaskDefinition, root: Path) -> Path:
    """Corpus, queries and qrels; each query judges three documents, one of them relevant."""
    image_docs = task.sides.document == ("image",)
    corpus = [
        item_row(f"d{j}", image=png_bytes(RGB[c], size=8, seed=j))
        if image_docs
        else item_row(f"d{j}", text=f"a {c} thing")
        for j, c in enumerate(COLOURS)
    ]
    queries = [
        item_row(f"q{i}", text=f"which is like {i}?", image=png_bytes(RGB["red"], size=8, seed=i))
        for i in range(ROWS)
    ]
    qrels = [
        {"query-id": f"q{i}", "corpus-id": f"d{(i + k) % 8}", "score": int(k == 0)}
        for i in range(ROWS)
        for k in range(3)
    ]
    split = task.eval_splits[0]
    parts: Parts = {
        config_of(task, "corpus"): (split, corpus, ITEM_FEATURES),
        config_of(task, "queries"): (split, queries, ITEM_FEATURES),
        config_of(task, "qrels"): (split, qrels, QREL_FEATURES),
    }
    return write_configs(root, parts)


def sts_subsets(task: TaskDefinition) -> dict[str, list[str]]:
    """The entry's subsets (configs) and their languages."""
    return task_type(task).protocol(task).subsets or {"default": task.languages}


def write_visual_sts_fixture(task: TaskDefinition, root: Path) -> Path:
    """A config per subset, each with rendered-pair images and 0-5 scores."""
    pair = [column(task, name) for name in ("sentence1", "sentence2")]
    features = datasets.Features({pair[0]: IMAGE, pair[1]: IMAGE, column(task, "score"): SCORE})
    parts: Parts = {}
    for n, subset in enumerate(sts_subsets(task)):
        rows = [
            {pair[0]: image(n + i), pair[1]: image(n + 2 * i), column(task, "score"): i * 5 / ROWS}
            for i in range(ROWS)
        ]
        parts[task.dataset.configs.get(subset, subset)] = (
            ",".join(task.eval_splits),
            rows,
            features,
        )
    return write_configs(root, parts)


def retrieval_subsets(task: TaskDefinition) -> SubsetSpec | None:
    """The entry's query subsets (per language), if it scores any."""
    protocol = task_type(task).protocol(task)
    assert isinstance(protocol, RetrievalProtocol)
    return protocol.subsets


def write_vidore_fixture(task: TaskDefinition, root: Path) -> Path:
    """ViDoRe's layout with integer ids: 12 questions, two relevant pages each, and a language
    column cycling through the entry's subsets when it has them (so each has as many questions)."""
    spec = retrieval_subsets(task)
    languages = list(spec.languages) if spec else []
    query_features = dict(VIDORE_QUERIES)
    query_features[column(task, "text")] = query_features.pop("query")
    queries = [{"query-id": k, column(task, "text"): f"what is on page {k}?"} for k in range(12)]
    if spec:
        assert spec.part == "queries" and spec.column is not None
        query_features[spec.column] = TEXT
        for k, query in enumerate(queries):
            query[spec.column] = languages[k % len(languages)]
    corpus = [{"corpus-id": 100 + k, "image": image(k)} for k in range(8)]
    qrels = [
        {"query-id": k, "corpus-id": 100 + page, "score": 1}
        for k in range(12)
        for page in sorted({k % 8, (k + 3) % 8})
    ]
    split = task.eval_splits[0]
    parts: Parts = {
        config_of(task, "queries"): (split, queries, datasets.Features(query_features)),
        config_of(task, "corpus"): (split, corpus, VIDORE_CORPUS),
        config_of(task, "qrels"): (split, qrels, VIDORE_QRELS),
    }
    return write_configs(root, parts)


# --- layouts scored end to end ----------------------------------------------------------------


def vidore_tasks() -> list[TaskDefinition]:
    """The ViDoRe entries (SeaDoc, also a document retrieval task, is covered elsewhere)."""
    return [
        task
        for task in catalog_tasks("retrieval")
        if task.source_file is not None and task.source_file.name == "vidore.yaml"
    ]


def subset_entries(result: dict[str, Any], task: TaskDefinition) -> dict[str, dict[str, Any]]:
    """The result's entries of the entry's eval split by subset, each with a finite main score."""
    assert set(result["scores"]) == set(task.eval_splits)
    entries = {entry["hf_subset"]: entry for entry in result["scores"][task.eval_splits[0]]}
    main = task_type(task).main_score(task)
    for entry in entries.values():
        assert math.isfinite(entry["main_score"]) and entry["main_score"] == entry[main]
    return entries


@pytest.mark.parametrize("task", layout_params(catalog_tasks("compositionality")))
def test_compositionality_layout_scores(
    task: TaskDefinition, tiny_clip_dir: Path, tmp_path: Path
) -> None:
    result = score_on_fixture(task, write_compositionality_fixture, tiny_clip_dir, tmp_path)
    [entry] = subset_entries(result, task).values()
    assert {"text_acc", "image_acc", "accuracy"} <= set(entry)


@pytest.mark.parametrize("task", layout_params(catalog_tasks("multiple_choice")))
def test_multiple_choice_layout_scores(
    task: TaskDefinition, tiny_clip_dir: Path, tmp_path: Path
) -> None:
    result = score_on_fixture(task, write_multiple_choice_fixture, tiny_clip_dir, tmp_path)
    [entry] = subset_entries(result, task).values()
    assert {"accuracy", "ndcg_at_1", "recall_at_3"} <= set(entry)


@pytest.mark.parametrize("task", layout_params(catalog_tasks("visual_sts")))
def test_visual_sts_layout_scores(
    task: TaskDefinition, tiny_clip_dir: Path, tmp_path: Path
) -> None:
    result = score_on_fixture(task, write_visual_sts_fixture, tiny_clip_dir, tmp_path)
    entries = subset_entries(result, task)
    assert {name: e["languages"] for name, e in entries.items()} == sts_subsets(task)
    assert all("cosine_pearson" in entry for entry in entries.values())


@pytest.mark.parametrize("task", layout_params(vidore_tasks()))
def test_vidore_layout_scores(task: TaskDefinition, tiny_clip_dir: Path, tmp_path: Path) -> None:
    result = score_on_fixture(task, write_vidore_fixture, tiny_clip_dir, tmp_path)
    entries = subset_entries(result, task)
    spec = retrieval_subsets(task)
    expected = {"default": task.languages} | (spec.languages if spec else {})
    assert {name: e["languages"] for name, e in entries.items()} == expected


# --- protocol facts against mteb ----------------------------------------------------------------


def mteb_subsets(name: str) -> dict[str, list[str]]:
    """mteb's scored subsets and their languages (an aggregate task's: its wrapped task's)."""
    reference = mteb.get_task(name)
    if reference.is_aggregate:
        [inner] = reference.tasks
        return {s: inner.metadata.eval_langs[s] for s in inner.hf_subsets}
    return dict(reference.metadata.eval_langs)


def mteb_encode_kwargs() -> dict[str, Any]:
    return {"batch_size": 8, "show_progress_bar": False}


@pytest.mark.parametrize(
    "task",
    [t for t in catalog_tasks("visual_sts") if t.protocol.get("subsets")],
    ids=lambda task: task.name,
)
def test_visual_sts_subsets_score_as_mteb(task: TaskDefinition, tmp_path: Path) -> None:
    """mteb's subsets and languages (an aggregate task's: its wrapped task's), and mteb's task
    score on the same vectors, equal to the mean of our subsets' (our leaderboard's score)."""
    assert sts_subsets(task) == mteb_subsets(task.name)
    assert set(task.languages) == {code for codes in sts_subsets(task).values() for code in codes}
    local = task.model_copy(deep=True)
    local.dataset.path, local.dataset.revision = str(write_visual_sts_fixture(task, tmp_path)), None
    encoder = BatchEncoder(ContentAdapter(), show_progress=False)
    ours = [e["main_score"] for e in VisualSTS().evaluate(local, encoder, split="test").subsets]
    reference = mteb.get_task(task.name)
    # MIEB's multilingual visual STS tasks are aggregates of the two tasks they wrap.
    inner = reference.tasks[0] if reference.is_aggregate else reference
    inner.dataset = {s: datasets.load_dataset(local.dataset.path, s) for s in inner.hf_subsets}
    inner.data_loaded = True
    scores = inner.evaluate(MtebContentModel(), "test", encode_kwargs=mteb_encode_kwargs())
    result = TaskResult.from_task_results(inner, {"test": scores}, evaluation_time=1.0)
    if reference.is_aggregate:
        expected = reference.task_results_to_scores([result])["test"]["default"]["main_score"]
    else:
        expected = result.get_score(splits=["test"])
    assert sum(ours) / len(ours) == pytest.approx(expected)


VIDORE_SUBSET_TASKS = [task for task in vidore_tasks() if retrieval_subsets(task)]


@pytest.mark.parametrize("task", VIDORE_SUBSET_TASKS, ids=lambda task: task.name)
def test_vidore_subsets_score_as_mteb(task: TaskDefinition, tmp_path: Path) -> None:
    """Per-language subsets: mteb's names and languages, and mteb's scores on the same vectors."""
    spec = retrieval_subsets(task)
    assert spec is not None and spec.languages == mteb_subsets(task.name)
    local = task.model_copy(deep=True)
    local.dataset.path, local.dataset.revision = str(write_vidore_fixture(task, tmp_path)), None
    encoder = BatchEncoder(ContentAdapter(), show_progress=False)
    ours = {e["hf_subset"]: e for e in Retrieval().evaluate(local, encoder, split="test").subsets}
    reference = mteb.get_task(task.name)
    reference.corpus, reference.queries, reference.relevant_docs = mteb_vidore2_load(
        local.dataset.path, ["test"], langs=list(spec.languages)
    )
    reference.data_loaded = True
    scores = reference.evaluate(MtebContentModel(), "test", encode_kwargs=mteb_encode_kwargs())
    assert set(ours) == {"default", *scores}
    for subset, expected in scores.items():
        mine = {k: v for k, v in ours[subset].items() if k not in SUBSET_KEYS}
        assert mine == pytest.approx(
            {k: v for k, v in expected.items() if k in mine}, nan_ok=True
        )  # undefined nAUCs are NaN on both sides
        assert mine["main_score"] == pytest.approx(expected["ndcg_at_5"])
    mean = sum(scores[s]["main_score"] for s in scores) / len(scores)
    assert ours["default"]["main_score"] == pytest.approx(mean)  # same queries per language


@pytest.mark.parametrize("task", catalog_tasks("compositionality"), ids=lambda task: task.name)
def test_compositionality_columns_are_mtebs(task: TaskDefinition) -> None:
    """The image and caption columns (ImageCoDe: the number of candidates) mteb reads."""
    protocol = task_type(task).protocol(task)
    assert isinstance(protocol, CompositionalityProtocol)
    reference = mteb.get_task(task.name)
    if protocol.source == "qrels":
        assert protocol.candidates == len(reference.images_column_names)
        assert len(reference.texts_column_names) == 1
    else:
        assert protocol.image_columns == tuple(reference.images_column_names)
        assert protocol.text_columns == tuple(reference.texts_column_names)
