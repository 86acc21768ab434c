"""SeaDoc: the built-in definition, a mini copy in the hub layout run end to end through the CLI
(tiny CLIP and tiny Qwen2-VL, Qwen2.5-VL and Omni thinker; with --data-dir and with a custom task
file), per-language subsets, and unknown ids in qrels."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import pytest
import yaml

from harness.app.plan import with_data_dirs
from harness.core.errors import HarnessError
from harness.tasks.registry import builtin_tasks, load_task_file
from harness.tasks.retrieval import Retrieval, RetrievalSplit, _subset_groups
from tests.dataset_fixtures import read_result_json, run_cli, write_hub_dataset
from tests.document_fixtures import FONTS, SEADOC_PAGES, font_file, write_mini_seadoc
from tests.tiny_models import (
    build_tiny_qwen2_5_omni_thinker,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen2_vl,
)

INSTRUCTION = "Find a screenshot that relevant to the user's question."
LANGUAGES = {"th": "tha-Thai", "vi": "vie-Latn", "lo": "lao-Laoo", "ms": "msa-Latn"}


@pytest.fixture(scope="module")
def seadoc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini SeaDoc in the exact hub layout."""
    return write_mini_seadoc(tmp_path_factory.mktemp("seadoc"))


@pytest.fixture(scope="module")
def seadoc_with_languages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini SeaDoc whose corpus also has a ``language`` column."""
    return write_mini_seadoc(tmp_path_factory.mktemp("seadoc-lang"), language_column=True)


def _custom_seadoc(path: Path, data: Path, **protocol: Any) -> Path:
    """The built-in SeaDoc entry, pointed at ``data``, as a custom task file."""
    entry = builtin_tasks()["SeaDoc"].model_dump(mode="json")
    entry["dataset"] |= {"path": str(data), "revision": None}
    entry["protocol"] |= protocol
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    return path


def _entries(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["hf_subset"]: entry for entry in result["scores"]["test"]}


def test_builtin_definition_matches_the_hub_dataset() -> None:
    task = builtin_tasks()["SeaDoc"]
    assert task.dataset.path == "LCO-Embedding/SeaDoc"
    assert re.fullmatch(r"[0-9a-f]{40}", task.dataset.revision or "")
    assert task.dataset.configs == {"corpus": "corpus", "queries": "query", "qrels": "qrels"}
    assert task.dataset.splits == {"corpus": "corpus"}
    assert (task.category, task.main_score, task.eval_splits) == ("t2i", "ndcg_at_10", ["test"])
    assert task.prompts.query == INSTRUCTION and task.prompts.document is None
    assert set(task.languages) == {"eng-Latn", *LANGUAGES.values()}


def test_fixture_is_the_hub_layout_in_real_fonts(seadoc_dir: Path) -> None:
    corpus = datasets.load_dataset(str(seadoc_dir), "corpus", split="corpus")
    query = datasets.load_dataset(str(seadoc_dir), "query", split="test")
    qrels = datasets.load_dataset(str(seadoc_dir), "qrels", split="test")
    assert corpus.column_names == ["id", "modality", "image"]
    assert query.column_names == ["id", "modality", "text"]
    assert qrels.column_names == ["query-id", "corpus-id", "score"]
    assert len(corpus) == len(query) == len(qrels) == len(SEADOC_PAGES)
    assert {page.language for page in SEADOC_PAGES} == set(LANGUAGES)
    packages = {"th": "tlwg", "lo": "lao", "vi": "noto", "ms": "noto"}
    for language, folder in packages.items():
        assert folder in str(font_file(language)).lower()
    assert corpus[0]["image"].size == (360, 160)


def test_missing_font_fails_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FONTS, "th", ("No Such Font", "fonts-thai-tlwg", "th"))
    with pytest.raises(RuntimeError, match="install the Debian package fonts-thai-tlwg"):
        font_file("th")


def test_data_dir_runs_seadoc_end_to_end(
    tiny_clip_dir: Path, seadoc_dir: Path, tmp_path: Path
) -> None:
    code = run_cli(tiny_clip_dir, "SeaDoc", tmp_path, "--data-dir", f"SeaDoc={seadoc_dir}")
    assert code == 0
    result = read_result_json(tmp_path, "SeaDoc")
    [entry] = result["scores"]["test"]
    assert entry["hf_subset"] == "default" and entry["main_score"] == entry["ndcg_at_10"]
    assert result["dataset_revision"].startswith("local-")
    block = result["harness"]
    assert block["task"]["prompts"]["query"] == INSTRUCTION
    assert block["task"]["dataset"]["path"] == str(seadoc_dir.resolve())
    assert block["run_settings"]["data_dirs"] == {"SeaDoc": str(seadoc_dir)}


@pytest.mark.parametrize(
    "build", [build_tiny_qwen2_vl, build_tiny_qwen2_5_vl, build_tiny_qwen2_5_omni_thinker]
)
def test_tiny_mllms_run_seadoc_end_to_end(
    build: Callable[[Path], Path], seadoc_with_languages: Path, tmp_path: Path
) -> None:
    model = build(tmp_path / "model")
    data_dir = f"SeaDoc={seadoc_with_languages}"
    assert run_cli(model, "SeaDoc", tmp_path, "--data-dir", data_dir) == 0
    result = read_result_json(tmp_path, "SeaDoc")
    assert list(_entries(result)) == ["default", "lo", "ms", "th", "vi"]
    assert result["harness"]["encoding"]["items_encoded"] == 2 * len(SEADOC_PAGES)


def test_custom_file_reports_per_language_subsets(
    tiny_clip_dir: Path, seadoc_with_languages: Path, tmp_path: Path
) -> None:
    task_file = _custom_seadoc(tmp_path / "seadoc.yaml", seadoc_with_languages)
    assert run_cli(tiny_clip_dir, task_file, tmp_path) == 0
    entries = _entries(read_result_json(tmp_path, "SeaDoc"))
    assert list(entries) == ["default", "lo", "ms", "th", "vi"]
    for language, code in LANGUAGES.items():
        assert entries[language]["languages"] == ["eng-Latn", code]
    # Every query sits in one language, two per language: the overall mean is theirs.
    mean = sum(entries[lang]["ndcg_at_10"] for lang in LANGUAGES) / len(LANGUAGES)
    assert entries["default"]["ndcg_at_10"] == pytest.approx(mean, abs=1e-4)


def test_queries_are_grouped_by_the_language_of_their_relevant_pages(
    seadoc_with_languages: Path, tmp_path: Path
) -> None:
    [task] = load_task_file(_custom_seadoc(tmp_path / "t.yaml", seadoc_with_languages))
    spec = Retrieval().protocol(task).subsets
    assert spec is not None
    qrels = {
        "q0": {"doc-th-0": 1},
        "q1": {"doc-th-1": 1, "doc-vi-4": 2, "doc-lo-2": 0},
        "q2": {"doc-lo-2": 1},
    }
    subset_of = Retrieval()._subset_map(task, spec, "test", RetrievalSplit([], [], qrels))
    assert subset_of is not None
    groups = _subset_groups(spec, subset_of, qrels, ["q0", "q1", "q2"])
    assert groups == {"lo": ["q2"], "th": ["q0", "q1"], "vi": ["q1"]}


def test_subsets_from_an_id_pattern_equal_those_from_a_column(
    tiny_clip_dir: Path, seadoc_dir: Path, seadoc_with_languages: Path, tmp_path: Path
) -> None:
    by_column = _custom_seadoc(tmp_path / "column.yaml", seadoc_with_languages)
    assert run_cli(tiny_clip_dir, by_column, tmp_path / "a") == 0
    pattern = {"part": "corpus", "id_pattern": r"^doc-([a-z]+)-"}
    by_id = _custom_seadoc(tmp_path / "id.yaml", seadoc_dir, subsets=pattern)
    assert run_cli(tiny_clip_dir, by_id, tmp_path / "b") == 0
    column_entries = _entries(read_result_json(tmp_path / "a", "SeaDoc"))
    id_entries = _entries(read_result_json(tmp_path / "b", "SeaDoc"))
    assert list(id_entries) == ["default", "lo", "ms", "th", "vi"]
    for subset, entry in column_entries.items():
        assert id_entries[subset]["ndcg_at_10"] == entry["ndcg_at_10"]


def test_a_required_subset_column_that_is_missing_is_an_error(
    tiny_clip_dir: Path, seadoc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strict = {"part": "corpus", "column": "language", "optional": False}
    task_file = _custom_seadoc(tmp_path / "strict.yaml", seadoc_dir, subsets=strict)
    assert run_cli(tiny_clip_dir, task_file, tmp_path) == 2
    assert "lacks the column(s) language" in capsys.readouterr().err


def test_bad_subset_settings_are_clear(seadoc_dir: Path, tmp_path: Path) -> None:
    both = {"part": "corpus", "column": "language", "id_pattern": "^(x)"}
    with pytest.raises(HarnessError, match="exactly one of `column` and `id_pattern`"):
        load_task_file(_custom_seadoc(tmp_path / "both.yaml", seadoc_dir, subsets=both))
    no_group = {"part": "corpus", "id_pattern": "^doc-"}
    with pytest.raises(HarnessError, match="needs a group"):
        load_task_file(_custom_seadoc(tmp_path / "group.yaml", seadoc_dir, subsets=no_group))


def test_data_dir_errors_are_clear(
    tiny_clip_dir: Path, seadoc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(tiny_clip_dir, "SeaDoc", tmp_path, "--data-dir", "SeaDok=.") == 2
    assert "--data-dir names task(s) that are not being run: SeaDok" in capsys.readouterr().err
    missing = tmp_path / "nowhere"
    assert run_cli(tiny_clip_dir, "SeaDoc", tmp_path, "--data-dir", f"SeaDoc={missing}") == 2
    assert "no such directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(tiny_clip_dir, "SeaDoc", tmp_path, "--data-dir", "SeaDoc")
    assert "expected TASK=PATH" in capsys.readouterr().err
    [task] = with_data_dirs([builtin_tasks()["SeaDoc"]], {"SeaDoc": seadoc_dir})
    assert task.is_local and task.dataset.revision is None
    assert builtin_tasks()["SeaDoc"].dataset.path == "LCO-Embedding/SeaDoc"


def _with_unknown_ids(root: Path, source: Path) -> Path:
    """The mini SeaDoc plus judgments naming a missing query and a missing page."""
    write_mini_seadoc(root)
    qrels = datasets.load_dataset(str(source), "qrels", split="test").to_list()
    qrels += [
        {"query-id": "q-gone", "corpus-id": "doc-th-0", "score": 1},
        {"query-id": "q0", "corpus-id": "doc-gone", "score": 1},
    ]
    features = datasets.Features(
        {
            "query-id": datasets.Value("string"),
            "corpus-id": datasets.Value("string"),
            "score": datasets.Value("int64"),
        }
    )
    write_hub_dataset(root, {"qrels": (qrels, features)}, card=False)
    return root


def test_unknown_ids_in_qrels_are_an_error_unless_allowed(
    tiny_clip_dir: Path, seadoc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _with_unknown_ids(tmp_path / "broken", seadoc_dir)
    assert run_cli(tiny_clip_dir, _custom_seadoc(tmp_path / "t.yaml", broken), tmp_path) == 2
    error = capsys.readouterr().err
    assert "1 query id(s) ('q-gone') that are not among the queries" in error
    assert "1 corpus id(s) ('doc-gone') that are not in the corpus" in error
    assert "unknown_qrels: drop" in error
    scores = {}
    for policy in ("drop", "mteb"):
        task_file = _custom_seadoc(tmp_path / f"{policy}.yaml", broken, unknown_qrels=policy)
        assert run_cli(tiny_clip_dir, task_file, tmp_path / policy) == 0
        [entry] = read_result_json(tmp_path / policy, "SeaDoc")["scores"]["test"]
        scores[policy] = entry
    assert run_cli(tiny_clip_dir, _custom_seadoc(tmp_path / "ok.yaml", seadoc_dir), tmp_path) == 0
    [clean] = read_result_json(tmp_path, "SeaDoc")["scores"]["test"]
    # drop: the clean dataset's scores; mteb: the missing page stays a relevant page of q0 that is
    # never retrieved, so q0's recall@1000 is 1/2.
    assert scores["drop"]["ndcg_at_10"] == clean["ndcg_at_10"]
    assert scores["drop"]["recall_at_1000"] == 1.0
    assert scores["mteb"]["recall_at_1000"] == pytest.approx(1 - 0.5 / len(SEADOC_PAGES), abs=1e-5)
