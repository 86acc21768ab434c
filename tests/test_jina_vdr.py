"""JinaVDR: the benchmark and its subsets against mteb, each layout read as mteb's own loader
reads it, and scored end to end through the CLI with a tiny CLIP."""

from __future__ import annotations

import hashlib
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from harness.app.cli import main
from harness.core.adapter import AdapterMeta, Item
from harness.core.errors import HarnessError
from harness.engine.encoding import BatchEncoder
from harness.tasks.benchmarks import get_benchmark
from harness.tasks.definition import TaskDefinition
from harness.tasks.registry import builtin_tasks, task_type
from harness.tasks.retrieval import Retrieval, RetrievalData, RetrievalProtocol
from tests.catalog_layouts import distinct_layouts, layout_key, layout_params, score_on_fixture
from tests.jina_fixtures import JUDGMENTS, PAGES, jina_subsets, write_mini_jina

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb
    from mteb.similarity_functions import cos_sim, pairwise_cos_sim

QUERY, CORPUS = "query-test-", "corpus-test-"  # mteb's prefixes of JinaVDR's ids


Fixtures = Callable[[TaskDefinition], Path]


@pytest.fixture(scope="module")
def jina_dir(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    """A task's mini dataset (``tests.jina_fixtures``), written once per layout."""
    written: dict[str, Path] = {}

    def fixture(task: TaskDefinition) -> Path:
        key = layout_key(task)
        if key not in written:
            written[key] = write_mini_jina(task, tmp_path_factory.mktemp("jina"))
        return written[key]

    return fixture


def _jina_tasks() -> list[TaskDefinition]:
    return [task for name, task in sorted(builtin_tasks().items()) if name.startswith("JinaVDR")]


def _mteb_subsets(name: str) -> dict[str, list[str]]:
    """mteb's hf_subsets of a task with their languages (``default`` for a single language)."""
    langs = mteb.get_task(name).metadata.eval_langs
    return dict(langs) if isinstance(langs, dict) else {"default": list(langs)}


def test_benchmark_defines_every_task_of_mtebs(capsys: pytest.CaptureFixture[str]) -> None:
    benchmark = get_benchmark("jina-vdr")
    assert benchmark.mteb_name == "JinaVDR"
    assert len(benchmark.tasks) == 43 and benchmark.missing_tasks() == []
    assert main(["benchmarks"]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "jina-vdr" in line]
    assert row.split()[1:4] == ["43", "43", "JinaVDR"]


@pytest.mark.parametrize("task", _jina_tasks(), ids=lambda task: task.name)
def test_subsets_and_prompt_are_mtebs(task: TaskDefinition) -> None:
    """Each entry's scored subsets (a single-language entry: ``default``) are mteb's
    hf_subsets, in order, with their languages; the query prompt is mteb's."""
    protocol = task_type(task).protocol(task)
    assert isinstance(protocol, RetrievalProtocol)
    subsets = protocol.subset_languages or {"default": task.languages}
    assert subsets == _mteb_subsets(task.name)
    assert list(subsets) == list(_mteb_subsets(task.name))
    reference: Any = mteb.get_task(task.name)
    assert task.prompts.query == reference.metadata.prompt["query"]


def test_every_entry_has_one_of_four_layouts() -> None:
    """One single-language layout, and the multilingual ones by their language folders."""
    groups = distinct_layouts(_jina_tasks())
    assert sorted(len(group) for group in groups.values()) == [1, 1, 2, 39]


def _mteb_loaded(name: str, fixture: Path) -> Any:
    """mteb's task of that name, its dataset pointed at ``fixture`` (on this instance: the
    metadata is shared by the class), loaded by its own ``load_data``."""
    task: Any = mteb.get_task(name)
    local = {"path": str(fixture), "revision": None}
    task.metadata = task.metadata.model_copy(update={"dataset": local})
    task.load_data()
    assert type(task).metadata.dataset["path"] != str(fixture)
    return task


def _subset_views(task: Any) -> dict[str, tuple[Any, Any, Any]]:
    """mteb's (queries, corpus, qrels) of split test, by hf_subset."""
    if isinstance(task.metadata.eval_langs, dict):
        return {
            subset: (task.queries[subset]["test"], task.corpus[subset]["test"], docs["test"])
            for subset, docs in task.relevant_docs.items()
        }
    return {"default": (task.queries["test"], task.corpus["test"], task.relevant_docs["test"])}


@pytest.mark.parametrize("task", layout_params(_jina_tasks()))
def test_layout_is_read_as_mteb_reads_it(task: TaskDefinition, jina_dir: Fixtures) -> None:
    """Per subset: the same query ids and texts, corpus ids and qrels as mteb's loader (whose
    ids carry the prefixes ``query-test-`` / ``corpus-test-``), every page an image."""
    fixture = jina_dir(task)
    local = task.model_copy(deep=True)
    local.dataset.path, local.dataset.revision = str(fixture), None
    ours = Retrieval().load(local, "test")
    assert isinstance(ours, RetrievalData)
    reference = _subset_views(_mteb_loaded(task.name, fixture))
    assert list(ours.parts) == list(reference) == (jina_subsets(task) or ["default"])
    for subset, (queries, corpus, qrels) in reference.items():
        part = ours.parts[subset]
        assert [(QUERY + q.id, q.parts["text"]) for q in part.queries] == [
            (row["id"], row["text"]) for row in queries
        ]
        assert [CORPUS + d.id for d in part.corpus] == [row["id"] for row in corpus]
        assert all(set(d.parts) == {"image"} for d in part.corpus)
        assert {
            QUERY + q: {CORPUS + d: s for d, s in docs.items()} for q, docs in part.qrels.items()
        } == qrels
        assert len(part.queries) == len(JUDGMENTS) and len(part.corpus) == len(PAGES)
        assert all(q.parts["text"].endswith(f" ({subset})") for q in part.queries)


@pytest.mark.parametrize("task", layout_params(_jina_tasks()))
def test_layout_is_scored_end_to_end(
    task: TaskDefinition, tiny_clip_dir: Path, jina_dir: Fixtures, tmp_path: Path
) -> None:
    """``harness run`` on the layout: one entry per mteb hf_subset, with its languages, scored
    by nDCG@5, every language's queries and pages encoded."""
    result = score_on_fixture(task, lambda task, _: jina_dir(task), tiny_clip_dir, tmp_path)
    entries = result["scores"]["test"]
    assert {e["hf_subset"]: e["languages"] for e in entries} == _mteb_subsets(task.name)
    assert [e["hf_subset"] for e in entries] == list(_mteb_subsets(task.name))
    assert all(e["main_score"] == e["ndcg_at_5"] for e in entries)
    per_language = len(JUDGMENTS) + len(PAGES)
    assert result["harness"]["encoding"]["items_encoded"] == per_language * len(entries)


# --- scores against mteb's evaluator ------------------------------------------------------------

DIM = 8


def _content_vector(key: str) -> np.ndarray:
    """A fixed random vector per content: a query's text, a page's pixels."""
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:12], 16)
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _image_key(image: Image.Image) -> str:
    return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


class ContentAdapter:
    """Our side: a vector per content (a page by its decoded pixels)."""

    meta = AdapterMeta("content", "1", "test", "cosine", ("text", "image"), "float32")

    def encode(self, items: Sequence[Item], **_: Any) -> np.ndarray:
        keys = [item["text"] if "text" in item else _image_key(item["image"]) for item in items]
        return np.stack([_content_vector(key) for key in keys])


class MtebContentModel:
    """mteb's side: the same vectors, from the batches mteb's dataloaders build."""

    def encode(self, inputs: Any, **_: Any) -> np.ndarray:
        keys: list[str] = []
        for batch in inputs:
            keys += batch["text"] if "text" in batch else [_image_key(i) for i in batch["image"]]
        return np.stack([_content_vector(key) for key in keys])

    def similarity(self, a: Any, b: Any) -> Any:
        return cos_sim(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return pairwise_cos_sim(a, b)

    @property
    def mteb_model_meta(self) -> None:
        return None


@pytest.mark.parametrize("task", layout_params(_jina_tasks()))
def test_scores_equal_mtebs_evaluator(task: TaskDefinition, jina_dir: Fixtures) -> None:
    """mteb's task end to end (its loader, search and scoring, per hf_subset) and ours, on the
    same vectors: every subset, every metric equal."""
    fixture = jina_dir(task)
    reference = _mteb_loaded(task.name, fixture)
    encode_kwargs = {"batch_size": 4, "show_progress_bar": False}
    expected = reference.evaluate(MtebContentModel(), "test", encode_kwargs=encode_kwargs)
    local = task.model_copy(deep=True)
    local.dataset.path, local.dataset.revision = str(fixture), None
    encoder = BatchEncoder(ContentAdapter(), show_progress=False)
    ours = {e["hf_subset"]: e for e in Retrieval().evaluate(local, encoder, split="test").subsets}
    assert list(ours) == list(expected)
    for subset, scores in expected.items():
        assert 0.0 < scores["ndcg_at_5"] < 1.0
        keys = [k for k, v in scores.items() if isinstance(v, float) and k in ours[subset]]
        assert len(keys) > 40
        for key in keys:  # an abstention nAUC is NaN when every query ties
            same = np.isclose(ours[subset][key], scores[key], rtol=0, atol=1e-6, equal_nan=True)
            assert same, (subset, key)


def test_a_split_or_folder_the_dataset_lacks_is_a_clear_error(jina_dir: Fixtures) -> None:
    [task] = [t for t in _jina_tasks() if t.name == "JinaVDRGitHubReadmeRetrieval"]
    local = task.model_copy(deep=True)
    local.dataset.path, local.dataset.revision = str(jina_dir(task)), None
    with pytest.raises(HarnessError, match=r"no split 'dev' in config 'ar/qrels/' .*it has test"):
        Retrieval().load(local, "dev")
    local.protocol = {"dir_subsets": {"xx": ["eng-Latn"]}}
    with pytest.raises(HarnessError, match=r"JinaVDRGitHubReadmeRetrieval: cannot load .*'xx/"):
        Retrieval().load(local, "test")


def test_dir_subsets_are_a_layout_of_their_own() -> None:
    with pytest.raises(ValidationError, match="dir_subsets"):
        RetrievalProtocol(dir_subsets={"ar": ["ara-Arab"]}, split_subsets={"ar": ["ara-Arab"]})


def test_a_local_copy_without_its_card_reads_the_same(jina_dir: Fixtures, tmp_path: Path) -> None:
    """The folders read as the folders of a card-less local dataset too."""
    [task] = [t for t in _jina_tasks() if t.name == "JinaVDRTweetStockSyntheticsRetrieval"]
    copy = shutil.copytree(jina_dir(task), tmp_path / "copy")
    (copy / "README.md").unlink()
    loaded = {}
    for path in (jina_dir(task), copy):
        local = task.model_copy(deep=True)
        local.dataset.path, local.dataset.revision = str(path), None
        data = Retrieval().load(local, "test")
        assert isinstance(data, RetrievalData)
        loaded[path] = {
            subset: ([q.id for q in part.queries], [d.id for d in part.corpus], part.qrels)
            for subset, part in data.parts.items()
        }
    assert loaded[copy] == loaded[jina_dir(task)] and len(loaded[copy]) == 10
