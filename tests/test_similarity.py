"""Similarity in one place: cosine, dot and MaxSim as mteb computes them, used by every scorer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.core import similarity
from harness.scoring.candidates import candidate_run
from harness.scoring.compositionality import cosine_similarities
from harness.scoring.search import top_k_search
from harness.scoring.sts import sts_scores
from harness.scoring.zero_shot import label_scores


def vectors(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_matrix_is_torchs_normalised_product_bit_for_bit() -> None:
    a, b = vectors(0, 7, 16), vectors(1, 5, 16)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    cosine = (F.normalize(ta, p=2, dim=1) @ F.normalize(tb, p=2, dim=1).T).numpy()
    np.testing.assert_array_equal(similarity.matrix(a, b, "cosine"), cosine)
    np.testing.assert_array_equal(similarity.matrix(a, b, "dot"), (ta @ tb.T).numpy())


def test_batched_matrix_equals_mtebs_per_sample_products() -> None:
    """mteb's pair classification: ``img_emb @ txt_emb.t()`` per sample of normalised vectors."""
    images, texts = vectors(2, 6, 2, 8), vectors(3, 6, 4, 8)
    ti, tt = (
        F.normalize(torch.from_numpy(images), dim=-1),
        F.normalize(torch.from_numpy(texts), dim=-1),
    )
    expected = np.stack([(i @ t.t()).numpy() for i, t in zip(ti, tt, strict=True)])
    np.testing.assert_array_equal(similarity.matrix(images, texts, "cosine"), expected)


def test_paired_scores_each_row_with_its_partner() -> None:
    a, b = vectors(4, 9, 8), vectors(5, 9, 8)
    expected = [
        float(similarity.matrix(x[None], y[None], "cosine")[0, 0])
        for x, y in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(similarity.paired(a, b, "cosine"), expected, rtol=1e-6)
    np.testing.assert_allclose(similarity.paired(a, b, "dot"), (a * b).sum(axis=1), rtol=1e-5)


def test_a_zero_vector_has_cosine_zero() -> None:
    a = np.zeros((1, 4), np.float32)
    assert similarity.matrix(a, vectors(6, 3, 4), "cosine").tolist() == [[0.0, 0.0, 0.0]]


@pytest.mark.parametrize("name", ["maxsim", "euclidean"])
def test_single_vector_scores_refuse_other_similarities(name: str) -> None:
    with pytest.raises(ValueError, match="unknown similarity"):
        similarity.matrix(vectors(7, 2, 4), vectors(8, 2, 4), name)


@pytest.mark.parametrize("name", ["cosine", "dot"])
def test_search_blocks_tile_the_whole_matrix(name: str) -> None:
    queries, corpus = vectors(9, 10, 8), vectors(10, 23, 8)
    full = np.full((10, 23), np.nan, np.float32)
    blocks = similarity.search_blocks(
        queries, corpus, name, query_chunk_size=4, corpus_chunk_size=6
    )
    for query_start, corpus_start, block in blocks:
        rows, columns = block.shape
        assert rows <= 4 and columns <= 6
        full[query_start : query_start + rows, corpus_start : corpus_start + columns] = block
    np.testing.assert_allclose(full, similarity.matrix(queries, corpus, name), rtol=1e-6)


def test_maxsim_blocks_sum_each_query_tokens_best_match() -> None:
    queries = [vectors(11, 3, 4), vectors(12, 1, 4)]
    corpus = [vectors(13, 2, 4), vectors(14, 5, 4)]
    [(_, _, block)] = similarity.search_blocks(queries, corpus, "maxsim", zero_padded=False)
    expected = [[(q @ d.T).max(axis=1).sum() for d in corpus] for q in queries]
    np.testing.assert_allclose(block.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize(
    "score",
    [
        lambda a, b: label_scores(a, b, scoring="similarity"),
        lambda a, b: label_scores(a, b, scoring="softmax"),
        lambda a, b: candidate_run(["q"], a[:1], ["d0", "d1"], b[:2], {"q": ["d0", "d1"]}, top_k=2),
        lambda a, b: cosine_similarities(a[None], b[None]),
        lambda a, b: top_k_search(a, b, 2),
    ],
    ids=["zero-shot", "zero-shot-softmax", "multiple-choice", "compositionality", "search"],
)
def test_scorers_score_through_the_similarity_module(score, monkeypatch) -> None:
    """A scorer that normalised or multiplied vectors itself would not call the module."""
    calls = []
    for name in ("matrix", "search_blocks"):
        real = getattr(similarity, name)

        def spy(*args, real=real, **kwargs):
            calls.append(real)
            return real(*args, **kwargs)

        monkeypatch.setattr(similarity, name, spy)
    score(vectors(15, 4, 8), vectors(16, 3, 8))
    assert calls


def test_sts_scores_the_models_similarity_through_the_module(monkeypatch) -> None:
    calls = []
    real = similarity.paired

    def spy(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(similarity, "paired", spy)
    sts_scores(vectors(17, 5, 8), vectors(18, 5, 8), [0, 1, 2, 3, 4], similarity="dot")
    assert calls == ["dot"]
