"""Metric parity with mteb: every key mteb's scoring writes into a subset's score dict, for
every task type, is in the entry our type writes, with the same value on the same embeddings.

Each case scores one tiny loaded split through the type's own ``score`` (the metric assembly
that ends up in result files) with an encoder that returns fixed vectors by item id, and runs
mteb's task code (``_evaluate_subset`` or its evaluator and metric code, through the drivers of
the per-type reference tests) on the same vectors.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from harness.core.adapter import AdapterMeta
from harness.core.encoder import Encoded
from harness.core.items import RawItem
from harness.scoring.abstention import abstention_naucs, confidence_scores, nauc
from harness.scoring.classification import kshot_samples, multilabel_kshot_samples
from harness.scoring.clustering_fast import embedded_rows
from harness.scoring.retrieval import retrieval_scores
from harness.tasks.base import SplitOutcome
from harness.tasks.clustering_fast import ClusteringSplit
from harness.tasks.compositionality import Sample, SampleSplit
from harness.tasks.definition import TaskDefinition
from harness.tasks.labelled import LabelledSplit
from harness.tasks.linear_probe import ProbeSplit, ProbeSubsets
from harness.tasks.multiple_choice import ChoiceSplit
from harness.tasks.pair_classification import LabelledPairs
from harness.tasks.registry import TASK_TYPES
from harness.tasks.reranking import RerankingSplit
from harness.tasks.retrieval import RetrievalData, RetrievalSplit
from harness.tasks.visual_sts import Pairs, PairsSplit
from harness.tasks.zero_shot import ZeroShotSplit
from tests.test_scoring_classification import (
    mteb_linear_probe,
    mteb_multilabel,
    multilabel_vectors,
)
from tests.test_scoring_classification import random_label_sets as label_sets
from tests.test_scoring_clustering import mteb_scores as mteb_clustering
from tests.test_scoring_clustering_fast import mteb_scores as mteb_clustering_fast
from tests.test_scoring_compositionality import mteb_scores as mteb_compositionality
from tests.test_scoring_pair_classification import mteb_pair_scores
from tests.test_scoring_reranking import mteb_scores as mteb_retrieval
from tests.test_scoring_retrieval import mteb_score_dict
from tests.test_scoring_sts import mteb_sts
from tests.test_scoring_zero_shot import mteb_scores as mteb_zero_shot

TOLERANCE = 1e-6


class TableEncoder:
    """An encoder returning fixed vectors by item id."""

    device = "cpu"

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.adapter = SimpleNamespace(
            meta=AdapterMeta("table", "1", "test", "cosine", ("text",), "float32")
        )

    def encode(self, items: Sequence[RawItem], **_: Any) -> Encoded:
        matrix = np.stack([self.vectors[item.id] for item in items]).astype(np.float32)
        return Encoded(matrix, np.ones(len(items), dtype=bool))


def definition(task_type: str, category: str = "t2t", **protocol: Any) -> TaskDefinition:
    return TaskDefinition(
        name=f"Parity{task_type}",
        type=task_type,
        dataset={"path": "unused"},
        category=category,
        protocol=protocol,
    )


def items(prefix: str, n: int) -> list[RawItem]:
    return [RawItem.of(f"{prefix}{i}", text=f"{prefix}{i}") for i in range(n)]


def table(prefix: str, vectors: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{prefix}{i}": vector for i, vector in enumerate(vectors)}


def labelled(prefix: str, labels: list[Any]) -> LabelledSplit:
    return LabelledSplit(
        split="test", items=items(prefix, len(labels)), labels=labels, label_names=None
    )


def only_entry(outcome: SplitOutcome) -> dict[str, Any]:
    [entry] = outcome.subsets
    return entry


@dataclass(frozen=True)
class Case:
    """Our entry for a type and mteb's subset scores, on the same vectors."""

    ours: dict[str, Any]
    mteb: dict[str, Any]


# --- retrieval family: retrieval (documents too), reranking, multiple choice ---------------


def retrieval_case(seed: int = 0, queries: int = 14, docs: int = 40) -> dict[str, Any]:
    """Random vectors, graded judgments, and 13 candidates per query that hold the judged."""
    rng = np.random.default_rng(seed)
    query_ids = [f"q{i}" for i in range(queries)]
    doc_ids = [f"d{i}" for i in range(docs)]
    vectors = {key: rng.normal(size=8).astype(np.float32) for key in query_ids + doc_ids}
    candidates = {
        qid: [doc_ids[j] for j in rng.choice(docs, size=13, replace=False)] for qid in query_ids
    }
    qrels = {
        qid: {doc: int(rng.integers(1, 3)) for doc in candidates[qid][:3]} for qid in query_ids
    }
    return {"queries": query_ids, "docs": doc_ids, "vectors": vectors,
            "candidates": candidates, "qrels": qrels}  # fmt: skip


def retrieval_split(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "queries": [RawItem.of(q, text=q) for q in case["queries"]],
        "corpus": [RawItem.of(d, text=d) for d in case["docs"]],
        "qrels": case["qrels"],
    }


def retrieval() -> Case:
    case = retrieval_case()
    loaded = RetrievalData(split="test", parts={"default": RetrievalSplit(**retrieval_split(case))})
    task = definition("retrieval")
    ours = TASK_TYPES["retrieval"].score(task, loaded, TableEncoder(case["vectors"]))
    return Case(only_entry(ours), mteb_retrieval({**case, "candidates": None}, "cosine"))


def reranking() -> Case:
    case = retrieval_case(1)
    split = RerankingSplit(**retrieval_split(case), candidates=case["candidates"])
    loaded = RetrievalData(split="test", parts={"default": split})
    ours = TASK_TYPES["reranking"].score(
        definition("reranking"), loaded, TableEncoder(case["vectors"])
    )
    return Case(only_entry(ours), mteb_retrieval(case, "cosine"))


def multiple_choice() -> Case:
    case = retrieval_case(2)
    case["qrels"] = {qid: {choices[0]: 1} for qid, choices in case["candidates"].items()}
    split = ChoiceSplit(**retrieval_split(case), candidates=case["candidates"])
    loaded = RetrievalData(split="test", parts={"default": split})
    ours = TASK_TYPES["multiple_choice"].score(
        definition("multiple_choice", "t2t"), loaded, TableEncoder(case["vectors"])
    )
    return Case(only_entry(ours), mteb_retrieval(case, "cosine"))


# --- classification ---------------------------------------------------------------------------


def blobs(labels: Sequence[Any], seed: int, dim: int = 8) -> np.ndarray:
    """One centre per label plus noise."""
    rng = np.random.default_rng(seed)
    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    centres = rng.normal(size=(codes.max() + 1, dim)) * 2
    return (centres[codes] + rng.normal(size=(len(codes), dim))).astype(np.float32)


def probe_subsets(
    train: tuple[np.ndarray, list], test: tuple[np.ndarray, list], samples: list[list[int]]
) -> tuple[ProbeSubsets, TableEncoder]:
    split = ProbeSplit(
        split="test",
        train=labelled("train", train[1]),
        samples=samples,
        test=labelled("test", test[1]),
    )
    vectors = {**table("train", train[0]), **table("test", test[0])}
    return ProbeSubsets(split="test", subsets={"default": split}), TableEncoder(vectors)


def linear_probe() -> Case:
    train_labels, test_labels = [0, 1, 2] * 20, [2, 0, 1] * 8
    vectors = blobs(train_labels + test_labels, 0)
    train, test = (vectors[:60], train_labels), (vectors[60:], test_labels)
    loaded, encoder = probe_subsets(train, test, kshot_samples(train_labels, 8, 3))
    task = definition("linear_probe", "t2c", samples_per_label=8, n_experiments=3)
    ours = TASK_TYPES["linear_probe"].score(task, loaded, encoder)
    return Case(only_entry(ours), mteb_linear_probe(train, test, 8, 3))


def multilabel() -> Case:
    train_sets, test_sets = label_sets(120, 5, 5), label_sets(60, 5, 6)
    vectors = multilabel_vectors(train_sets + test_sets, 12, 2)
    train, test = (vectors[:120], train_sets), (vectors[120:], test_sets)
    loaded, encoder = probe_subsets(train, test, multilabel_kshot_samples(train_sets, 8, 5, 42))
    task = definition("multilabel_classification", "t2c", max_eval_samples=None)
    ours = TASK_TYPES["multilabel_classification"].score(task, loaded, encoder)
    return Case(only_entry(ours), mteb_multilabel(train, test, None))


def zero_shot() -> Case:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 40).tolist()
    label_vectors = rng.normal(size=(10, 8)).astype(np.float32)
    inputs = (label_vectors[labels] + rng.normal(size=(40, 8))).astype(np.float32)
    loaded = ZeroShotSplit(
        split="test",
        items=items("x", 40),
        labels=labels,
        prompts=[f"a photo of a class {i}." for i in range(10)],
    )
    encoder = TableEncoder({**table("prompt-", label_vectors), **table("x", inputs)})
    task = definition("zero_shot_classification", "i2t", label_scoring="similarity")
    ours = TASK_TYPES["zero_shot_classification"].score(task, loaded, encoder)
    return Case(only_entry(ours), mteb_zero_shot("CIFAR10ZeroShot", label_vectors, inputs, labels))


# --- clustering -------------------------------------------------------------------------------


def clustering() -> Case:
    labels = [0, 1, 2, 3] * 15
    vectors = blobs(labels, 5, dim=2)  # overlapping clusters
    loaded = labelled("x", labels)
    ours = TASK_TYPES["clustering"].score(
        definition("clustering", "i2c"), loaded, TableEncoder(table("x", vectors))
    )
    return Case(only_entry(ours), mteb_clustering(vectors, labels, True))


def clustering_fast() -> Case:
    labels = [0, 1, 2, 3] * 20
    vectors = blobs(labels, 6, dim=2)  # overlapping clusters
    rng = random.Random(42)
    assert embedded_rows(len(labels), rng, max_fraction=None) is None
    loaded = ClusteringSplit(
        split="test",
        data=labelled("x", labels),
        rng_state=rng.getstate(),
    )
    task = definition(
        "clustering_fast", "t2c", max_fraction_of_documents_to_embed=None, sample_size=200
    )
    ours = TASK_TYPES["clustering_fast"].score(task, loaded, TableEncoder(table("x", vectors)))
    reference = mteb_clustering_fast(
        vectors, labels, max_fraction_of_documents_to_embed=None, max_documents_per_cluster=200
    )
    return Case(only_entry(ours), reference)


# --- pairs --------------------------------------------------------------------------------


def pairs(seed: int, n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs whose second vector is near the first for positive pairs."""
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(n, 8)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    noise = rng.normal(size=(n, 8)).astype(np.float32)
    second = np.where(labels[:, None] == 1, first + 0.8 * noise, noise).astype(np.float32)
    return first, second, labels


def pair_encoder(first: np.ndarray, second: np.ndarray) -> tuple[list[RawItem], TableEncoder]:
    both = items("a", len(first)) + items("b", len(second))
    return both, TableEncoder({**table("a", first), **table("b", second)})


def pair_classification() -> Case:
    first, second, labels = pairs(7)
    both, encoder = pair_encoder(first, second)
    loaded = LabelledPairs(split="test", items=both, labels=labels.tolist())
    ours = TASK_TYPES["pair_classification"].score(
        definition("pair_classification"), loaded, encoder
    )
    return Case(only_entry(ours), mteb_pair_scores(first, second, labels.tolist(), "cosine"))


def visual_sts() -> Case:
    first, second, _ = pairs(8)
    gold = np.random.default_rng(8).uniform(0, 5, len(first)).round(1).tolist()
    both, encoder = pair_encoder(first, second)
    loaded = PairsSplit(split="test", subsets={"default": Pairs("default", both, gold)})
    ours = TASK_TYPES["visual_sts"].score(definition("visual_sts", "i2i"), loaded, encoder)
    return Case(only_entry(ours), mteb_sts(first, second, gold))


def compositionality() -> Case:
    rng = np.random.default_rng(9)
    n, n_images, n_texts = 30, 2, 2
    images = rng.normal(size=(n, n_images, 8)).astype(np.float32)
    texts = rng.normal(size=(n, n_texts, 8)).astype(np.float32)
    samples = [
        Sample(
            str(s),
            [RawItem.of(f"i{s}-{i}", text="-") for i in range(n_images)],
            [RawItem.of(f"t{s}-{t}", text="-") for t in range(n_texts)],
        )
        for s in range(n)
    ]
    vectors = {f"i{s}-{i}": images[s, i] for s in range(n) for i in range(n_images)}
    vectors |= {f"t{s}-{t}": texts[s, t] for s in range(n) for t in range(n_texts)}
    loaded = SampleSplit(split="test", samples=samples, n_images=n_images, n_texts=n_texts)
    task = definition("compositionality", "i2t", image_columns=["a", "b"], text_columns=["c", "d"])
    ours = TASK_TYPES["compositionality"].score(task, loaded, TableEncoder(vectors))
    return Case(only_entry(ours), mteb_compositionality(images, texts)[0])


CASES: dict[str, Callable[[], Case]] = {
    "retrieval": retrieval,
    "reranking": reranking,
    "multiple_choice": multiple_choice,
    "linear_probe": linear_probe,
    "multilabel_classification": multilabel,
    "zero_shot_classification": zero_shot,
    "clustering": clustering,
    "clustering_fast": clustering_fast,
    "pair_classification": pair_classification,
    "visual_sts": visual_sts,
    "compositionality": compositionality,
}


def differences(ours: Any, theirs: Any, where: str) -> list[tuple[str, float]]:
    """(key, |difference|) for every number of mteb's value, nested lists and dicts too; a
    missing key or a NaN/None on one side only is an infinite difference."""
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [(where, math.inf)]
        return [
            pair
            for key, value in theirs.items()
            for pair in (
                differences(ours[key], value, f"{where}.{key}")
                if key in ours
                else [(f"{where}.{key}", math.inf)]
            )
        ]
    if isinstance(theirs, list | tuple):
        if not isinstance(ours, list | tuple) or len(ours) != len(theirs):
            return [(where, math.inf)]
        return [
            p
            for i, pair in enumerate(zip(ours, theirs, strict=True))
            for p in differences(*pair, f"{where}[{i}]")
        ]
    undefined = [
        value is None or (isinstance(value, float) and math.isnan(value))
        for value in (ours, theirs)
    ]
    if any(undefined):
        return [(where, 0.0 if all(undefined) else math.inf)]
    if isinstance(theirs, str):
        return [(where, 0.0 if ours == theirs else math.inf)]
    return [(where, abs(float(ours) - float(theirs)))]


def test_every_type_has_a_case() -> None:
    assert set(CASES) == set(TASK_TYPES)


@pytest.mark.parametrize("task_type", list(CASES))
def test_entry_holds_every_mteb_metric_with_its_value(task_type: str) -> None:
    """No mteb key is left out for any type (none is impossible for us today)."""
    case = CASES[task_type]()
    missing = sorted(set(case.mteb) - set(case.ours))
    assert not missing, f"{task_type} lacks mteb's {missing}"
    worst = max(differences(case.ours, case.mteb, task_type), key=lambda pair: pair[1])
    assert worst[1] <= TOLERANCE, worst


# --- retrieval's nAUC on the same run dicts ----------------------------------------------------


def random_run(seed: int, levels: int | None = None) -> tuple[dict, dict]:
    """Graded qrels and a run of up to 14 documents per query (some retrieve none); with
    ``levels`` the scores take that many values, so queries tie in confidence."""
    rng = np.random.default_rng(seed)
    qrels, run = {}, {}
    for q in range(int(rng.integers(2, 30))):
        judged = rng.choice(40, int(rng.integers(1, 5)), replace=False)
        qrels[f"q{q}"] = {f"d{d}": int(rng.integers(0, 3)) for d in judged}
        docs = rng.choice(40, int(rng.integers(0, 15)), replace=False)
        scores = (
            rng.integers(0, levels, len(docs)) / levels if levels else rng.normal(size=len(docs))
        )
        run[f"q{q}"] = {f"d{d}": float(s) for d, s in zip(docs, scores, strict=True)}
    return qrels, run


OPTIONS = [{}, {"skip_first_result": True}, {"ignore_identical_ids": True}]


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "skip-first", "ignore-ids"])
@pytest.mark.parametrize("k_values", [(1, 3, 5, 10, 20, 100, 1000), (1, 5, 10)])
def test_retrieval_score_dict_equals_mtebs_with_the_naucs(
    k_values: tuple[int, ...], options: dict[str, bool]
) -> None:
    """Same keys in mteb's order; the nAUCs agree to rounding error."""
    for seed in range(8):
        qrels, run = random_run(seed)
        if options.get("ignore_identical_ids"):
            run["q0"]["q0"] = 9.0  # a document with the query's id, best ranked
        ours = retrieval_scores(qrels, run, k_values, **options).score_dict()
        mteb_options = {"skip_first_result": False, "ignore_identical_ids": False, **options}
        reference = mteb_score_dict(qrels, run, k_values, **mteb_options)
        assert list(ours) == list(reference)
        assert len([key for key in ours if key.startswith("nauc_")]) == 15 * len(k_values)
        assert max(difference for _, difference in differences(ours, reference, "")) < 1e-12


def test_naucs_with_tied_confidences_equal_mtebs_in_a_canonical_order() -> None:
    """Coarse scores tie queries in confidence; ties share their group's mean metric, as in
    mteb. The standard deviation is taken over the scores best first, so it does not depend
    on the order documents were retrieved in (mteb's depends on its search's heap order)."""
    for seed in range(6):
        qrels, run = random_run(seed, levels=4)
        canonical = {q: dict(sorted(docs.items(), key=lambda d: -d[1])) for q, docs in run.items()}
        shuffled = {q: dict(reversed(list(docs.items()))) for q, docs in run.items()}
        ours = retrieval_scores(qrels, run).naucs
        reordered = retrieval_scores(qrels, shuffled).naucs
        assert max(difference for _, difference in differences(reordered, ours, "")) == 0.0
        reference = mteb_score_dict(qrels, canonical, (1, 3, 5, 10, 20, 100, 1000))
        reference = {key: value for key, value in reference.items() if key in ours}
        assert list(reference) == list(ours)
        assert max(difference for _, difference in differences(ours, reference, "")) == 0.0


def test_confidence_scores() -> None:
    assert confidence_scores([0.2, 0.9, 0.5]) == {
        "max": 0.9,
        "std": pytest.approx(np.std([0.2, 0.9, 0.5])),
        "diff1": pytest.approx(0.4),
    }
    assert confidence_scores([0.7]) == {"max": 0.7, "std": 0.0, "diff1": 0.0}
    assert confidence_scores([]) == {"max": 0.0, "std": 0.0, "diff1": 0.0}


def test_nauc_between_flat_and_oracle() -> None:
    metric = np.array([0.0, 0.25, 0.5, 0.75, 1.0] * 4)
    assert nauc(metric, metric) == pytest.approx(1.0)  # confidence ranks like the oracle
    assert nauc(-metric, metric) < 0  # worse than never abstaining
    assert nauc(np.zeros(20), metric) == pytest.approx(0.0)  # one tie group: flat
    assert math.isnan(nauc(np.arange(5.0), np.full(5, 0.5)))  # the oracle is flat too
    naucs = abstention_naucs([[0.9, 0.1], [0.3]], {"ndcg_at_1": [1.0, 0.0]})
    assert list(naucs) == ["nauc_ndcg_at_1_max", "nauc_ndcg_at_1_std", "nauc_ndcg_at_1_diff1"]
    with pytest.raises(ValueError, match="3 per-query values for 2 queries"):
        abstention_naucs([[0.9], [0.3]], {"ndcg_at_1": [1.0, 0.0, 1.0]})
