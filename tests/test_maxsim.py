"""Chunked MaxSim search against brute force, mteb's max_sim, and its memory bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mteb.similarity_functions import max_sim
from torch.nn.utils.rnn import pad_sequence

from harness.core import similarity
from harness.scoring.search import top_k_search

DIM = 8


def ragged(seed: int, n: int, max_tokens: int, integer: bool = False) -> list[np.ndarray]:
    """n random (tokens, DIM) arrays of 1..max_tokens tokens; small integers make ties."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_tokens + 1, n)
    if integer:
        return [rng.integers(-1, 2, (t, DIM)).astype(np.float32) for t in lengths]
    return [rng.standard_normal((t, DIM)).astype(np.float32) for t in lengths]


def brute_force_matrix(queries, corpus, zero_padded: bool) -> np.ndarray:
    """Per-pair loops; zero_padded adds a zero token to documents shorter than the longest."""
    longest = max(len(doc) for doc in corpus)
    scores = np.zeros((len(queries), len(corpus)), dtype=np.float64)
    for i, query in enumerate(queries):
        for j, doc in enumerate(corpus):
            tokens = doc.astype(np.float64)
            if zero_padded and len(doc) < longest:
                tokens = np.vstack([tokens, np.zeros((1, DIM))])
            scores[i, j] = (query.astype(np.float64) @ tokens.T).max(axis=1).sum()
    return scores


def stable_top_k(matrix: np.ndarray | torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    values, indices = torch.sort(torch.as_tensor(matrix), dim=1, descending=True, stable=True)
    return values[:, :k].numpy(), indices[:, :k].numpy()


def maxsim_top_k(queries, corpus, k, **kwargs):
    return top_k_search(queries, corpus, k, similarity="maxsim", **kwargs)


@pytest.mark.parametrize("zero_padded", [True, False])
@pytest.mark.parametrize(("query_chunk", "corpus_chunk"), [(32, 64), (1, 4), (3, 7), (11, 40)])
@pytest.mark.parametrize("k", [1, 5, 100])
def test_equals_brute_force_on_ragged_data(zero_padded, query_chunk, corpus_chunk, k) -> None:
    queries, corpus = ragged(seed=k, n=11, max_tokens=6), ragged(seed=k + 1, n=40, max_tokens=9)
    scores, indices = maxsim_top_k(
        queries,
        corpus,
        k,
        zero_padded=zero_padded,
        query_chunk_size=query_chunk,
        corpus_chunk_size=corpus_chunk,
    )
    expected_scores, expected_indices = stable_top_k(
        brute_force_matrix(queries, corpus, zero_padded), k
    )
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    assert scores.shape == indices.shape == (11, min(k, 40))
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("query_chunk", "corpus_chunk"), [(2, 3), (5, 17), (13, 60)])
def test_ties_keep_the_lowest_indices_whatever_the_chunks(query_chunk, corpus_chunk) -> None:
    queries, corpus = ragged(3, 13, 4, integer=True), ragged(4, 60, 5, integer=True)
    scores, indices = maxsim_top_k(
        queries, corpus, 20, query_chunk_size=query_chunk, corpus_chunk_size=corpus_chunk
    )
    expected_scores, expected_indices = stable_top_k(brute_force_matrix(queries, corpus, True), 20)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(scores, expected_scores.astype(np.float32))


def test_zero_padding_floors_negative_best_matches_of_shorter_documents() -> None:
    query = [np.ones((1, DIM), np.float32)]
    short, long = -np.ones((1, DIM), np.float32), -np.ones((2, DIM), np.float32)
    padded, _ = maxsim_top_k(query, [short, long], 2, zero_padded=True)
    exact, _ = maxsim_top_k(query, [short, long], 2, zero_padded=False)
    np.testing.assert_array_equal(padded, [[0.0, -DIM]])
    np.testing.assert_array_equal(exact, [[-DIM, -DIM]])


def test_blocks_stay_within_the_chunk_sizes(monkeypatch) -> None:
    """The largest block follows the chunks' sizes and longest items, not the corpus size."""
    shapes = []
    real_block = similarity._maxsim_block

    def spy(queries, docs, floor):
        block = real_block(queries, docs, floor)
        shapes.append((*queries.shape[:2], *docs.shape[:2]))
        assert block.shape == (len(queries), len(docs))
        return block

    monkeypatch.setattr(similarity, "_maxsim_block", spy)
    queries, corpus = ragged(5, 10, 6), ragged(6, 200, 9)
    maxsim_top_k(queries, corpus, 10, query_chunk_size=4, corpus_chunk_size=16)
    assert len(shapes) == 3 * 13  # ceil(10 / 4) query chunks x ceil(200 / 16) corpus chunks
    assert max(s[0] for s in shapes) == 4 and max(s[2] for s in shapes) == 16
    assert max(s[1] for s in shapes) <= 6 and max(s[3] for s in shapes) <= 9


@pytest.mark.parametrize("k", [1, 10])
def test_equals_mteb_on_zero_padded_embeddings(k) -> None:
    """mteb's ColPali/ColQwen wrappers hand over the corpus zero-padded to its longest page."""
    queries, corpus = ragged(7, 9, 5), ragged(8, 30, 12)
    mteb_matrix = max_sim(
        pad_sequence([torch.from_numpy(q) for q in queries], batch_first=True),
        pad_sequence([torch.from_numpy(d) for d in corpus], batch_first=True),
    )
    expected_scores, expected_indices = stable_top_k(mteb_matrix, k)
    scores, indices = maxsim_top_k(queries, corpus, k, corpus_chunk_size=7)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("queries", "corpus", "message"),
    [
        ([np.ones((2, 4))], [np.ones((0, 4))], "document 0 has shape"),
        ([np.ones(4)], [np.ones((2, 4))], "query 0 has shape"),
        ([np.ones((2, 4))], [np.ones((2, 3))], "different token sizes"),
        ([np.full((1, 4), np.nan)], [np.ones((2, 4))], "NaN"),
        ([], [np.ones((2, 4))], "at least one query"),
    ],
)
def test_bad_inputs_are_named(queries, corpus, message) -> None:
    with pytest.raises(ValueError, match=message):
        maxsim_top_k(queries, corpus, 3)
