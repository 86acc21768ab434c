"""ViDoRe v3, ViDoRe v3.1 and KoViDoRe v2: the entries against mteb's metadata, each hub layout
read as mteb's own task reads it, scored as mteb scores it on identical embeddings, and run end
to end through ``harness run``."""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from harness.core.adapter import AdapterMeta
from harness.core.encoder import Encoded
from harness.core.errors import HarnessError
from harness.core.items import RawItem
from harness.tasks.benchmarks import builtin_benchmarks
from harness.tasks.definition import TaskDefinition
from harness.tasks.registry import builtin_tasks
from harness.tasks.retrieval import Retrieval, RetrievalProtocol
from tests.catalog_layouts import distinct_layouts, layout_key
from tests.dataset_fixtures import read_result_json, result_files, run_cli
from tests.test_metric_parity import differences
from tests.vdr_fixtures import (
    MARKDOWN,
    VIDORE3_LANGUAGES,
    mteb_task_on,
    on_folder,
    write_kovidore2,
    write_vidore3,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb
    from mteb._create_dataloaders import _corpus_to_dict
    from mteb.similarity_functions import cos_sim
    from mteb.timing import TimingStack
    from mteb.types import PromptType

BENCHMARKS = {"vidore-v3": 10, "vidore-v3.1": 10, "kovidore-v2": 4}
ENTRIES = sorted(name for bench in BENCHMARKS for name in builtin_benchmarks()[bench].tasks)
# One entry per distinct layout, with the fixture that holds it.
LAYOUTS: dict[str, Callable[[Path], Path]] = {
    "Vidore3FinanceEnRetrieval": write_vidore3,
    "Vidore3FinanceEnRetrieval.v2": lambda root: write_vidore3(root, markdown=True),
    "KoVidore2HrRetrieval": write_kovidore2,
}
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each layout's mini dataset, by the name of the entry that stands for it."""
    root = tmp_path_factory.mktemp("vdr")
    return {name: write(root / name) for name, write in LAYOUTS.items()}


def _entry(name: str) -> TaskDefinition:
    return builtin_tasks()[name]


def test_benchmarks_list_every_task_defined() -> None:
    for name, count in BENCHMARKS.items():
        benchmark = builtin_benchmarks()[name]
        assert benchmark.mteb_name is not None
        assert len(benchmark.tasks) == count and not benchmark.missing_tasks()


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_scores_mtebs_subsets_with_its_prompt(name: str) -> None:
    """The subsets, prompt, privacy and page text are mteb's (the drift test checks the rest)."""
    entry, metadata = _entry(name), mteb.get_task(name).metadata
    protocol = Retrieval().protocol(entry)
    assert isinstance(protocol, RetrievalProtocol)
    if isinstance(metadata.eval_langs, dict):
        assert protocol.config_subsets == metadata.eval_langs
    else:
        assert not protocol.subset_languages and entry.languages == metadata.eval_langs
    assert entry.prompts.query == metadata.prompt["query"] and entry.prompts.document is None
    assert entry.dataset.private == (not metadata.is_public)
    assert entry.dataset.private == entry.dataset.path.startswith("mteb-private/")
    assert protocol.keep_blank_text == (entry.category == "t2it")


def test_each_layout_has_its_fixture() -> None:
    """The entries fall into three layouts, and each fixture stands for one of them."""
    groups = distinct_layouts(_entry(name) for name in ENTRIES)
    assert sorted(map(layout_key, map(_entry, LAYOUTS))) == sorted(groups)
    assert sorted(len(group) for group in groups.values()) == [4, 10, 10]


def _mteb_split(name: str, root: Path) -> dict[str, Any]:
    """mteb's own loader on the fixture: each subset's test split."""
    task = mteb_task_on(name, root)
    task.load_data()
    return {subset: splits["test"] for subset, splits in task.dataset.items()}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_is_read_as_mteb_reads_it(name: str, fixtures: dict[str, Path]) -> None:
    entry = _entry(name)
    ours = Retrieval().load(on_folder(entry, fixtures[name]), "test")
    theirs = _mteb_split(name, fixtures[name])
    assert list(ours.parts) == list(theirs)
    assert list(theirs) == (list(VIDORE3_LANGUAGES) if name.startswith("Vidore3") else ["default"])
    for subset, data in ours.parts.items():
        reference = theirs[subset]
        assert [(q.id, q.parts) for q in data.queries] == [
            (row["id"], {"text": row["text"]}) for row in reference["queries"]
        ]
        assert [d.id for d in data.corpus] == list(reference["corpus"]["id"])
        assert data.qrels == reference["relevant_docs"]
        if entry.category == "t2it":  # the page's markdown as mteb hands it to a model
            expected = [_corpus_to_dict(row)["text"] for row in reference["corpus"]]
            assert [d.parts["text"] for d in data.corpus] == expected
        assert all(set(d.parts) == set(entry.sides.document) for d in data.corpus)


def test_a_blank_markdown_is_an_empty_text_only_with_keep_blank_text(
    fixtures: dict[str, Path],
) -> None:
    """v3.1 keeps a blank page text as mteb encodes it; without the option the part is absent."""
    name = "Vidore3FinanceEnRetrieval.v2"
    entry = on_folder(_entry(name), fixtures[name])
    blank = [n for n, text in enumerate(MARKDOWN) if not text.strip()]
    assert len(blank) == 2
    kept = Retrieval().load(entry, "test").parts["french"].corpus
    assert [(kept[n].parts["text"], set(kept[n].parts)) for n in blank] == [
        ("", {"image", "text"})
    ] * 2
    protocol = {**entry.protocol, "keep_blank_text": False}
    absent = Retrieval().load(entry.model_copy(update={"protocol": protocol}), "test")
    assert [set(absent.parts["french"].corpus[n].parts) for n in blank] == [{"image"}] * 2


def _vector(key: str) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(key.encode())).normal(size=8).astype(np.float32)


class KeyedEncoder:
    """Our encoder contract: a query's vector by its text, a document's by its id."""

    device = "cpu"
    adapter = SimpleNamespace(meta=AdapterMeta("keyed", "1", "test", "cosine", ("text",), "f32"))

    def encode(self, items: Sequence[RawItem], *, role: str, **_: Any) -> Encoded:
        keys = [item.parts["text"] if role == "query" else item.id for item in items]
        return Encoded(np.stack([_vector(key) for key in keys]), np.ones(len(items), dtype=bool))


class KeyedModel:
    """The same vectors for mteb's search: a query's by its text, a document's by its id."""

    mteb_model_meta = None

    def encode(self, inputs: Any, *, prompt_type: PromptType | None = None, **_: Any) -> Any:
        column = "text" if prompt_type == PromptType.query else "id"
        return np.stack([_vector(key) for batch in inputs for key in batch[column]])

    def similarity(self, a: Any, b: Any) -> Any:
        return cos_sim(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        raise NotImplementedError


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_subset_scores_as_mteb_scores_it(name: str, fixtures: dict[str, Path]) -> None:
    entry = on_folder(_entry(name), fixtures[name])
    loaded = Retrieval().load(entry, "test")
    ours = {e["hf_subset"]: e for e in Retrieval().score(entry, loaded, KeyedEncoder()).subsets}
    task = mteb_task_on(name, fixtures[name])
    task.load_data()
    assert list(ours) == list(task.dataset)
    for subset, splits in task.dataset.items():
        theirs = task._evaluate_subset(
            KeyedModel(),
            splits["test"],
            hf_split="test",
            hf_subset=subset,
            encode_kwargs={"batch_size": 4, "show_progress_bar": False},
            timer=TimingStack(),
        )
        worst = max(differences(ours[subset], dict(theirs), subset), key=lambda pair: pair[1])
        assert worst[1] <= TOLERANCE, worst
        assert ours[subset]["main_score"] == ours[subset]["ndcg_at_10"]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_runs_end_to_end(
    name: str, fixtures: dict[str, Path], tiny_clip_dir: Path, tmp_path: Path
) -> None:
    code = run_cli(tiny_clip_dir, name, tmp_path, "--data-dir", f"{name}={fixtures[name]}")
    assert code == 0
    result = read_result_json(tmp_path, name)
    entries = result["scores"]["test"]
    subsets = mteb.get_task(name).hf_subsets
    assert [e["hf_subset"] for e in entries] == subsets
    eval_langs = mteb.get_task(name).metadata.eval_langs
    for entry in entries:
        expected = eval_langs[entry["hf_subset"]] if isinstance(eval_langs, dict) else eval_langs
        assert entry["languages"] == expected
        assert entry["main_score"] == entry["ndcg_at_10"]
        assert 0.0 <= entry["main_score"] <= 1.0
    # Every language shares the pages, encoded once; each has its own question texts.
    pages, questions = len(MARKDOWN), 4
    assert result["harness"]["encoding"]["items_encoded"] == pages + len(subsets) * questions


@pytest.mark.parametrize("name", ["Vidore3NuclearRetrieval", "Vidore3TelecomRetrieval.v2"])
def test_a_private_dataset_that_cannot_load_says_it_is_private(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    entry = _entry(name)
    with pytest.raises(HarnessError) as error:
        Retrieval().load(entry, "test")
    message = str(error.value)
    assert f"task {name}" in message and entry.dataset.path in message
    assert "private" in message and "hf auth login" in message


def test_a_public_dataset_that_cannot_load_is_not_called_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(HarnessError) as error:
        Retrieval().load(_entry("KoVidore2HrRetrieval"), "test")
    assert "private" not in str(error.value)


def test_a_run_goes_on_past_a_private_task(
    fixtures: dict[str, Path], tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The private task fails with its reason (exit 2); the other task's result is written."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    public, private = "KoVidore2HrRetrieval", "Vidore3NuclearRetrieval"
    data = f"{public}={fixtures[public]}"
    assert run_cli(tiny_clip_dir, f"{public},{private}", tmp_path, "--data-dir", data) == 2
    assert sorted(result_files(tmp_path, "*Retrieval")) == [public]
