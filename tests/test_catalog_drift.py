"""The catalog against mteb's own metadata (shipped inside the mteb package, read offline).

Every catalog entry that mteb knows must name the same dataset path and revision, eval splits,
main score, category, eval languages (but for aggregate tasks), type family and privacy (mteb's
``is_public``) as mteb's task of the same name; every benchmark that mirrors one of mteb's must
list the same tasks.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import pytest

from harness.core.modalities import registered
from harness.tasks.benchmarks import builtin_benchmarks
from harness.tasks.registry import task_type
from tests.catalog_layouts import catalog_tasks

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb

# Our task type -> the mteb task types it reproduces.
MTEB_TYPES = {
    "retrieval": {"Any2AnyRetrieval", "Any2AnyMultilingualRetrieval", "DocumentUnderstanding"},
    "linear_probe": {"ImageClassification", "AudioClassification", "VideoClassification"},
    "multilabel_classification": {
        "ImageClassification",
        "ImageMultilabelClassification",
        "AudioMultilabelClassification",
    },
    "zero_shot_classification": {
        "ZeroShotClassification",
        "AudioZeroshotClassification",
        "VideoZeroshotClassification",
    },
    "clustering": {"ImageClustering"},
    "clustering_fast": {"AudioClustering", "VideoClustering"},
    "pair_classification": {"AudioPairClassification", "VideoPairClassification"},
    "reranking": {"AudioReranking"},
    "compositionality": {"Compositionality"},
    "multiple_choice": {"VisionCentricQA", "VideoCentricQA"},
    "visual_sts": {"VisualSTS(eng)", "VisualSTS(multi)"},
}
# Entries with no mteb counterpart, and why.
NOT_IN_MTEB = {"SeaDoc": "LCO-Embedding's SeaDoc benchmark is not part of mteb"}


@cache
def mteb_task(name: str) -> Any | None:
    """mteb's task object of that name, or None when mteb has none."""
    try:
        return mteb.get_task(name)
    except (KeyError, ValueError):
        return None


def reference_dataset(task: Any) -> dict[str, str]:
    """The dataset mteb reads: an aggregate task's single underlying task's dataset."""
    if task.is_aggregate:
        datasets = {
            (t.metadata.dataset["path"], t.metadata.dataset["revision"]) for t in task.tasks
        }
        assert len(datasets) == 1, f"{task.metadata.name} aggregates several datasets"
        [(path, revision)] = datasets
        return {"path": path, "revision": revision}
    return task.metadata.dataset


CATALOG = catalog_tasks() + catalog_tasks(audio=True) + catalog_tasks(video=True)


def test_catalog_is_not_empty() -> None:
    assert len(CATALOG) >= 12


@pytest.mark.parametrize("entry", CATALOG, ids=lambda entry: entry.name)
def test_entry_matches_mteb_metadata(entry: Any) -> None:
    reference = mteb_task(entry.name)
    if reference is None:
        assert entry.name in NOT_IN_MTEB, f"{entry.name} is not an mteb task"
        return
    metadata = reference.metadata
    dataset = reference_dataset(reference)
    assert (entry.dataset.path, entry.dataset.revision) == (dataset["path"], dataset["revision"])
    assert entry.eval_splits == list(metadata.eval_splits)
    assert task_type(entry).main_score(entry) == metadata.main_score
    assert metadata.type in MTEB_TYPES[entry.type]
    assert entry.category == expected_category(entry, metadata)
    assert entry.dataset.private == (not metadata.is_public)
    if not reference.is_aggregate:
        assert entry.languages == mteb_languages(metadata)
        sizes = metadata.n_samples or {}
        assert entry.n_samples == {split: sizes[split] for split in entry.eval_splits}


def mteb_languages(metadata: Any) -> list[str]:
    """mteb's eval languages, in order, each once (a multilingual task's over its subsets)."""
    langs = metadata.eval_langs
    groups = langs.values() if isinstance(langs, dict) else [langs]
    return list(dict.fromkeys(code for group in groups for code in group))


def expected_category(entry: Any, metadata: Any) -> str:
    """mteb's category in our letters: an entry scored against class labels (``c``) keeps
    mteb's query side (mteb files some under i2t, a2a or a2t); a query letter of a modality the
    task does not declare is dropped (mteb files UCF101VideoZeroShotClassification, which reads
    its video column alone, under va2t)."""
    query, _, document = metadata.category.partition("2")
    declared = {each.letter for each in registered() if each.name in metadata.modalities}
    query = "".join(letter for letter in query if letter in declared)
    return f"{query}2c" if entry.sides.labels else f"{query}2{document}"


@pytest.mark.parametrize(
    "benchmark",
    [b for b in builtin_benchmarks().values() if b.mteb_name],
    ids=lambda benchmark: benchmark.name,
)
def test_benchmark_lists_mtebs_tasks(benchmark: Any) -> None:
    reference = mteb.get_benchmark(benchmark.mteb_name)
    assert list(benchmark.tasks) == [task.metadata.name for task in reference.tasks]


@pytest.mark.parametrize(
    "change",
    [
        lambda entry: {"dataset": entry.dataset.model_copy(update={"revision": "0" * 40})},
        lambda entry: {"languages": [*entry.languages, "xxx-Latn"]},
        lambda entry: {"category": "t2t" if entry.category != "t2t" else "i2i"},
        lambda entry: {"dataset": entry.dataset.model_copy(update={"private": True})},
    ],
    ids=["revision", "languages", "category", "private"],
)
def test_drift_check_catches_a_change(change: Any) -> None:
    """The comparison itself can fail: an entry with another revision, languages, category or
    privacy differs (for an audio and a video entry too)."""
    for catalog in (catalog_tasks(), catalog_tasks(audio=True), catalog_tasks(video=True)):
        entry = next(task for task in catalog if mteb_task(task.name) is not None)
        with pytest.raises(AssertionError):
            test_entry_matches_mteb_metadata(entry.model_copy(update=change(entry)))
