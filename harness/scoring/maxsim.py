"""Exact top-k late-interaction (MaxSim) search over multi-vector embeddings, in bounded chunks.

score(q, d) = sum over the query's tokens of the best dot product with any of the document's
tokens (ColBERT, ColPali). Queries and documents are ragged lists of ``(tokens, d)`` arrays;
each chunk is padded to its longest item (queries with zero tokens, which add 0 to a sum of
best matches; documents with copies of their last token, which change no maximum), so no mask
is needed and no block larger than query_chunk_size x corpus_chunk_size x (query tokens) x
(document tokens) of one chunk pair is ever built (with the defaults and ColPali-sized inputs,
32 x 64 x 30 x 1030 float32 values, about 250 MB), whatever the size of the corpus. The
running top k is merged chunk by chunk exactly as in :mod:`harness.scoring.search`, with the
same tie order (descending score, then ascending index).

Padding convention: mteb's ColPali/ColQwen wrappers pad every document to the longest one of
the encoded corpus (chunks of 50,000 documents) with zero vectors, and colpali_engine's scorer
does not mask them, so a query token's best match is never below 0 in a shorter document
(their zero query tokens add 0, as ours do). ``zero_padded=True`` reproduces this for corpora
up to that size: documents shorter than the corpus' longest also match a zero vector. With
``zero_padded=False`` MaxSim is exact on the real tokens only. The two agree whenever every
query token has a non-negative best match, as is usual for trained models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from harness.scoring.search import _empty_result, _merge, _stable_top_k


def maxsim_top_k(
    queries: Sequence[np.ndarray],
    corpus: Sequence[np.ndarray],
    k: int,
    *,
    zero_padded: bool = True,
    device: str = "cpu",
    query_chunk_size: int = 32,
    corpus_chunk_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the k best documents for every query by MaxSim, as (scores, indices).

    ``queries`` and ``corpus`` are sequences of float ``(tokens, d)`` arrays with at least one
    token each and the same d; they are scored in float32. The result is float32 scores and
    int64 indices, both (len(queries), min(k, len(corpus))), each row sorted by descending
    score, then ascending index.
    """
    q, c = _check_inputs(queries, corpus, k, query_chunk_size, corpus_chunk_size)
    k = min(k, len(c))
    longest = max(len(doc) for doc in c)
    query_chunks = [
        _pad(q[start : start + query_chunk_size], device, repeat_last=False)
        for start in range(0, len(q), query_chunk_size)
    ]
    running = [_empty_result(len(chunk), chunk.device) for chunk in query_chunks]
    for start in range(0, len(c), corpus_chunk_size):
        chunk_docs = c[start : start + corpus_chunk_size]
        docs = _pad(chunk_docs, device, repeat_last=True)
        floor = None
        if zero_padded:
            floor = torch.tensor([len(doc) < longest for doc in chunk_docs], device=docs.device)
        for i, chunk in enumerate(query_chunks):
            values, columns = _stable_top_k(_score_block(chunk, docs, floor), k)
            running[i] = _merge(running[i], (values, columns + start), k)
    values = torch.cat([v for v, _ in running])
    indices = torch.cat([i for _, i in running])
    return values.cpu().numpy(), indices.cpu().numpy()


def _check_inputs(
    queries: Sequence[np.ndarray],
    corpus: Sequence[np.ndarray],
    k: int,
    query_chunk_size: int,
    corpus_chunk_size: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validate the arguments and return both sides as lists of float32 arrays."""
    if k < 1 or query_chunk_size < 1 or corpus_chunk_size < 1:
        raise ValueError("k and both chunk sizes must be positive")
    if len(queries) == 0 or len(corpus) == 0:
        raise ValueError("maxsim search needs at least one query and one document")
    q = [np.asarray(item, dtype=np.float32) for item in queries]
    c = [np.asarray(item, dtype=np.float32) for item in corpus]
    dims = {item.shape[-1] for item in (*q, *c) if item.ndim == 2}
    for side, items in (("query", q), ("document", c)):
        for index, item in enumerate(items):
            if item.ndim != 2 or len(item) == 0:
                raise ValueError(
                    f"{side} {index} has shape {item.shape}; multi-vector embeddings must be "
                    "(tokens, d) arrays with at least one token"
                )
            if not np.isfinite(item).all():
                raise ValueError(f"{side} {index} contains NaN or infinite values")
    if len(dims) != 1:
        raise ValueError(f"queries and documents have different token sizes: {sorted(dims)}")
    return q, c


def _pad(items: list[np.ndarray], device: str, *, repeat_last: bool) -> torch.Tensor:
    """A chunk as one (n, longest, d) tensor, padded with zeros or with each item's last token."""
    longest = max(len(item) for item in items)
    tokens = np.zeros((len(items), longest, items[0].shape[1]), dtype=np.float32)
    for row, item in enumerate(items):
        tokens[row, : len(item)] = item
        if repeat_last:
            tokens[row, len(item) :] = item[-1]
    return torch.from_numpy(tokens).to(device)


def _score_block(
    queries: torch.Tensor, docs: torch.Tensor, floor: torch.Tensor | None
) -> torch.Tensor:
    """MaxSim of one query chunk against one document chunk: a (queries, docs) block.

    ``floor`` marks the documents whose best match per query token is floored at 0.
    """
    best = torch.einsum("asx,btx->abst", queries, docs).max(dim=-1).values
    if floor is not None:
        best = torch.where(floor[None, :, None], best.clamp(min=0), best)
    return best.sum(dim=-1)
