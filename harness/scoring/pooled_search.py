"""A run for queries that share ids, built as mteb's dense search builds it.

mteb keeps one bounded min-heap of ``(score, corpus_id)`` pairs per query *id*: every query row
offers its best hits to the heap of its id, so rows sharing an id pool their hits into one top-k
list, and a corpus id that comes back more than once (documents sharing an id, or one document
offered by several rows) keeps the score of its last place in the heap's array order.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np


def pooled_run(
    query_ids: Sequence[str],
    corpus_ids: Sequence[str],
    scores: np.ndarray,
    indices: np.ndarray,
    k: int,
) -> dict[str, dict[str, float]]:
    """The {query_id: {doc_id: score}} run of rows that may repeat query and corpus ids.

    ``scores`` and ``indices`` hold each query row's best hits, best first (mteb offers
    ``k + 1`` of them per row in one corpus chunk); they are offered to the heap of the row's
    id, of at most ``k`` pairs, row by row, and each heap is read out in its array order.
    """
    if k < 1:
        raise ValueError("k must be positive")
    if scores.shape != indices.shape or len(query_ids) != len(scores):
        raise ValueError(
            f"{len(query_ids)} query ids, scores {scores.shape} and indices {indices.shape} "
            "do not describe the same queries"
        )
    heaps: dict[str, list[tuple[float, str]]] = {qid: [] for qid in query_ids}
    for qid, row_scores, row_indices in zip(
        query_ids, scores.tolist(), indices.tolist(), strict=True
    ):
        heap = heaps[qid]
        for score, index in zip(row_scores, row_indices, strict=True):
            hit = (score, corpus_ids[index])
            if len(heap) < k:
                heapq.heappush(heap, hit)
            else:
                heapq.heappushpop(heap, hit)
    run: dict[str, dict[str, float]] = {}
    for qid, heap in heaps.items():
        docs = run[qid] = {}
        for score, doc in heap:
            docs[doc] = score
    return run
