"""ViDoRe: the definitions against mteb's task metadata, the hub layout read as mteb reads it, and
a mini ViDoRe run end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

import mteb
import pytest
from mteb.tasks.retrieval.eng.vidore_bench_retrieval import _load_data as mteb_load_vidore

from harness.tasks.registry import builtin_tasks
from harness.tasks.retrieval import Retrieval, RetrievalProtocol
from tests.dataset_fixtures import read_result_json, run_cli
from tests.document_fixtures import VIDORE_PAGES, write_mini_vidore

MIEB_LITE_VIDORE = (
    "VidoreDocVQARetrieval",
    "VidoreInfoVQARetrieval",
    "VidoreTabfquadRetrieval",
    "VidoreTatdqaRetrieval",
    "VidoreShiftProjectRetrieval",
    "VidoreSyntheticDocQAAIRetrieval",
)


@pytest.fixture(scope="module")
def vidore_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mini ViDoRe v1 dataset in the hub layout, integer ids included."""
    return write_mini_vidore(tmp_path_factory.mktemp("vidore"))


def _vidore_tasks() -> dict[str, object]:
    """ViDoRe v1 and v2 (v3 and v3.1: tests/test_vidore_v3.py)."""
    return {
        name: task
        for name, task in builtin_tasks().items()
        if task.source_file is not None and task.source_file.name == "vidore.yaml"
    }


def test_mieb_lite_vidore_tasks_are_defined() -> None:
    lite = {t.metadata.name for t in mteb.get_benchmark("MIEB(lite)").tasks}
    assert set(MIEB_LITE_VIDORE) <= lite
    assert set(MIEB_LITE_VIDORE) <= set(_vidore_tasks())


@pytest.mark.parametrize("name", sorted(_vidore_tasks()))
def test_definition_matches_mteb_metadata(name: str) -> None:
    task = builtin_tasks()[name]
    metadata = mteb.get_task(name).metadata
    assert task.dataset.path == metadata.dataset["path"]
    assert task.dataset.revision == metadata.dataset["revision"]
    assert task.main_score == metadata.main_score == "ndcg_at_5"
    assert task.category == metadata.category
    assert task.eval_splits == metadata.eval_splits
    languages = metadata.eval_langs
    if isinstance(languages, dict):  # a multilingual task: its subsets' languages, in order
        languages = list(dict.fromkeys(code for codes in languages.values() for code in codes))
    assert task.languages == languages
    assert task.prompts.query == metadata.prompt["query"]
    assert task.prompts.document is None


def test_layout_is_read_as_mteb_reads_it(vidore_dir: Path) -> None:
    task = builtin_tasks()["VidoreDocVQARetrieval"].model_copy(deep=True)
    task.dataset.path, task.dataset.revision = str(vidore_dir), None
    ours = Retrieval()._load_split(task, RetrievalProtocol(), "test", None)
    corpus, queries, qrels = mteb_load_vidore(str(vidore_dir), ["test"])
    prefix = len("query-test-"), len("corpus-test-")
    assert [(q.id, q.parts["text"]) for q in ours.queries] == [
        (row["id"][prefix[0] :], row["text"]) for row in queries["test"]
    ]
    assert [d.id for d in ours.corpus] == [row["id"][prefix[1] :] for row in corpus["test"]]
    assert all(set(d.parts) == {"image"} for d in ours.corpus)
    assert ours.qrels == {
        qid[prefix[0] :]: {doc[prefix[1] :]: score for doc, score in docs.items()}
        for qid, docs in qrels["test"].items()
    }


def test_mini_vidore_runs_end_to_end(tiny_clip_dir: Path, vidore_dir: Path, tmp_path: Path) -> None:
    name = "VidoreDocVQARetrieval"
    assert run_cli(tiny_clip_dir, name, tmp_path, "--data-dir", f"{name}={vidore_dir}") == 0
    result = read_result_json(tmp_path, name)
    [entry] = result["scores"]["test"]
    assert entry["main_score"] == entry["ndcg_at_5"]
    assert entry["hf_subset"] == "default" and entry["languages"] == ["eng-Latn"]
    assert result["harness"]["encoding"]["items_encoded"] == 2 * len(VIDORE_PAGES)
    assert result["harness"]["task"]["prompts"]["query"].startswith("Find a screenshot")
