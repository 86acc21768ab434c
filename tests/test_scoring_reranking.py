"""Reranking equals mteb's AbsTaskRetrieval with ``top_ranked`` candidates on the same vectors."""

from __future__ import annotations

from typing import Any

import datasets
import numpy as np
import pytest

from harness.scoring.candidates import candidate_run
from harness.scoring.retrieval import DEFAULT_K_VALUES, retrieval_scores

mteb = pytest.importorskip("mteb")
from mteb.similarity_functions import cos_sim, dot_score  # noqa: E402
from mteb.timing import TimingStack  # noqa: E402

# An AbsTaskRetrieval task with text inputs; MAEB's GTZANAudioReranking uses the same class.
REFERENCE_TASK = "SciFact"


class KeyedModel:
    """An mteb encoder whose input texts are keys of a table of vectors."""

    def __init__(self, vectors: dict[str, np.ndarray], similarity: str) -> None:
        self.vectors = vectors
        self.score = cos_sim if similarity == "cosine" else dot_score
        self.mteb_model_meta = None

    def encode(self, inputs: Any, **_: Any) -> np.ndarray:
        return np.stack([self.vectors[text] for batch in inputs for text in batch["text"]])

    def similarity(self, a: Any, b: Any) -> Any:
        return self.score(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        raise NotImplementedError


def reranking_case(seed: int, queries: int = 12, docs: int = 40, listed: int = 13) -> dict:
    """Random vectors, candidate lists and graded judgments among the candidates."""
    rng = np.random.default_rng(seed)
    query_ids = [f"q{i}" for i in range(queries)]
    doc_ids = [f"d{i}" for i in range(docs)]
    vectors = {key: rng.normal(size=8).astype(np.float32) for key in query_ids + doc_ids}
    candidates = {
        qid: [doc_ids[j] for j in rng.choice(docs, size=listed, replace=False)] for qid in query_ids
    }
    qrels = {
        qid: {doc: int(rng.integers(1, 3)) for doc in candidates[qid][:3]} for qid in query_ids
    }
    return {"queries": query_ids, "docs": doc_ids, "vectors": vectors,
            "candidates": candidates, "qrels": qrels}  # fmt: skip


def mteb_scores(case: dict, similarity: str) -> dict[str, Any]:
    task = mteb.get_task(REFERENCE_TASK)
    data = {
        "corpus": datasets.Dataset.from_dict({"id": case["docs"], "text": case["docs"]}),
        "queries": datasets.Dataset.from_dict({"id": case["queries"], "text": case["queries"]}),
        "relevant_docs": case["qrels"],
        "top_ranked": case["candidates"],
    }
    return dict(
        task._evaluate_subset(
            KeyedModel(case["vectors"], similarity),
            data,
            hf_split="test",
            hf_subset="default",
            encode_kwargs={"batch_size": 16, "show_progress_bar": False},
            timer=TimingStack(),
        )
    )


def our_scores(case: dict, similarity: str) -> dict[str, float]:
    vectors = case["vectors"]
    run = candidate_run(
        case["queries"],
        np.stack([vectors[q] for q in case["queries"]]),
        case["docs"],
        np.stack([vectors[d] for d in case["docs"]]),
        case["candidates"],
        similarity=similarity,
        top_k=max(DEFAULT_K_VALUES),
    )
    assert all(set(run[q]) == set(case["candidates"].get(q, [])) for q in case["queries"])
    return retrieval_scores(case["qrels"], run, DEFAULT_K_VALUES).metrics


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_mteb_on_random_embeddings(similarity: str, seed: int) -> None:
    case = reranking_case(seed)
    ours, reference = our_scores(case, similarity), mteb_scores(case, similarity)
    assert ours
    assert max(abs(value - reference[name]) for name, value in ours.items()) < 1e-6


def test_a_query_without_candidates_scores_zero_as_in_mteb() -> None:
    case = reranking_case(3)
    del case["candidates"]["q0"]
    ours, reference = our_scores(case, "cosine"), mteb_scores(case, "cosine")
    assert max(abs(value - reference[name]) for name, value in ours.items()) < 1e-6


def test_only_the_candidates_are_ranked_best_first() -> None:
    vectors = np.asarray([[1.0, 0.0], [0.9, 0.1], [1.0, 0.05], [0.0, 1.0]], dtype=np.float32)
    run = candidate_run(
        ["q"], vectors[:1], ["a", "b", "c"], vectors[1:], {"q": ["c", "a"]}, top_k=1
    )
    assert run == {"q": {"a": pytest.approx(0.99388373)}}
    with pytest.raises(ValueError, match="not in the corpus"):
        candidate_run(["q"], vectors[:1], ["a"], vectors[1:2], {"q": ["z"]}, top_k=5)
