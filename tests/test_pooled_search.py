"""``duplicates: pool``: query and corpus ids that repeat, searched and scored as mteb does.

The reference is mteb's own dense search (``SearchEncoderWrapper``) on the same embeddings,
then mteb's retrieval evaluator: queries sharing an id pool their hits, a corpus id found more
than once keeps one score (MAEB's FleursT2ARetrieval).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
from mteb.models.search_wrappers import SearchEncoderWrapper
from mteb.similarity_functions import cos_sim
from mteb.timing import TimingStack
from mteb.types import EncodeKwargs, PromptType

from harness.scoring.pooled_search import pooled_run
from harness.scoring.retrieval import DEFAULT_K_VALUES, retrieval_scores
from harness.scoring.search import run_from_top_k, top_k_search
from tests.test_scoring_retrieval import mteb_scores

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb


class FixedEmbeddings:
    """An mteb encoder that returns given query and document embeddings, row for row."""

    def __init__(self, queries: np.ndarray, corpus: np.ndarray) -> None:
        self.vectors = {PromptType.query: queries, PromptType.document: corpus}
        self.mteb_model_meta = None

    def encode(self, inputs: Any, *, prompt_type: PromptType, **kwargs: Any) -> np.ndarray:
        return self.vectors[prompt_type]

    def similarity(self, a: Any, b: Any) -> Any:
        return cos_sim(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:  # an encoder's: never called here
        raise NotImplementedError


def mteb_run(
    query_ids: list[str], corpus_ids: list[str], queries: np.ndarray, corpus: np.ndarray, k: int
) -> dict[str, dict[str, float]]:
    """mteb's full-corpus search of every row, repeated ids included."""
    search = SearchEncoderWrapper(FixedEmbeddings(queries, corpus))  # type: ignore[arg-type]
    metadata = mteb.get_task("NFCorpus").metadata  # a text task: the rows are never read
    where: dict[str, Any] = {"task_metadata": metadata, "hf_split": "test", "hf_subset": "default"}
    corpus_table = datasets.Dataset.from_dict({"id": corpus_ids, "text": ["d"] * len(corpus_ids)})
    queries_table = datasets.Dataset.from_dict({"id": query_ids, "text": ["q"] * len(query_ids)})
    encode: EncodeKwargs = {"batch_size": 64, "show_progress_bar": False}
    search.index(corpus_table, encode_kwargs=encode, **where)
    return search.search(queries_table, top_k=k, encode_kwargs=encode, **where)


def fleurs_like(seed: int, n_sentences: int, speakers: int) -> tuple[Any, ...]:
    """Sentences spoken by up to ``speakers`` speakers: each row is a text query and a clip
    document, both named by the sentence id; a sentence's texts are equal (equal vectors),
    its clips differ. Every third sentence has a single speaker."""
    rng = np.random.default_rng(seed)
    rows = [
        sentence
        for sentence in range(n_sentences)
        for _ in range(1 if sentence % 3 == 0 else speakers)
    ]
    ids = [str(sentence) for sentence in rows]
    texts = rng.standard_normal((n_sentences, 16)).astype(np.float32)
    queries = texts[rows]
    corpus = (queries + 0.8 * rng.standard_normal(queries.shape)).astype(np.float32)
    qrels = {qid: {qid: 1} for qid in ids}
    return ids, queries, corpus, qrels


@pytest.mark.parametrize(
    ("n_sentences", "speakers", "k_values"),
    [(40, 3, DEFAULT_K_VALUES), (300, 2, DEFAULT_K_VALUES), (60, 3, (1, 3, 5, 10))],
)
def test_pooled_search_matches_mteb_on_repeated_query_and_corpus_ids(
    n_sentences: int, speakers: int, k_values: tuple[int, ...]
) -> None:
    ids, queries, corpus, qrels = fleurs_like(n_sentences, n_sentences, speakers)
    k = max(k_values)
    scores, indices = top_k_search(queries, corpus, k + 1)
    ours = pooled_run(ids, ids, scores, indices, k)
    reference = mteb_run(ids, ids, queries, corpus, k)
    assert list(ours) == list(reference)
    for qid in ours:
        assert list(ours[qid]) == list(reference[qid])
        assert list(ours[qid].values()) == pytest.approx(list(reference[qid].values()), abs=1e-6)
    got = retrieval_scores(qrels, ours, k_values).metrics
    expected = mteb_scores(copy.deepcopy(qrels), reference, k_values)
    assert got == pytest.approx(expected, abs=1e-6, rel=0)


def test_pooling_is_not_keeping_one_row_per_id() -> None:
    """The pooled run differs from one row per id (what the default search builds): a small
    k, where the pooled heap holds several rows' hits, changes the scores."""
    ids, queries, corpus, qrels = fleurs_like(5, 60, 3)
    k_values = (1, 3, 5, 10)
    scores, indices = top_k_search(queries, corpus, 11)
    pooled = pooled_run(ids, ids, scores, indices, 10)
    single = run_from_top_k(ids, ids, scores[:, :10], indices[:, :10])
    assert pooled != single
    assert any(len(docs) < 10 for docs in pooled.values())  # repeated hits crowd the heap
    reference = mteb_run(ids, ids, queries, corpus, 10)
    assert retrieval_scores(qrels, pooled, k_values).metrics == pytest.approx(
        mteb_scores(qrels, reference, k_values), abs=1e-6, rel=0
    )


def test_a_repeated_document_keeps_its_last_score_in_heap_order() -> None:
    """Two rows of query "q" find document "d" with different scores: the run keeps the one
    placed last in the heap's array order, not the best one, as mteb's results dict does."""
    scores = np.array([[0.875, 0.5], [0.75, 0.25]], dtype=np.float32)
    indices = np.array([[0, 1], [2, 3]])
    run = pooled_run(["q", "q"], ["d", "e", "d", "f"], scores, indices, 3)
    assert run == {"q": {"e": 0.5, "d": 0.75}}
    assert list(run["q"]) == ["e", "d"]


def test_bad_shapes_and_k_are_rejected() -> None:
    scores = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="do not describe the same queries"):
        pooled_run(["a"], ["x", "y", "z"], scores, np.zeros((2, 3), dtype=np.int64), 3)
    with pytest.raises(ValueError, match="k must be positive"):
        pooled_run(["a", "b"], ["x", "y", "z"], scores, np.zeros((2, 3), dtype=np.int64), 0)


def test_fleurs_layout_scores_as_mteb_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAEB's FleursT2ARetrieval layout (a config per language, a row per recording, sentence
    ids repeated per speaker) scored by the retrieval type, and by mteb's evaluation of the
    queries, corpus and qrels its own FleursT2ARetrieval builds from the same files, on the
    same vectors."""
    from tests import test_audio_task_types as toy
    from tests.test_catalog_maeb import write_configs

    rng = np.random.default_rng(11)
    configs = {"en_us": ["eng-Latn"], "fr_fr": ["fra-Latn"]}
    tables: dict[str, dict[str, dict[str, list[Any]]]] = {}
    for number, config in enumerate(configs):
        pitches = rng.choice(toy.PITCHES, size=14) + rng.normal(scale=40, size=14)
        rows = [s for s in range(14) for _ in range(int(rng.integers(1, 4)))]
        tables[config] = {
            "test": {
                "id": [100 * number + s for s in rows],
                "transcription": [f"tone {pitches[s]:.0f}" for s in rows],
                "audio": [
                    {"bytes": toy.clip(pitches[s], 1000 * number + n), "path": None}
                    for n, s in enumerate(rows)
                ],
            }
        }
    features = datasets.Features(
        {
            "id": datasets.Value("int32"),
            "transcription": datasets.Value("string"),
            "audio": datasets.Audio(),
        }
    )
    write_configs(tmp_path / "data", tables, features)
    task = toy.definition(
        tmp_path,
        {
            "name": "ToyFleurs",
            "type": "retrieval",
            "category": "t2a",
            "main_score": "hit_rate_at_5",
            "dataset": {"path": str(tmp_path / "data"), "columns": {"text": "transcription"}},
            "protocol": {"duplicates": "pool", "paired": {}, "config_subsets": configs},
        },
    )
    ours = {entry["hf_subset"]: entry for entry in toy.evaluate(task).subsets}

    fleurs: Any = copy.deepcopy(mteb.get_task("FleursT2ARetrieval"))
    fleurs.hf_subsets = list(configs)
    fleurs.metadata = fleurs.metadata.model_copy(
        update={"dataset": {"path": str(tmp_path / "data"), "revision": None}}
    )  # not the class's
    load_dataset = datasets.load_dataset
    monkeypatch.setattr(  # mteb's clips stay undecoded: torchcodec is not installed
        datasets,
        "load_dataset",
        lambda *args, **kwargs: load_dataset(*args, **kwargs).cast_column(
            "audio", datasets.Audio(decode=False)
        ),
    )
    fleurs.load_data()
    reference_task: Any = mteb.get_task("SciFact")  # mteb's AbsTaskRetrieval evaluation, text rows
    for config in configs:
        queries = fleurs.queries[config]["test"]
        corpus = fleurs.corpus[config]["test"]
        assert len(set(queries["id"])) < len(queries)
        model = FixedEmbeddings(
            np.stack([toy.text_vector(text) for text in queries["text"]]),
            np.stack([toy.clip_vector(cell["bytes"]) for cell in corpus["audio"]]),
        )
        data = {
            "queries": queries,
            "corpus": datasets.Dataset.from_dict({"id": corpus["id"], "text": [""] * len(corpus)}),
            "relevant_docs": fleurs.relevant_docs[config]["test"],
            "top_ranked": None,
        }
        reference = reference_task._evaluate_subset(
            model,
            data,
            hf_split="test",
            hf_subset="default",
            encode_kwargs={"batch_size": 16, "show_progress_bar": False},
            timer=TimingStack(),
        )
        keys = [k for k, v in ours[config].items() if k in reference and isinstance(v, float)]
        assert {"hit_rate_at_5", "ndcg_at_10", "map_at_1000", "mrr_at_1000"} <= set(keys)
        assert max(abs(ours[config][key] - reference[key]) for key in keys) < 1e-6
        assert 0 < ours[config]["ndcg_at_1"] < ours[config]["ndcg_at_10"] < 1
