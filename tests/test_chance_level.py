"""Chance levels: exact closed forms checked by enumeration and simulation, recorded by runs.

Each closed form of ``harness.tasks.chance`` is checked against the harness's own scorers: by
enumerating every ranking where that is small, by simulating random guesses otherwise, and
through a task type's ``score`` with random vectors. The demo runs check what a result file
records (and where it records nothing), and that the field is descriptive: it changes no run
identity, and files with or without it are reused and valid.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score

from harness.app.runner import RunSettings, run
from harness.core.adapter import AdapterMeta
from harness.core.encoder import Encoded
from harness.core.items import RawItem
from harness.engine.identity import run_identity
from harness.engine.records import TaskRecord
from harness.engine.validation import protocol_record, validate
from harness.scoring.compositionality import pair_classification_scores
from harness.scoring.retrieval import retrieval_scores
from harness.tasks.base import SplitOutcome
from harness.tasks.chance import (
    CORRELATION_CHANCE,
    expected_average_precision,
    matching_chance,
    random_ranking,
    uniform_guess,
)
from harness.tasks.definition import TaskDefinition
from harness.tasks.pair_classification import LabelledPairs
from harness.tasks.registry import builtin_tasks, task_type

# Demo tasks run with the tiny CLIP: two with a chance level, one without (V-measure).
RUN_TASKS = ("DemoShapesZeroShot", "DemoShapesWinoground", "DemoShapesClustering")


# ---------------------------------------------------------------- the closed forms


@pytest.mark.parametrize(
    ("n_images", "n_texts", "expected"),
    [
        (2, 2, {"text_acc": 1 / 4, "image_acc": 1 / 4, "accuracy": 1 / 6}),  # Winoground
        (3, 3, {"text_acc": 1 / 27, "image_acc": 1 / 27, "accuracy": 1 / 60}),
        (1, 5, {"text_acc": 1 / 5, "image_acc": 0.0, "accuracy": 0.0}),  # ARO, SugarCrepe
        (4, 1, {"text_acc": 0.0, "image_acc": 1 / 4, "accuracy": 0.0}),  # ImageCoDe
    ],
)
def test_matching_chance_is_what_random_similarities_score(
    n_images: int, n_texts: int, expected: dict[str, float]
) -> None:
    for metric, value in expected.items():
        assert matching_chance(metric, n_images, n_texts) == pytest.approx(value, rel=1e-12)
    # Simulation through the scorer itself: many samples of independent uniform similarities.
    samples = 400_000
    rng = np.random.default_rng(7)
    similarities = rng.random((samples, n_images, n_texts), dtype=np.float32)
    scored = pair_classification_scores(similarities)
    for metric, value in expected.items():
        spread = 4 * np.sqrt(value * (1 - value) / samples) + 1e-6
        assert abs(scored[metric] - value) < spread, metric


def test_expected_average_precision_is_the_mean_over_every_ranking() -> None:
    for n_total, n_positive in [(1, 1), (2, 1), (5, 2), (7, 3), (6, 6)]:
        values = []
        for positives in itertools.combinations(range(n_total), n_positive):
            labels = np.isin(np.arange(n_total), positives).astype(int)
            scores = np.arange(n_total, 0, -1, dtype=float)  # rank 0 first
            values.append(average_precision_score(labels, scores))
        exact = expected_average_precision(n_positive, n_total)
        assert exact == pytest.approx(np.mean(values), abs=1e-12), (n_total, n_positive)
    # Not the positive rate: a ranking of 4 items with 1 positive averages 25/48, not 1/4.
    assert expected_average_precision(1, 4) == pytest.approx(25 / 48)
    with pytest.raises(ValueError, match="positives"):
        expected_average_precision(0, 3)


@pytest.mark.parametrize(
    "qrels",
    [
        # graded judgments, one relevant judgment outside the pool, one judged irrelevant
        {"a": 1, "b": 0, "c": 2, "elsewhere": 1},
        {"d": 1},
        {"a": 3, "b": 1, "c": 2, "d": 1, "e": 1},
    ],
)
def test_random_ranking_is_the_mean_over_every_ranking_of_the_pool(qrels: dict[str, int]) -> None:
    pool, k_values = ["a", "b", "c", "d", "e"], (1, 2, 3, 5, 10)
    per_ranking = [
        retrieval_scores(
            {"q": qrels},
            {"q": {doc: float(len(pool) - i) for i, doc in enumerate(order)}},
            k_values,
        ).per_query["q"]  # unrounded
        for order in itertools.permutations(pool)
    ]
    in_pool = [relevance for doc, relevance in qrels.items() if doc in pool]
    names = ("ndcg", "map", "recall", "precision", "hit_rate")
    metrics = [f"{name}_at_{k}" for name in names for k in k_values] + ["accuracy"]
    for metric in metrics:
        exact = random_ranking(metric, len(pool), in_pool, list(qrels.values()))
        mean = np.mean([values[metric] for values in per_ranking])
        assert exact == pytest.approx(mean, abs=1e-12), metric
    assert random_ranking("mrr_at_10", len(pool), in_pool, list(qrels.values())) is None


def test_random_ranking_of_an_empty_pool_or_an_unknown_metric() -> None:
    assert random_ranking("ndcg_at_10", 0, [], [1]) == 0.0
    assert random_ranking("accuracy", 3, [0, 0], [0, 0, 1]) == 0.0
    assert random_ranking("nauc_ndcg_at_10_max", 3, [1], [1]) is None
    assert random_ranking("ndcg_at_10", 3, [1], [1, -1]) is None


def test_uniform_guess_ignores_how_often_each_class_occurs() -> None:
    labels = np.array([0] * 70 + [1] * 20 + [2] * 10)
    rng = np.random.default_rng(3)
    guesses = rng.integers(0, 3, size=(4000, len(labels)))
    simulated = (guesses == labels).mean()
    assert uniform_guess(labels.tolist()) == pytest.approx(1 / 3)
    assert abs(simulated - 1 / 3) < 4 * np.sqrt((2 / 9) / guesses.size)
    with pytest.raises(ValueError, match="no classes"):
        uniform_guess([])


def test_correlations_average_zero_over_every_order_even_with_tied_gold() -> None:
    gold = [1.0, 2.0, 2.0, 3.5, 5.0]
    for correlation in (stats.spearmanr, stats.pearsonr):
        values = [correlation(order, gold)[0] for order in itertools.permutations(range(len(gold)))]
        assert np.mean(values) == pytest.approx(CORRELATION_CHANCE, abs=1e-12)


def test_a_split_takes_its_default_subset_else_the_mean_of_its_subsets() -> None:
    def outcome(subsets: Sequence[str], chance: dict[str, float]) -> SplitOutcome:
        return SplitOutcome([{"hf_subset": name} for name in subsets], chance=chance)

    assert outcome(["default", "en"], {"default": 0.5, "en": 0.1}).split_chance() == 0.5
    assert outcome(["en", "fr"], {"en": 0.5, "fr": 0.25}).split_chance() == 0.375
    assert outcome(["en", "fr"], {"en": 0.5}).split_chance() is None
    assert outcome(["default"], {}).split_chance() is None


# ---------------------------------------------------------------- random vectors, many seeds


class RandomEncoder:
    """An encoder whose every vector is an independent Gaussian draw (a random embedding);
    with ``skip_every`` k, every k-th item of a call is skipped as bad input."""

    device = "cpu"

    def __init__(self, seed: int, skip_every: int | None = None) -> None:
        self.rng, self.skip_every = np.random.default_rng(seed), skip_every
        meta = AdapterMeta("random", "0", "random", "cosine", ("image", "text", "audio"), "float32")
        self.adapter: Any = SimpleNamespace(meta=meta)

    def encode(self, items: Sequence[RawItem], **_: Any) -> Encoded:
        vectors = self.rng.normal(size=(len(items), 16)).astype(np.float32)
        kept = np.ones(len(items), dtype=bool)
        if self.skip_every:
            kept[self.skip_every - 1 :: self.skip_every] = False
        skipped = tuple(item.id for item, keep in zip(items, kept, strict=True) if not keep)
        return Encoded(vectors, kept, skipped)


def loaded(name: str, limit: int | None = None) -> tuple[Any, Any, Any]:
    """A demo task, its type, and its test split loaded (its first ``limit`` rows)."""
    task = builtin_tasks()[name]
    kind = task_type(task)
    return task, kind, kind.load(task, "test", limit)


def test_each_type_reports_the_chance_level_of_the_data_it_scored() -> None:
    _, _, zero_shot = loaded("DemoShapesZeroShot")
    _, _, probe = loaded("DemoShapesClassification")
    _, _, choice = loaded("DemoShapesRelationChoice")
    candidates = choice.parts["default"].candidates
    _, _, retrieval = loaded("DemoShapesT2IRetrieval")
    corpus = {doc.id for doc in retrieval.parts["default"].corpus}
    ranked = [  # every query ranks the whole corpus
        random_ranking(
            "ndcg_at_10", len(corpus), [r for d, r in q.items() if d in corpus], [*q.values()]
        )
        for q in retrieval.parts["default"].qrels.values()
    ]
    expected = {
        "DemoShapesZeroShot": 1 / len(zero_shot.prompts),  # one template: one prompt a label
        "DemoShapesClassification": 1 / len(set(probe.subsets["default"].test.labels)),
        "DemoShapesWinoground": 1 / 6,
        "DemoShapesAttributeSwap": matching_chance("text_acc", 1, 5),
        "DemoShapesImageCoDe": matching_chance("image_acc", 4, 1),
        "DemoShapesRelationChoice": float(np.mean([1 / len(set(c)) for c in candidates.values()])),
        "DemoShapesVisualSTS": CORRELATION_CHANCE,
        "DemoShapesT2IRetrieval": float(np.mean(np.array(ranked, dtype=float))),
    }
    for name, level in expected.items():
        task, kind, split = loaded(name)
        assert kind.score(task, split, RandomEncoder(0)).split_chance() == pytest.approx(
            level, rel=1e-12
        ), name
    task, kind, split = loaded("DemoShapesT2IRetrieval")
    mrr = task.model_copy(update={"main_score": "mrr_at_10"})  # no closed form here
    assert kind.score(mrr, split, RandomEncoder(0)).split_chance() is None


@pytest.mark.parametrize(
    ("name", "runs", "skip_every", "limit"),
    [
        ("DemoShapesColourChoice", 30, None, None),
        ("DemoShapesColourChoice", 60, 2, None),
        ("DemoShapesZeroShot", 100, None, None),
        ("DemoShapesT2IRetrieval", 80, None, 60),
    ],
)
def test_random_embeddings_score_the_chance_level_on_average(
    name: str, runs: int, skip_every: int | None, limit: int | None
) -> None:
    task, kind, split = loaded(name, limit)
    outcomes = [kind.score(task, split, RandomEncoder(seed, skip_every)) for seed in range(runs)]
    chance = {outcome.split_chance() for outcome in outcomes}
    assert len(chance) == 1  # the scored data decides it, not the vectors
    level = chance.pop()
    assert level is not None
    if skip_every:  # the kept candidates and queries decide it (0.38 here, 1/3 unskipped)
        unskipped = kind.score(task, split, RandomEncoder(0)).split_chance()
        assert unskipped is not None and abs(level - unskipped) > 0.04
    scores = np.array([outcome.subsets[0]["main_score"] for outcome in outcomes])
    assert abs(scores.mean() - level) < 4 * scores.std(ddof=1) / np.sqrt(runs) + 1e-5


def test_one_scores_average_precision_averages_its_chance_level_and_max_ap_has_none() -> None:
    labels = [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
    rows = range(len(labels))
    items = [RawItem.of(f"{side}{row}", text=f"{side}{row}") for side in "ab" for row in rows]
    split = LabelledPairs(split="test", items=items, labels=labels)
    task = TaskDefinition.model_validate(
        {
            "name": "Pairs",
            "type": "pair_classification",
            "category": "t2t",
            "dataset": {"path": "x"},
            "main_score": "cosine_ap",
        }
    )
    kind = task_type(task)
    outcomes = [kind.score(task, split, RandomEncoder(seed)) for seed in range(400)]
    level = expected_average_precision(3, 12)
    assert {outcome.split_chance() for outcome in outcomes} == {level}
    scores = np.array([outcome.subsets[0]["main_score"] for outcome in outcomes])
    assert abs(scores.mean() - level) < 4 * scores.std(ddof=1) / np.sqrt(len(scores))
    default = task.model_copy(update={"main_score": None})  # max_ap, the best of five
    assert kind.score(default, split, RandomEncoder(0)).split_chance() is None


# ---------------------------------------------------------------- recorded by runs


@pytest.fixture(scope="module")
def demo_results(tiny_clip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the tiny CLIP on demo tasks with and without a chance level; its folder."""
    root = tmp_path_factory.mktemp("chance")
    settings = RunSettings(
        output=root / "results", cache_dir=root / "cache", num_workers=0, show_progress=False
    )
    report = run(str(tiny_clip_dir), list(RUN_TASKS), settings)
    assert not report.failed, report.summary()
    return report.model_folder


def recorded(folder: Path, name: str) -> dict[str, Any]:
    return json.loads((folder / f"{name}.json").read_text())["harness"]["task"]


def test_a_result_records_the_chance_level_only_where_defined(demo_results: Path) -> None:
    assert recorded(demo_results, "DemoShapesZeroShot")["chance_level"] == {"test": 0.1}
    assert recorded(demo_results, "DemoShapesWinoground")["chance_level"] == pytest.approx(
        {"test": 1 / 6}, rel=1e-12
    )
    assert "chance_level" not in recorded(demo_results, "DemoShapesClustering")


def test_the_chance_level_changes_no_identity_and_no_protocol(demo_results: Path) -> None:
    task = recorded(demo_results, "DemoShapesWinoground")
    bare = {key: value for key, value in task.items() if key != "chance_level"}
    arguments: dict[str, Any] = {
        "dataset_revision": "r",
        "local_dataset": True,
        "model": {"fingerprint": "f" * 32, "similarity": "cosine"},
        "limit": None,
        "skip_bad_inputs": False,
    }
    assert run_identity(task=task, **arguments) == run_identity(task=bare, **arguments)
    assert protocol_record(TaskRecord.model_validate(task)) == protocol_record(
        TaskRecord.model_validate(bare)
    )
    assert "chance_level" not in TaskRecord.model_validate(bare).model_dump(mode="json")


def test_files_with_and_without_chance_levels_are_valid_and_reused(
    demo_results: Path, tiny_clip_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "results"
    folder = root / demo_results.relative_to(demo_results.parents[1])
    shutil.copytree(demo_results, folder)
    older = folder / "DemoShapesWinoground.json"  # as written before chance levels existed
    payload = json.loads(older.read_text())
    del payload["harness"]["task"]["chance_level"]
    older.write_text(json.dumps(payload))
    assert validate(root).problems == []
    settings = RunSettings(output=root, cache_dir=None, num_workers=0, show_progress=False)
    again = run(str(tiny_clip_dir), list(RUN_TASKS), settings)
    assert {outcome.status for outcome in again.outcomes} == {"exists"}
    assert json.loads(older.read_text()) == payload
