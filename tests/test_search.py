"""Chunked top-k search against a brute-force stable sort of the full similarity matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.core import similarity
from harness.scoring.search import run_from_top_k, top_k_search


def brute_force(queries, corpus, k, similarity="cosine"):
    """Full matrix, stable sort: descending score, then ascending index."""
    q, c = torch.from_numpy(queries), torch.from_numpy(corpus)
    if similarity == "cosine":
        q, c = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(c, dim=1)
    values, indices = torch.sort(q @ c.T, dim=1, descending=True, stable=True)
    return values[:, :k].numpy(), indices[:, :k].numpy()


def random_embeddings(seed, n_queries=37, n_docs=101, dim=16):
    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
    return queries, rng.standard_normal((n_docs, dim)).astype(np.float32)


def tied_embeddings(seed, n_queries=23, n_docs=90, dim=4):
    """Small integer vectors: dot products are exact and ties are everywhere."""
    rng = np.random.default_rng(seed)
    queries = rng.integers(-1, 2, (n_queries, dim)).astype(np.float32)
    return queries, rng.integers(-1, 2, (n_docs, dim)).astype(np.float32)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize(
    ("query_chunk", "corpus_chunk"), [(1024, 16384), (5, 7), (1, 3), (37, 101), (8, 50)]
)
@pytest.mark.parametrize("k", [1, 10, 100])
def test_equals_brute_force_on_random_data(similarity, query_chunk, corpus_chunk, k) -> None:
    queries, corpus = random_embeddings(seed=k)
    scores, indices = top_k_search(
        queries,
        corpus,
        k,
        similarity=similarity,
        query_chunk_size=query_chunk,
        corpus_chunk_size=corpus_chunk,
    )
    expected_scores, expected_indices = brute_force(queries, corpus, k, similarity)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    assert scores.shape == indices.shape == (37, k)
    np.testing.assert_array_equal(indices, expected_indices)
    # BLAS may sum a block's dot products in another order than the full matrix's: ~1 ulp.
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("query_chunk", "corpus_chunk"), [(4, 3), (7, 11), (23, 90), (2, 64)])
@pytest.mark.parametrize("k", [1, 5, 17, 90])
def test_ties_keep_the_lowest_indices_whatever_the_chunks(query_chunk, corpus_chunk, k) -> None:
    queries, corpus = tied_embeddings(seed=k)
    scores, indices = top_k_search(
        queries,
        corpus,
        k,
        similarity="dot",
        query_chunk_size=query_chunk,
        corpus_chunk_size=corpus_chunk,
    )
    expected_scores, expected_indices = brute_force(queries, corpus, k, "dot")
    np.testing.assert_array_equal(scores, expected_scores)
    np.testing.assert_array_equal(indices, expected_indices)


def test_k_larger_than_the_corpus_returns_every_document() -> None:
    queries, corpus = random_embeddings(seed=1, n_docs=9)
    scores, indices = top_k_search(queries, corpus, 1000, corpus_chunk_size=4)
    assert scores.shape == indices.shape == (37, 9)
    assert (np.sort(indices, axis=1) == np.arange(9)).all()
    assert (np.diff(scores, axis=1) <= 0).all()


def test_cosine_ignores_norms_and_dot_does_not() -> None:
    queries, corpus = random_embeddings(seed=2)
    scaled = corpus * np.linspace(0.1, 10, len(corpus), dtype=np.float32)[:, None]
    cosine = top_k_search(queries, corpus, 10)
    cosine_scaled = top_k_search(queries, scaled, 10)
    np.testing.assert_array_equal(cosine[1], cosine_scaled[1])
    np.testing.assert_allclose(cosine[0], cosine_scaled[0], atol=1e-6)
    assert np.abs(cosine[0]).max() <= 1 + 1e-6

    dot = top_k_search(queries, scaled, 10, similarity="dot")
    assert not np.array_equal(dot[1], cosine[1])
    expected = np.take_along_axis(queries @ scaled.T, dot[1], axis=1)
    np.testing.assert_allclose(dot[0], expected, rtol=1e-5)


def test_zero_vectors_score_zero_under_cosine() -> None:
    queries, corpus = random_embeddings(seed=3, n_queries=2, n_docs=5)
    queries[0] = 0
    corpus[4] = 0
    scores, indices = top_k_search(queries, corpus, 5)
    assert np.isfinite(scores).all()
    assert (scores[0] == 0).all()
    assert indices[0].tolist() == [0, 1, 2, 3, 4]
    assert scores[1][indices[1] == 4] == 0


def test_no_similarity_block_exceeds_the_chunk_sizes(monkeypatch) -> None:
    shapes = []
    search_blocks = similarity.search_blocks

    def spy(*args, **kwargs):
        for query_start, corpus_start, block in search_blocks(*args, **kwargs):
            shapes.append(tuple(block.shape))
            yield query_start, corpus_start, block

    monkeypatch.setattr(similarity, "search_blocks", spy)
    queries, corpus = random_embeddings(seed=4, n_queries=50, n_docs=300)
    _, indices = top_k_search(queries, corpus, 20, query_chunk_size=16, corpus_chunk_size=64)
    assert max(rows for rows, _ in shapes) == 16
    assert max(cols for _, cols in shapes) == 64
    assert sum(rows * cols for rows, cols in shapes) == 50 * 300
    np.testing.assert_array_equal(indices, brute_force(queries, corpus, 20)[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"similarity": "euclidean"}, "unknown similarity"),
        ({"k": 0}, "positive"),
        ({"corpus_chunk_size": 0}, "positive"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message) -> None:
    queries, corpus = random_embeddings(seed=5, n_queries=2, n_docs=3)
    with pytest.raises(ValueError, match=message):
        top_k_search(queries, corpus, **{"k": 2, **kwargs})


def test_bad_inputs_are_rejected() -> None:
    queries, corpus = random_embeddings(seed=6, n_queries=2, n_docs=3)
    with pytest.raises(ValueError, match="same d"):
        top_k_search(queries, corpus[:, :5], 2)
    queries[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        top_k_search(queries, corpus, 2)


def test_empty_inputs_give_empty_results() -> None:
    queries, corpus = random_embeddings(seed=7, n_queries=0, n_docs=3)
    assert top_k_search(queries, corpus, 2)[1].shape == (0, 2)
    assert top_k_search(corpus, corpus[:0], 2)[1].shape == (3, 0)


def test_run_from_top_k_maps_positions_to_ids_in_rank_order() -> None:
    scores = np.array([[0.9, 0.5], [0.7, 0.7]], dtype=np.float32)
    indices = np.array([[2, 0], [1, 2]], dtype=np.int64)
    run = run_from_top_k(["qa", "qb"], ["x", "y", "z"], scores, indices)
    assert run == {
        "qa": {"z": 0.8999999761581421, "x": 0.5},
        "qb": {"y": 0.699999988079071, "z": 0.699999988079071},
    }
    assert list(run["qa"]) == ["z", "x"]
    assert all(type(s) is float for docs in run.values() for s in docs.values())
    with pytest.raises(ValueError, match="same queries"):
        run_from_top_k(["qa"], ["x", "y", "z"], scores, indices)
