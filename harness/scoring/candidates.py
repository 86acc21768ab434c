"""Candidate ranking as mteb scores it: every query ranks only its own candidates.

mteb casts multiple-choice tasks (CV-Bench, BLINK) and reranking tasks (MAEB's AudioReranking)
as retrieval with a ``top_ranked`` list of candidates per query: each query is scored against its
candidates alone, the best ``top_k`` (``max(k_values)``) enter the run, and the run is scored
with the ordinary retrieval metrics (multiple choice's ``accuracy`` is recall@1). This module
builds that run, scoring each query against its candidates with the same float32 torch
operations as that path (one query row against its candidate rows), so near-equal candidates
rank alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from harness.core import similarity as sim


def candidate_run(
    query_ids: Sequence[str],
    query_vectors: np.ndarray,
    doc_ids: Sequence[str],
    doc_vectors: np.ndarray,
    candidates: Mapping[str, Sequence[str]],
    *,
    top_k: int,
    similarity: str = "cosine",
) -> dict[str, dict[str, float]]:
    """The run ``{query_id: {doc_id: score}}`` over each query's candidates.

    Scores are float32 cosine similarities (``dot``: raw inner products). A query with no
    candidates gets an empty ranking, which scores as a miss, as in mteb. A candidate listed
    twice counts once. When a query has more than ``top_k`` candidates, only the ``top_k``
    best are kept (ties by candidate order). Every candidate id must be one of ``doc_ids``.
    """
    sim.check(similarity, sim.SINGLE_VECTOR)
    if top_k < 1:
        raise ValueError(f"top_k must be positive, got {top_k}")
    queries = _prepare(query_vectors, len(query_ids))
    docs = _prepare(doc_vectors, len(doc_ids))
    if len(queries) and len(docs) and queries.shape[1] != docs.shape[1]:
        raise ValueError(f"query vectors {queries.shape} and doc vectors {docs.shape} differ in d")
    row_of_doc = {doc_id: row for row, doc_id in enumerate(doc_ids)}
    run: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(query_ids):
        ranked = list(dict.fromkeys(candidates.get(qid, ())))
        unknown = [doc for doc in ranked if doc not in row_of_doc]
        if unknown:
            raise ValueError(
                f"candidate {unknown[0]!r} of query {qid!r} is not a doc id (not in the corpus)"
            )
        rows = [row_of_doc[doc] for doc in ranked]
        scores = (
            sim.matrix(queries[row : row + 1], docs[rows], similarity)[0].tolist() if rows else []
        )
        best = sorted(zip(ranked, scores, strict=True), key=lambda pair: -pair[1])
        run[qid] = dict(best[:top_k])
    return run


def _prepare(vectors: np.ndarray, rows: int) -> np.ndarray:
    """Check the shape and values; a float32 matrix."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or len(matrix) != rows:
        raise ValueError(f"expected {rows} vectors as an (n, d) array, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return matrix
