"""Exact top-k search of query embeddings against a corpus, in bounded chunks on a torch device.

Ties: every result row is ordered by descending score and, among equal scores, by ascending
corpus index, and the cut at k keeps the lowest indices among the documents tied at the k-th
score. The result is therefore deterministic and equal to a stable sort of the full
similarity matrix, whatever the chunk sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

SIMILARITIES = ("cosine", "dot")


def top_k_search(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    similarity: str = "cosine",
    device: str = "cpu",
    query_chunk_size: int = 1024,
    corpus_chunk_size: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the k best corpus rows for every query as (scores, indices).

    queries is (nq, d) and corpus is (nc, d); both are cast to float32 and scored in float32.
    "cosine" L2-normalises both sides first (a zero vector scores 0 against everything),
    "dot" uses the raw inner product. No similarity block larger than
    query_chunk_size x corpus_chunk_size is built. The result is float32 scores and int64
    indices, both (nq, min(k, nc)), each row sorted as the module docstring describes.
    """
    q, c = _check_inputs(queries, corpus, k, similarity, query_chunk_size, corpus_chunk_size)
    k = min(k, len(c))
    normalise = similarity == "cosine"
    query_chunks = _to_device(q, normalise, device).split(query_chunk_size)
    running = [_empty_result(len(chunk), chunk.device) for chunk in query_chunks]
    for start in range(0, len(c), corpus_chunk_size):
        docs = _to_device(c[start : start + corpus_chunk_size], normalise, device)
        for i, chunk in enumerate(query_chunks):
            values, columns = _stable_top_k(_score_block(chunk, docs), k)
            running[i] = _merge(running[i], (values, columns + start), k)
    values = torch.cat([v for v, _ in running])
    indices = torch.cat([i for _, i in running])
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


def _check_inputs(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    similarity: str,
    query_chunk_size: int,
    corpus_chunk_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate the arguments and return both matrices as float32."""
    if similarity not in SIMILARITIES:
        if similarity == "maxsim":
            raise ValueError("maxsim (late-interaction) search is not implemented yet")
        raise ValueError(f"unknown similarity {similarity!r}; use one of {SIMILARITIES}")
    if k < 1 or query_chunk_size < 1 or corpus_chunk_size < 1:
        raise ValueError("k and both chunk sizes must be positive")
    q = np.asarray(queries, dtype=np.float32)
    c = np.asarray(corpus, dtype=np.float32)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise ValueError(f"queries {q.shape} and corpus {c.shape} must be (n, d) with the same d")
    if not (_all_finite(q, corpus_chunk_size) and _all_finite(c, corpus_chunk_size)):
        raise ValueError("embeddings contain NaN or infinite values")
    return q, c


def _all_finite(x: np.ndarray, rows: int) -> bool:
    """Whether every value is finite, checked ``rows`` rows at a time so that the workspace
    stays at the chunk size, not the corpus size."""
    return all(np.isfinite(x[start : start + rows]).all() for start in range(0, len(x), rows))


def _to_device(x: np.ndarray, normalise: bool, device: str) -> torch.Tensor:
    """Move rows to the device, L2-normalised when scoring by cosine."""
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    return F.normalize(t, p=2, dim=1) if normalise else t


def _score_block(queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
    """The similarity block of one query chunk against one corpus chunk."""
    return queries @ docs.T


def _empty_result(rows: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A top k of width 0, to merge the first chunk into."""
    return (
        torch.empty(rows, 0, dtype=torch.float32, device=device),
        torch.empty(rows, 0, dtype=torch.int64, device=device),
    )


def _merge(
    running: tuple[torch.Tensor, torch.Tensor], new: tuple[torch.Tensor, torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge a running top k with a later chunk's top k.

    Both are ordered by (value desc, index asc) and every running index is below every new
    one, so in their concatenation, column order among equal values is index order.
    """
    values, columns = _stable_top_k(torch.cat([running[0], new[0]], dim=1), k)
    return values, torch.cat([running[1], new[1]], dim=1).gather(1, columns)


def _stable_top_k(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top k of each row as (values, columns), by descending value, then ascending column.

    torch.topk is fast but orders equal values arbitrarily, so rows with ties are redone:
    a tie at the cut (the (k+1)-th value equals the k-th) needs the stable sort of the whole
    row, a tie inside the top k only a reordering of it.
    """
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
