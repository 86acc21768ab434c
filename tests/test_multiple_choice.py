"""Multiple choice against mteb's own VisionCentricQA pipeline on identical embeddings.

The reference runs mteb's task code end to end: its CV-Bench loader (or its retrieval loader
and BLINK's transform), its reranking search and its scoring, with a stand-in model whose
vectors are a function of each input's content. Our side runs the task type through the
encoder with an adapter returning the same vectors, so both score the same embeddings.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import mteb
import numpy as np
import pyarrow.parquet as pq
import pytest
from mteb.abstasks.retrieval_dataset_loaders import RetrievalDatasetLoader
from mteb.models.search_wrappers import rerank_top_ranked_documents
from mteb.similarity_functions import cos_sim, dot_score, pairwise_cos_sim
from mteb.tasks.multichoice.eng.cv_bench import _load_data as mteb_cv_bench_data

from harness.core.adapter import AdapterMeta
from harness.core.errors import HarnessError
from harness.engine.encoding import BatchEncoder
from harness.scoring.candidates import candidate_run
from harness.scoring.retrieval import retrieval_scores
from harness.tasks.definition import TaskDefinition
from harness.tasks.demo.multiple_choice import COLOUR_TASK, RELATION_TASK, build_multiple_choice
from harness.tasks.multiple_choice import MultipleChoice
from harness.tasks.registry import builtin_tasks
from tests.dataset_fixtures import (
    DEMO_DATA,
    ITEM_FEATURES,
    QREL_FEATURES,
    RGB,
    item_row,
    png_bytes,
    read_result_json,
    run_cli,
    task_file,
    write_hub_dataset,
)

DIM = 16
SCORE_KEYS = ("ndcg", "map", "recall", "precision", "mrr", "hit_rate")

# ---------------------------------------------------------------- vectors keyed by content


def content_vector(text: str | None, image: Any) -> np.ndarray:
    """A fixed random vector for an input's text and pixels (the same on both sides)."""
    pixels = hashlib.sha256(image.convert("RGB").tobytes()).hexdigest() if image else ""
    seed = int(hashlib.sha256(f"{text}|{pixels}".encode()).hexdigest()[:12], 16)
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


class ContentAdapter:
    """Our adapter: vectors by content; counts the items it encodes."""

    def __init__(self, similarity: str = "cosine") -> None:
        self.meta = AdapterMeta(
            name=f"content-{similarity}",
            revision="1",
            family="test",
            similarity=similarity,  # type: ignore[arg-type]
            modalities=("image", "text"),
            dtype="float32",
        )
        self.encoded = 0

    def encode(self, items: Sequence[dict[str, Any]], **_: Any) -> np.ndarray:
        self.encoded += len(items)
        return np.stack([content_vector(i.get("text"), i.get("image")) for i in items])


class MtebContentModel:
    """mteb's side: the same vectors, read from the batches mteb's dataloaders build."""

    def __init__(self, similarity: str = "cosine") -> None:
        self.similarity_name = similarity

    def encode(self, inputs: Any, **_: Any) -> np.ndarray:
        vectors = []
        for batch in inputs:
            size = len(next(iter(batch.values())))
            texts = batch.get("text") or [None] * size
            images = batch.get("image") or [None] * size
            vectors += [content_vector(t, i) for t, i in zip(texts, images, strict=True)]
        return np.stack(vectors)

    def similarity(self, a: Any, b: Any) -> Any:
        return cos_sim(a, b) if self.similarity_name == "cosine" else dot_score(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return pairwise_cos_sim(a, b)

    @property
    def mteb_model_meta(self) -> None:
        return None


def mteb_evaluate(task: Any, similarity: str = "cosine") -> dict[str, Any]:
    """Run a loaded mteb task with the content model; its test scores without nAUC keys."""
    task.data_loaded = True
    encode_kwargs = {"batch_size": 8, "show_progress_bar": False}
    scores = task.evaluate(MtebContentModel(similarity), "test", encode_kwargs=encode_kwargs)
    return dict(scores["default"])


SUBSET_KEYS = ("hf_subset", "languages")  # added by mteb's TaskResult, not by evaluate


def ours(task: TaskDefinition, similarity: str = "cosine", **kwargs: Any) -> dict[str, Any]:
    encoder = BatchEncoder(ContentAdapter(similarity), show_progress=False)
    return MultipleChoice().evaluate(task, encoder, split="test", **kwargs).subsets[0]


def assert_same_scores(mine: dict[str, Any], reference: dict[str, Any]) -> None:
    """Same keys in the same order and the same values (same scores, same metric code)."""
    assert (mine["hf_subset"], mine["languages"]) == ("default", ["eng-Latn"])
    metrics = {k: v for k, v in mine.items() if k not in SUBSET_KEYS}
    assert list(metrics) == list(reference)
    assert metrics["main_score"] == metrics["accuracy"] == reference["main_score"]
    np.testing.assert_equal(metrics, reference)  # NaN nAUCs (undefined) equal too


# ---------------------------------------------------------------- fixtures in the hub layouts

CV_BENCH_FEATURES = datasets.Features(
    {
        "idx": datasets.Value("int64"),
        "type": datasets.Value("string"),
        "task": datasets.Value("string"),
        "image": datasets.Image(),
        "question": datasets.Value("string"),
        "choices": datasets.Sequence(datasets.Value("string")),
        "answer": datasets.Value("string"),
        "prompt": datasets.Value("string"),
        "filename": datasets.Value("string"),
        "source": datasets.Value("string"),
        "source_dataset": datasets.Value("string"),
        "source_filename": datasets.Value("string"),
        "target_class": datasets.Value("string"),
        "target_size": datasets.Value("int64"),
        "bbox": datasets.Sequence(datasets.Value("float64")),
    }
)
COUNT_CHOICES = ("0", "1", "2", "3", "4", "5")


def cv_bench(root: Path, rows: int = 24) -> Path:
    """CV-Bench's layout: one config, Count and Relation rows, shared choice texts."""
    rng = np.random.default_rng(5)
    records = []
    for i in range(rows):
        task = "Count" if i % 3 else "Relation"
        pool = COUNT_CHOICES if task == "Count" else ("left", "right", "above", "below")
        choices = [str(c) for c in rng.choice(pool, size=int(rng.integers(2, 5)), replace=False)]
        records.append(
            {
                "idx": i,
                "type": "2D",
                "task": task,
                "image": {"bytes": png_bytes(RGB["blue"], seed=i), "path": None},
                "question": f"How many objects are in image {i}?",
                "choices": choices,
                "answer": f"({'ABCDEF'[int(rng.integers(len(choices)))]})",
                "prompt": "",
                "filename": f"img/{i}.png",
                "source": "test",
                "source_dataset": "test",
                "source_filename": f"{i}.png",
                "target_class": None,
                "target_size": 0,
                "bbox": [],
            }
        )
    return write_hub_dataset(root, {"default": (records, CV_BENCH_FEATURES)})


def blink(root: Path, *, images: bool = False, top_ranked: bool = False) -> Path:
    """BLINK's layout: corpus, queries and qrels whose 0/1 judgements list the candidates.

    With ``images``, the documents are images and two of them are identical (a tie); with
    ``top_ranked``, a ``top_ranked`` config lists other candidates and omits query q5.
    """
    rng = np.random.default_rng(7)
    colours = list(RGB)
    if images:
        corpus = [item_row(f"d{j}", image=png_bytes(RGB[c], seed=j)) for j, c in enumerate(colours)]
        corpus.append(item_row("d8", image=png_bytes(RGB["red"], seed=0)))  # same as d0
    else:
        corpus = [item_row(f"d{j}", text=f"a {c} thing") for j, c in enumerate(colours)]
    queries, qrels, ranked = [], [], []
    for i in range(12):
        image = png_bytes(RGB[colours[i % 8]], seed=50 + i)
        queries.append(item_row(f"q{i}", text=f"which one is like image {i}?", image=image))
        docs = [
            int(d) for d in rng.choice(len(corpus), size=int(rng.integers(2, 5)), replace=False)
        ]
        if images and i == 0:
            docs = [0, 8, 3]
        qrels += [
            {"query-id": f"q{i}", "corpus-id": f"d{d}", "score": int(k == 0)}
            for k, d in enumerate(docs)
        ]
        if i != 5:
            ranked.append({"query-id": f"q{i}", "corpus-ids": [f"d{d}" for d in docs[:2]] + ["d7"]})
    parts = {
        "corpus": (corpus, ITEM_FEATURES),
        "queries": (queries, ITEM_FEATURES),
        "qrels": (qrels, QREL_FEATURES),
    }
    if top_ranked:
        features = datasets.Features(
            {
                "query-id": datasets.Value("string"),
                "corpus-ids": datasets.Sequence(datasets.Value("string")),
            }
        )
        parts["top_ranked"] = (ranked, features)
    return write_hub_dataset(root, parts)


def parquet_rows(folder: Path) -> list[dict[str, Any]]:
    """A config's rows, read without the datasets cache (which keys local folders by name)."""
    return pq.read_table(next(folder.glob("*.parquet"))).to_pylist()


def definition(data: Path, category: str = "it2t", **protocol: Any) -> TaskDefinition:
    return TaskDefinition(
        name="TestChoice",
        type="multiple_choice",
        category=category,  # type: ignore[arg-type]
        dataset={"path": str(data)},
        protocol=protocol,
    )


# ---------------------------------------------------------------- agreement with mteb


@pytest.mark.parametrize("subtask", ["Count", "Relation"])
def test_cv_bench_layout_matches_mteb(tmp_path: Path, subtask: str) -> None:
    data = cv_bench(tmp_path / "cv-bench")
    reference_task = mteb.get_task(f"CVBench{subtask}")
    loaded = mteb_cv_bench_data(str(data), ["test"], None, subtask)
    reference_task.corpus, reference_task.queries = loaded[0], loaded[1]
    reference_task.relevant_docs, reference_task.top_ranked = loaded[2], loaded[3]
    reference = mteb_evaluate(reference_task)

    task = definition(data, layout="choices", where={"task": subtask})
    mine = ours(task)
    assert_same_scores(mine, reference)
    assert 0.0 < mine["accuracy"] < 1.0
    # The same ids, documents and judgements as mteb's loader (ids break score ties).
    split = MultipleChoice().load(task, "test").parts["default"]
    corpus, queries, qrels, _ = (part["test"] for part in loaded)
    assert [query.id for query in split.queries] == list(queries["id"])
    expected_corpus = list(zip(corpus["id"], corpus["text"], strict=True))
    assert [(doc.id, doc.parts["text"]) for doc in split.corpus] == expected_corpus
    assert split.qrels == qrels


@pytest.mark.parametrize(("category", "name"), [("it2t", "BLINKIT2T"), ("it2i", "BLINKIT2I")])
def test_blink_layout_matches_mteb(tmp_path: Path, category: str, name: str) -> None:
    # Distinct folder names: mteb's loader caches local folders by name and file names.
    data = blink(tmp_path / f"blink-{category}", images=category == "it2i", top_ranked=True)
    reference_task = mteb.get_task(f"{name}MultiChoice")
    split = RetrievalDatasetLoader(str(data), revision=None, split="test").load()  # type: ignore[arg-type]
    reference_task.dataset = {"default": {"test": split}}
    reference_task.dataset_transform()  # BLINK: the candidates are the judged documents
    reference = mteb_evaluate(reference_task)

    mine = ours(definition(data, category, candidates="qrels"))
    assert_same_scores(mine, reference)


def test_top_ranked_config_matches_mteb_and_a_query_without_candidates_misses(
    tmp_path: Path,
) -> None:
    data = blink(tmp_path / "ranked", top_ranked=True)
    reference_task = mteb.get_task("CVBenchCount")  # no transform: mteb keeps top_ranked
    split = RetrievalDatasetLoader(str(data), revision=None, split="test").load()  # type: ignore[arg-type]
    assert "q5" not in split["top_ranked"]
    reference_task.dataset = {"default": {"test": split}}
    reference = mteb_evaluate(reference_task)

    mine = ours(definition(data))  # candidates: auto finds the top_ranked config
    assert_same_scores(mine, reference)
    assert mine != ours(definition(data, candidates="qrels"))


def test_dot_similarity_matches_mteb(tmp_path: Path) -> None:
    data = cv_bench(tmp_path / "cv-bench")
    reference_task = mteb.get_task("CVBenchCount")
    loaded = mteb_cv_bench_data(str(data), ["test"], None, "Count")
    reference_task.corpus, reference_task.queries = loaded[0], loaded[1]
    reference_task.relevant_docs, reference_task.top_ranked = loaded[2], loaded[3]
    reference = mteb_evaluate(reference_task, "dot")
    assert_same_scores(
        ours(definition(data, layout="choices", where={"task": "Count"}), "dot"), reference
    )


def test_candidate_run_equals_mteb_reranking_path() -> None:
    """Random queries, candidates with duplicates, ties from identical documents, and a cut."""
    rng = np.random.default_rng(11)
    docs = rng.standard_normal((30, DIM)).astype(np.float32)
    docs[7] = docs[3]  # identical documents tie exactly
    queries = rng.standard_normal((25, DIM)).astype(np.float32)
    query_ids = [f"q{i}" for i in range(25)]
    doc_ids = [f"doc-{j}" for j in range(30)]
    candidates = {
        qid: [doc_ids[j] for j in rng.choice(30, size=int(rng.integers(1, 8)), replace=False)]
        for qid in query_ids
    }
    candidates["q0"] = ["doc-3", "doc-7", "doc-1"]
    for top_k in (1000, 2):
        heaps = rerank_top_ranked_documents(
            task_corpus=datasets.Dataset.from_dict({"id": doc_ids, "text": doc_ids}),
            query_idx_to_id=dict(enumerate(query_ids)),
            query_embeddings=queries,
            top_ranked=candidates,
            top_k=top_k,
            task_metadata=mteb.get_task("CVBenchCount").metadata,
            hf_subset="default",
            hf_split="test",
            encode_kwargs={"show_progress_bar": False},
            encode_fn=lambda *_, **__: docs,
            similarity_fn=cos_sim,
        )
        expected = {qid: {doc: score for score, doc in heap} for qid, heap in heaps.items()}
        run = candidate_run(query_ids, queries, doc_ids, docs, candidates, top_k=top_k)
        if top_k == 1000:  # the same float32 operations: the same scores, bit for bit
            assert run == expected
        assert run.keys() == expected.keys()
        for qid in query_ids:
            assert sorted(run[qid].values()) == pytest.approx(
                sorted(expected[qid].values()), abs=1e-6
            )
            tied_at_cut = top_k < len(candidates[qid]) and {"doc-3", "doc-7"} <= set(
                candidates[qid]
            )
            if not tied_at_cut:  # which of two tied documents survives a cut: torch.topk's pick
                assert run[qid].keys() == expected[qid].keys()
    qrels = {qid: {docs_[0]: 1, **{d: 0 for d in docs_[1:]}} for qid, docs_ in candidates.items()}
    assert (
        retrieval_scores(qrels, run).metrics["accuracy"]
        == retrieval_scores(qrels, expected).metrics["accuracy"]
    )


def test_candidate_run_edge_cases() -> None:
    vectors = np.eye(3, dtype=np.float32)
    run = candidate_run(
        ["q"], vectors[:1], ["a", "b"], vectors[:2], {"q": ["b", "a", "b"]}, top_k=5
    )
    assert run == {"q": {"a": 1.0, "b": 0.0}}
    assert candidate_run(["q"], vectors[:1], ["a"], vectors[:1], {}, top_k=5) == {"q": {}}
    with pytest.raises(ValueError, match="not a doc id"):
        candidate_run(["q"], vectors[:1], ["a"], vectors[:1], {"q": ["zz"]}, top_k=5)
    with pytest.raises(ValueError, match="maxsim"):
        candidate_run(["q"], vectors[:1], ["a"], vectors[:1], {}, top_k=5, similarity="maxsim")


# ---------------------------------------------------------------- plumbing and errors


def test_limit_encodes_only_the_first_queries_and_their_candidates(tmp_path: Path) -> None:
    data = blink(tmp_path / "blink-limit")
    adapter = ContentAdapter()
    task = definition(data, candidates="qrels")
    outcome = MultipleChoice().evaluate(
        task, BatchEncoder(adapter, show_progress=False), split="test", limit=2
    )
    candidates = {
        row["corpus-id"] for row in parquet_rows(data / "qrels") if row["query-id"] in ("q0", "q1")
    }
    assert adapter.encoded == 2 + len(candidates)
    assert outcome.subsets[0]["accuracy"] in (0.0, 0.5, 1.0)


@pytest.mark.parametrize(("answer", "message"), [("(Z)", "'(Z)'"), ("B", "'B'"), (None, "None")])
def test_bad_answers_name_task_row_and_fix(tmp_path: Path, answer: Any, message: str) -> None:
    rows = [
        {
            "image": {"bytes": png_bytes(RGB["red"]), "path": None},
            "question": "q?",
            "choices": ["yes", "no"],
            "answer": "(A)",
        },
        {
            "image": {"bytes": png_bytes(RGB["red"]), "path": None},
            "question": "q?",
            "choices": ["yes", "no"],
            "answer": answer,
        },
    ]
    features = datasets.Features(
        {name: CV_BENCH_FEATURES[name] for name in ("image", "question", "choices", "answer")}
    )
    data = write_hub_dataset(tmp_path / "bad", {"default": (rows, features)})
    with pytest.raises(HarnessError, match=rf"TestChoice.*row 1 .*{re.escape(message)}.*dataset"):
        ours(definition(data, layout="choices"))


def test_layout_errors_are_clear(tmp_path: Path) -> None:
    data = cv_bench(tmp_path / "cv-bench")
    with pytest.raises(HarnessError, match=r"no row .* matches .*Depth"):
        ours(definition(data, layout="choices", where={"task": "Depth"}))
    with pytest.raises(HarnessError, match="must end in '2t'"):
        ours(definition(data, "it2i", layout="choices"))
    with pytest.raises(HarnessError, match=r"lacks the column.*nonexistent"):
        ours(definition(data, layout="choices", where={"nonexistent": 1}))
    broken = blink(tmp_path / "blink-broken")
    qrels = parquet_rows(broken / "qrels")
    qrels.append({"query-id": "q0", "corpus-id": "missing-doc", "score": 0})
    write_hub_dataset(broken, {"qrels": (qrels, QREL_FEATURES)}, card=False)
    with pytest.raises(HarnessError, match=r"missing-doc.*not in the corpus"):
        ours(definition(broken, candidates="qrels"))
    with pytest.raises(HarnessError, match="no config for 'top_ranked'"):
        ours(definition(broken, candidates="top_ranked"))


def test_end_to_end_through_the_cli_with_custom_yaml(tiny_clip_dir: Path, tmp_path: Path) -> None:
    data = cv_bench(tmp_path / "cv-bench")
    entries = [
        {
            "name": "MyCount",
            "type": "multiple_choice",
            "category": "it2t",
            "dataset": {"path": str(data)},
            "protocol": {"layout": "choices", "where": {"task": "Count"}},
        },
        {
            "name": "MyBlink",
            "type": "multiple_choice",
            "category": "it2i",
            "dataset": {"path": str(blink(tmp_path / "blink-images", images=True))},
            "protocol": {"candidates": "qrels"},
        },
    ]
    assert run_cli(tiny_clip_dir, task_file(tmp_path / "tasks.yaml", entries), tmp_path) == 0
    for name in ("MyCount", "MyBlink"):
        [entry] = read_result_json(tmp_path, name)["scores"]["test"]
        assert entry["main_score"] == entry["accuracy"] == entry["recall_at_1"]
        assert entry["hf_subset"] == "default"
        for prefix in SCORE_KEYS:
            assert math.isfinite(entry[f"{prefix}_at_1000"])
        assert 0.0 <= entry["accuracy"] <= 1.0


# ---------------------------------------------------------------- the demo tasks


def test_demo_tasks_are_registered_and_rebuild_identically(tmp_path: Path) -> None:
    for name in (RELATION_TASK, COLOUR_TASK):
        assert builtin_tasks()[name].type == "multiple_choice"
    build_multiple_choice(tmp_path)
    for name in (RELATION_TASK, COLOUR_TASK):
        committed, rebuilt = DEMO_DATA / name, tmp_path / name
        assert (committed / "README.md").read_text() == (rebuilt / "README.md").read_text()
        files = sorted(p.relative_to(committed) for p in committed.rglob("*.parquet"))
        assert files == sorted(p.relative_to(rebuilt) for p in rebuilt.rglob("*.parquet"))
        for file in files:
            assert_same_rows(committed / file, rebuilt / file)


def assert_same_rows(committed: Path, rebuilt: Path) -> None:
    """Equal decoded pixels and equal values in every other column."""
    old = datasets.Dataset.from_parquet(str(committed))
    new = datasets.Dataset.from_parquet(str(rebuilt))
    assert old.features == new.features and len(old) == len(new)
    for a, b in zip(old, new, strict=True):
        for key, value in a.items():
            if hasattr(value, "tobytes"):
                assert np.array_equal(np.asarray(value), np.asarray(b[key]))
            else:
                assert value == b[key]


def test_demo_choices_have_one_true_caption() -> None:
    data = datasets.Dataset.from_parquet(
        str(DEMO_DATA / RELATION_TASK / "default" / "test-00000-of-00001.parquet")
    )
    for row in data.select_columns(["choices", "answer", "question"]):
        assert len(set(row["choices"])) == 4
        answer = row["choices"]["ABCD".index(row["answer"][1])]
        assert row["question"].split(" relative")[0].removeprefix("where is the ") in answer
