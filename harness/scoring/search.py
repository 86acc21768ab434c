"""Exact top-k search of query embeddings against a corpus, in bounded chunks on a torch device:
single vectors by cosine or dot product, multi-vector embeddings by MaxSim (the blocks come from
:func:`harness.core.similarity.search_blocks`).

Ties: every result row is ordered by descending score and, among equal scores, by ascending
corpus index, and the cut at k keeps the lowest indices among the documents tied at the k-th
score. The result is therefore deterministic and equal to a stable sort of the full
similarity matrix, whatever the chunk sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.core import similarity as sim

if TYPE_CHECKING:
    import torch


def top_k_search(
    queries: Any,
    corpus: Any,
    k: int,
    *,
    similarity: str = "cosine",
    device: str = "cpu",
    query_chunk_size: int | None = None,
    corpus_chunk_size: int | None = None,
    zero_padded: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the k best corpus rows for every query as (scores, indices).

    ``similarity`` is one of :data:`harness.core.similarity.SIMILARITIES`: queries and corpus
    are (n, d) matrices for ``cosine`` and ``dot``, sequences of ``(tokens, d)`` arrays for
    ``maxsim`` (``zero_padded``: mteb's padding convention, see that module). Scores are
    computed in float32, one chunk pair at a time (chunk sizes default to
    ``similarity.CHUNK_SIZES``). The result is float32 scores and int64 indices, both
    (nq, min(k, nc)), each row sorted as the module docstring describes.
    """
    if k < 1:
        raise ValueError("k must be positive")
    blocks = sim.search_blocks(
        queries,
        corpus,
        similarity,
        device=device,
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
        zero_padded=zero_padded,
    )
    k = min(k, len(corpus))
    running: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for query_start, corpus_start, block in blocks:
        values, columns = _stable_top_k(block, k)
        top = (values, columns + corpus_start)
        running[query_start] = (
            _merge(running[query_start], top, k) if query_start in running else top
        )
    if not running:  # no query or no document
        return np.empty((len(queries), k), np.float32), np.empty((len(queries), k), np.int64)
    import torch

    values = torch.cat([running[start][0] for start in sorted(running)])
    indices = torch.cat([running[start][1] for start in sorted(running)])
    return values.cpu().numpy(), indices.cpu().numpy()


def run_from_top_k(
    query_ids: Sequence[str],
    corpus_ids: Sequence[str],
    scores: np.ndarray,
    indices: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Build the {query_id: {doc_id: score}} run that pytrec_eval reads, in rank order."""
    if scores.shape != indices.shape or len(query_ids) != len(scores):
        raise ValueError(
            f"{len(query_ids)} query ids, scores {scores.shape} and indices {indices.shape} "
            "do not describe the same queries"
        )
    return {
        qid: {corpus_ids[j]: float(s) for s, j in zip(row_scores, row_indices, strict=True)}
        for qid, row_scores, row_indices in zip(
            query_ids, scores.tolist(), indices.tolist(), strict=True
        )
    }


def _merge(
    running: tuple[torch.Tensor, torch.Tensor], new: tuple[torch.Tensor, torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge a running top k with a later chunk's top k.

    Both are ordered by (value desc, index asc) and every running index is below every new
    one, so in their concatenation, column order among equal values is index order.
    """
    import torch

    values, columns = _stable_top_k(torch.cat([running[0], new[0]], dim=1), k)
    return values, torch.cat([running[1], new[1]], dim=1).gather(1, columns)


def _stable_top_k(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top k of each row as (values, columns), by descending value, then ascending column.

    torch.topk is fast but orders equal values arbitrarily, so rows with ties are redone:
    a tie at the cut (the (k+1)-th value equals the k-th) needs the stable sort of the whole
    row, a tie inside the top k only a reordering of it.
    """
    import torch

    k = min(k, x.shape[1])
    values, columns = torch.topk(x, min(k + 1, x.shape[1]), dim=1)
    ties = values[:, 1:] == values[:, :-1]
    values, columns = values[:, :k], columns[:, :k]
    rows = ties[:, k - 1 :].any(dim=1).nonzero().squeeze(1)
    if len(rows):
        stable_values, stable_columns = torch.sort(x[rows], dim=1, descending=True, stable=True)
        values[rows], columns[rows] = stable_values[:, :k], stable_columns[:, :k]
    rows = ties[:, : k - 1].any(dim=1).nonzero().squeeze(1)
    if len(rows):
        values[rows], columns[rows] = _order(values[rows], columns[rows])
    return values, columns


def _order(values: torch.Tensor, columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by descending value, then ascending column."""
    by_column = columns.argsort(dim=1)
    values, columns = values.gather(1, by_column), columns.gather(1, by_column)
    by_value = values.argsort(dim=1, descending=True, stable=True)
    return values.gather(1, by_value), columns.gather(1, by_value)
