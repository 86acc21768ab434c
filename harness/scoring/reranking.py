"""Reranking as mteb scores it: each query against its own candidate list.

mteb's reranking tasks (MAEB's AudioReranking) are retrieval tasks with a ``top_ranked`` list of
candidate documents per query. Each query's vector is scored against its candidates' vectors by
the model's similarity (through ``harness.core.similarity``, one ``(1, candidates)`` product per
query, as mteb does), and the best ``top_k`` candidates form the query's run, which is then
scored like any retrieval run (``harness.scoring.retrieval``). A query without candidates gets
an empty run, as in mteb.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from harness.core import similarity as sim

Run = dict[str, dict[str, float]]


def rerank(
    query_ids: Sequence[str],
    query_vectors: np.ndarray,
    corpus_ids: Sequence[str],
    corpus_vectors: np.ndarray,
    candidates: Mapping[str, Sequence[str]],
    *,
    similarity: str = sim.COSINE,
    top_k: int = 1000,
) -> Run:
    """Every query's best ``top_k`` candidates with their scores (``{query: {doc: score}}``).

    A candidate must be among ``corpus_ids``; ties keep the candidates' listed order.
    """
    sim.check(similarity, sim.SINGLE_VECTOR)
    if len(query_ids) != len(query_vectors) or len(corpus_ids) != len(corpus_vectors):
        raise ValueError("ids and vectors do not describe the same items")
    position = {doc_id: row for row, doc_id in enumerate(corpus_ids)}
    run: Run = {}
    for query_id, vector in zip(query_ids, query_vectors, strict=True):
        listed = list(candidates.get(query_id, ()))
        if not listed:
            run[query_id] = {}
            continue
        unknown = [doc_id for doc_id in listed if doc_id not in position]
        if unknown:
            raise ValueError(f"query {query_id!r} lists candidates not in the corpus: {unknown}")
        rows = [position[doc_id] for doc_id in listed]
        scores = sim.matrix(vector[None, :], corpus_vectors[rows], similarity)[0]
        if not np.isfinite(scores).all():
            raise ValueError(f"query {query_id!r} has NaN or infinite similarity scores")
        best = np.argsort(-scores, kind="stable")[:top_k]
        run[query_id] = {listed[i]: float(scores[i]) for i in best}
    return run
