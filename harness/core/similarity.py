"""Similarity of embeddings, in one place: ``cosine``, ``dot`` and ``maxsim`` (multi-vector).

Every scorer and task type scores vectors through this module; nothing else normalises or
multiplies vectors by a similarity's name. Everything is computed in float32 with torch's
operations (imported where used, so that importing this module stays light), in the shapes
mteb uses, so that near-ties resolve as they do there:

- ``cosine``: both sides L2-normalised as ``F.normalize`` does (each vector divided by
  ``max(norm, 1e-12)``, so a zero vector scores 0 against everything), then a matrix product;
- ``dot``: the raw matrix product;
- ``maxsim`` (late interaction: ColBERT, ColPali): for ``(tokens, d)`` embeddings, the sum over
  the query's tokens of the best dot product with any of the document's tokens.

:func:`matrix` and :func:`paired` score whole (batched) matrices; :func:`search_blocks` scores a
query set against a corpus chunk by chunk, so that no block larger than the chunk sizes is
built, whatever the corpus size (see :func:`harness.scoring.search.top_k_search`).

MaxSim padding convention: each chunk is padded to its longest item (queries with zero tokens,
which add 0 to a sum of best matches; documents with copies of their last token, which change
no maximum), so no mask is needed. mteb's ColPali/ColQwen wrappers pad every document to the
longest of the encoded corpus with zero vectors, and colpali_engine's scorer does not mask
them, so a query token's best match is never below 0 in a shorter document. ``zero_padded``
reproduces this: documents shorter than the corpus' longest also match a zero vector. Without
it MaxSim is exact on the real tokens only; the two agree whenever every query token has a
non-negative best match, as is usual for trained models.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

COSINE, DOT, MAXSIM = "cosine", "dot", "maxsim"
SIMILARITIES = (COSINE, DOT, MAXSIM)
# The similarities of single-vector embeddings (one (d,) vector per item).
SINGLE_VECTOR = (COSINE, DOT)
# Default (query, corpus) chunk sizes of a search: a MaxSim block holds every token pair.
CHUNK_SIZES = {COSINE: (1024, 16384), DOT: (1024, 16384), MAXSIM: (32, 64)}


def check(similarity: str, supported: Sequence[str] = SIMILARITIES) -> None:
    """Refuse a similarity outside ``supported``, naming the ones that are."""
    if similarity not in supported:
        raise ValueError(
            f"unknown similarity {similarity!r} here; use one of {', '.join(supported)}"
        )


def normalise(vectors: torch.Tensor) -> torch.Tensor:
    """Vectors L2-normalised along the last axis (``F.normalize``: norms clamped at 1e-12)."""
    import torch.nn.functional as F

    return F.normalize(vectors, p=2, dim=-1)


def matrix(first: np.ndarray, second: np.ndarray, similarity: str) -> np.ndarray:
    """Single-vector similarities of every row of ``first`` with every row of ``second``:
    ``(..., n, d)`` and ``(..., m, d)`` give ``(..., n, m)`` float32. Leading axes index
    samples, each scored on its own (as mteb does: a batched product rounds differently)."""
    import torch

    check(similarity, SINGLE_VECTOR)
    a, b = _prepared(first, similarity), _prepared(second, similarity)
    if a.ndim < 2 or a.shape[-1] != b.shape[-1] or a.shape[:-2] != b.shape[:-2]:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be scored")
    if a.ndim == 2:
        return (a @ b.T).numpy()
    pairs = zip(a.flatten(0, -3), b.flatten(0, -3), strict=True)
    products = torch.stack([x @ y.T for x, y in pairs])
    return products.reshape(*a.shape[:-1], b.shape[-2]).numpy()


def paired(first: np.ndarray, second: np.ndarray, similarity: str) -> np.ndarray:
    """Single-vector similarity of each row of ``first`` with the same row of ``second``."""
    check(similarity, SINGLE_VECTOR)
    a, b = _prepared(first, similarity), _prepared(second, similarity)
    return (a * b).sum(dim=-1).numpy()


def _prepared(vectors: np.ndarray, similarity: str, device: str = "cpu") -> torch.Tensor:
    """A float32 tensor on ``device``, normalised when scoring by cosine."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
    return normalise(tensor) if similarity == COSINE else tensor


def search_blocks(
    queries: Any,
    corpus: Any,
    similarity: str,
    *,
    device: str = "cpu",
    query_chunk_size: int | None = None,
    corpus_chunk_size: int | None = None,
    zero_padded: bool = True,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(first query row, first corpus row, block)`` for every pair of chunks, corpus
    chunks outermost (each is prepared once); a block is the float32 ``(query chunk, corpus
    chunk)`` similarity matrix on ``device``.

    Single-vector inputs are ``(n, d)`` arrays; MaxSim inputs sequences of ``(tokens, d)``
    arrays with at least one token each. Chunk sizes default to ``CHUNK_SIZES``; inputs are
    checked (shapes, NaN) before the first block.
    """
    check(similarity)
    default_queries, default_corpus = CHUNK_SIZES[similarity]
    query_chunk_size = default_queries if query_chunk_size is None else query_chunk_size
    corpus_chunk_size = default_corpus if corpus_chunk_size is None else corpus_chunk_size
    if query_chunk_size < 1 or corpus_chunk_size < 1:
        raise ValueError("both chunk sizes must be positive")
    if similarity == MAXSIM:
        yield from _maxsim_blocks(
            *_checked_multi_vector(queries, corpus),
            device,
            query_chunk_size,
            corpus_chunk_size,
            zero_padded,
        )
        return
    q, c = _checked_single_vector(queries, corpus, corpus_chunk_size)
    query_chunks = [
        (start, _prepared(q[start : start + query_chunk_size], similarity, device))
        for start in range(0, len(q), query_chunk_size)
    ]
    for corpus_start in range(0, len(c), corpus_chunk_size):
        docs = _prepared(c[corpus_start : corpus_start + corpus_chunk_size], similarity, device)
        for query_start, chunk in query_chunks:
            yield query_start, corpus_start, chunk @ docs.T


def _checked_single_vector(
    queries: np.ndarray, corpus: np.ndarray, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both sides as float32 ``(n, d)`` arrays of one width, with finite values only."""
    q = np.asarray(queries, dtype=np.float32)
    c = np.asarray(corpus, dtype=np.float32)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise ValueError(f"queries {q.shape} and corpus {c.shape} must be (n, d) with the same d")
    if not (_all_finite(q, rows) and _all_finite(c, rows)):
        raise ValueError("embeddings contain NaN or infinite values")
    return q, c


def _all_finite(x: np.ndarray, rows: int) -> bool:
    """Whether every value is finite, checked ``rows`` rows at a time so that the workspace
    stays at the chunk size, not the corpus size."""
    return all(np.isfinite(x[start : start + rows]).all() for start in range(0, len(x), rows))


def _checked_multi_vector(
    queries: Sequence[np.ndarray], corpus: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Both sides as lists of float32 ``(tokens, d)`` arrays of one width."""
    if len(queries) == 0 or len(corpus) == 0:
        raise ValueError("maxsim search needs at least one query and one document")
    q = [np.asarray(item, dtype=np.float32) for item in queries]
    c = [np.asarray(item, dtype=np.float32) for item in corpus]
    for side, items in (("query", q), ("document", c)):
        for index, item in enumerate(items):
            if item.ndim != 2 or len(item) == 0:
                raise ValueError(
                    f"{side} {index} has shape {item.shape}; multi-vector embeddings must be "
                    "(tokens, d) arrays with at least one token"
                )
            if not np.isfinite(item).all():
                raise ValueError(f"{side} {index} contains NaN or infinite values")
    dims = {item.shape[-1] for item in (*q, *c)}
    if len(dims) != 1:
        raise ValueError(f"queries and documents have different token sizes: {sorted(dims)}")
    return q, c


def _maxsim_blocks(
    queries: list[np.ndarray],
    corpus: list[np.ndarray],
    device: str,
    query_chunk_size: int,
    corpus_chunk_size: int,
    zero_padded: bool,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """MaxSim blocks; see the module docstring for the padding convention."""
    import torch

    longest = max(len(doc) for doc in corpus)
    query_chunks = [
        (start, _pad(queries[start : start + query_chunk_size], device, repeat_last=False))
        for start in range(0, len(queries), query_chunk_size)
    ]
    for corpus_start in range(0, len(corpus), corpus_chunk_size):
        chunk_docs = corpus[corpus_start : corpus_start + corpus_chunk_size]
        docs = _pad(chunk_docs, device, repeat_last=True)
        floor = None
        if zero_padded:
            floor = torch.tensor([len(doc) < longest for doc in chunk_docs], device=docs.device)
        for query_start, chunk in query_chunks:
            yield query_start, corpus_start, _maxsim_block(chunk, docs, floor)


def _pad(items: list[np.ndarray], device: str, *, repeat_last: bool) -> torch.Tensor:
    """A chunk as one (n, longest, d) tensor, padded with zeros or with each item's last token."""
    import torch

    longest = max(len(item) for item in items)
    tokens = np.zeros((len(items), longest, items[0].shape[1]), dtype=np.float32)
    for row, item in enumerate(items):
        tokens[row, : len(item)] = item
        if repeat_last:
            tokens[row, len(item) :] = item[-1]
    return torch.from_numpy(tokens).to(device)


def _maxsim_block(
    queries: torch.Tensor, docs: torch.Tensor, floor: torch.Tensor | None
) -> torch.Tensor:
    """MaxSim of one query chunk against one document chunk: a (queries, docs) block.

    ``floor`` marks the documents whose best match per query token is floored at 0.
    """
    import torch

    best = torch.einsum("asx,btx->abst", queries, docs).max(dim=-1).values
    if floor is not None:
        best = torch.where(floor[None, :, None], best.clamp(min=0), best)
    return best.sum(dim=-1)
