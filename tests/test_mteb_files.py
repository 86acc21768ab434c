"""mteb's result files of every layout, read as mteb's own loader reads them.

The files are mteb's own: written by mteb 1.12.94's ``MTEBResults`` (tests/fixtures/mteb/
mteb-1.12, see its README), by the installed mteb 2.x's ``TaskResult`` (tests/mteb_fixtures.py),
and by hand in the layout before 1.11, when mteb had no result class.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from mteb.results import TaskResult

from harness.core.errors import HarnessError
from harness.engine.main_score import task_score
from harness.engine.mteb_files import (
    LAYOUT_1X,
    LAYOUT_2X,
    LAYOUT_BEFORE_1_11,
    ExternalModel,
    external_model,
    mteb_layout,
    read_mteb_result,
)
from harness.engine.validation import MAX_SPLITS, validate
from harness.tasks.registry import builtin_tasks
from tests.leaderboard_fixtures import result_payload
from tests.mteb_fixtures import MTEB_FIXTURES, write_mteb_result

MTEB_1_12 = MTEB_FIXTURES / "mteb-1.12"
BEFORE_1_11 = MTEB_FIXTURES / "mteb-before-1.11"
OLD_MODEL = BEFORE_1_11 / "fixture-org__old-model" / "rev-old"
CLIP_LIKE = MTEB_1_12 / "fixture-org__clip-like"
FIXTURE_FILES = sorted(p for p in MTEB_FIXTURES.rglob("*.json") if p.name != "model_meta.json")


def _written_2x(root: Path) -> list[Path]:
    """mteb 2.x files of one model: a default subset, full retrieval metrics, two subsets."""
    model, revision = "fixture-org/two", "rev-2"
    retrieval = {"ndcg_at_10": 0.61234, "ndcg_at_1": 0.5, "recall_at_10": 0.81}
    return [
        write_mteb_result(root, model, revision, "CIFAR10ZeroShot", {"test": 0.7321}),
        write_mteb_result(
            root,
            model,
            revision,
            "Flickr30kT2IRetrieval",
            {
                "test": [
                    {
                        **retrieval,
                        "main_score": 0.61234,
                        "hf_subset": "default",
                        "languages": ["eng-Latn"],
                    }
                ]
            },
        ),
        write_mteb_result(
            root,
            model,
            revision,
            "STS17MultilingualVisualSTS",
            {
                "test": [
                    {"cosine_spearman": s, "main_score": s, "hf_subset": n, "languages": [lang]}
                    for n, lang, s in [("en-en", "eng-Latn", 0.7), ("ko-ko", "kor-Hang", 0.25)]
                ]
            },
        ),
    ]


def _without_versions(scores: Mapping[str, Sequence[Mapping[str, Any]]], languages: bool) -> Any:
    """mteb's scores less the version it copies into every subset (and, when not compared,
    the languages it maps subsets to from its own task metadata)."""
    dropped = {"mteb_version"} | (set() if languages else {"languages"})
    return {
        split: [{k: v for k, v in entry.items() if k not in dropped} for entry in entries]
        for split, entries in scores.items()
    }


def test_every_layout_reads_as_mteb_reads_it(tmp_path: Path) -> None:
    """Normalised scores and the task score equal mteb 2.x's ``TaskResult.from_disk``."""
    files = FIXTURE_FILES + _written_2x(tmp_path)
    layouts = set()
    for path in files:
        ours = read_mteb_result(path)
        theirs = TaskResult.from_disk(path)
        layouts.add(ours.layout)
        # Before 1.11 a language subset's languages came from mteb's task metadata, which
        # the catalog does not hold per subset: every subset gets the task's languages.
        nested_old = ours.layout == LAYOUT_BEFORE_1_11 and len(ours.scores["test"]) > 1
        compared = _without_versions(ours.scores, not nested_old)
        assert compared == _without_versions(theirs.scores, not nested_old), path
        splits = builtin_tasks()[ours.task_name].eval_splits
        assert task_score(ours.scores, splits) == pytest.approx(theirs.get_score(splits), abs=1e-12)
        assert ours.task_name == theirs.task_name
    assert layouts == {LAYOUT_BEFORE_1_11, LAYOUT_1X, LAYOUT_2X}


def test_a_file_before_1_11_is_normalised() -> None:
    """Main score from the task's metric, split times summed, groups renamed, subsets nested."""
    cifar = read_mteb_result(OLD_MODEL / "CIFAR10ZeroShot.json")
    assert cifar.mteb_version == "1.1.1"
    assert cifar.evaluation_time == pytest.approx(30.12)
    [entry] = cifar.scores["test"]
    assert entry["main_score"] == entry["accuracy"] == 0.7012
    assert entry["hf_subset"] == "default"
    sts = read_mteb_result(OLD_MODEL / "STS17MultilingualVisualSTS.json")
    assert sts.mteb_version is None
    assert [e["hf_subset"] for e in sts.scores["test"]] == ["en-en", "ko-ko"]
    assert sts.scores["test"][1]["main_score"] == sts.scores["test"][1]["cosine_spearman"]
    assert "cos_sim" not in sts.scores["test"][0]
    assert task_score(sts.scores, ["test"]) == pytest.approx((0.6422 + 0.2704) / 2)


def test_the_layout_and_version_of_each_file(tmp_path: Path) -> None:
    v1 = read_mteb_result(CLIP_LIKE / "rev-a" / "CIFAR10ZeroShot.json")
    assert (v1.layout, v1.mteb_version, v1.evaluation_time) == (LAYOUT_1X, "1.12.94", 12.5)
    [v2_file, *_] = _written_2x(tmp_path)
    v2 = read_mteb_result(v2_file)
    assert v2.layout == LAYOUT_2X and v2.mteb_version is not None
    assert v2.mteb_version.startswith("2.")
    assert all("mteb_version" not in entry for entry in v2.scores["test"])
    ranged = {**json.loads(v2_file.read_text()), "mteb_version": "1.38.2-2.1.0"}
    assert mteb_layout(ranged) == LAYOUT_1X  # a merged file is as old as its oldest part
    harness_file = result_payload("m", "CIFAR10ZeroShot", 0.5)
    assert mteb_layout(harness_file) is None


def test_the_model_from_model_meta_or_the_folders(tmp_path: Path) -> None:
    """mteb 1.x and 2.x ``model_meta.json``, or ``<org__model>/<revision>/`` without one;
    each revision of a model is its own model."""
    rev_a = external_model(CLIP_LIKE / "rev-a" / "CIFAR10ZeroShot.json")
    assert rev_a == ExternalModel("fixture-org/clip-like", "rev-a", 151_277_313, 512, [])
    rev_b = external_model(CLIP_LIKE / "rev-b" / "CIFAR10ZeroShot.json")
    assert (rev_b.name, rev_b.revision) == ("fixture-org/clip-like", "rev-b")
    no_meta = external_model(
        MTEB_1_12 / "fixture-org__no-meta" / "no_revision_available" / "CIFAR10ZeroShot.json"
    )
    assert no_meta == ExternalModel("fixture-org/no-meta", "no_revision_available")
    v2 = write_mteb_result(
        tmp_path, "org/v2", "rev-9", "CIFAR10ZeroShot", {"test": 0.5}, n_parameters=46_785
    )
    assert external_model(v2) == ExternalModel("org/v2", "rev-9", 46_785, None, ["image", "text"])
    bare = write_mteb_result(
        tmp_path, "org/bare", "r0", "CIFAR10ZeroShot", {"test": 0.5}, model_meta=False
    )
    assert external_model(bare) == ExternalModel("org/bare", "r0")


def test_a_linked_model_meta_is_refused(tmp_path: Path) -> None:
    path = write_mteb_result(tmp_path, "org/m", "r1", "CIFAR10ZeroShot", {"test": 0.5})
    meta = path.parent / "model_meta.json"
    outside = tmp_path / "elsewhere.json"
    meta.rename(outside)
    meta.symlink_to(outside)
    with pytest.raises(HarnessError, match="symbolic link"):
        external_model(path)


def _bad(tmp_path: Path, payload: Any) -> Path:
    path = tmp_path / "org__m" / "r1" / "CIFAR10ZeroShot.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


OLD = {"mteb_dataset_name": "CIFAR10ZeroShot", "mteb_version": "1.0.0"}
SUBSET = {"main_score": 0.5, "hf_subset": "default", "languages": []}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("{", "not valid JSON"),
        (
            '{"task_name": "CIFAR10ZeroShot", "scores": {"test": [{"main_score": Infinity}]}}',
            "Infinity",
        ),
        ([1, 2], "not an mteb result file"),
        ({"note": 1}, "not an mteb result file"),
        ({**OLD, "test": 0.5}, "split 'test' is not an object of scores"),
        ({**OLD, "test": {"en": {"accuracy": 0.5}, "fr": 3}}, "subset 'fr' is not an object"),
        ({"task_name": "T", "scores": {"test": [{"main_score": 0.5}]}}, "lacks mteb's `hf_subset`"),
        ({"task_name": "T", "scores": {"test": "high"}}, "does not match the result schema"),
        (
            {"task_name": "T", "scores": {f"s{i}": [SUBSET] for i in range(MAX_SPLITS + 1)}},
            f"at most {MAX_SPLITS}",
        ),
    ],
    ids=[
        "not-json",
        "bare-infinity",
        "a-list",
        "no-mteb-keys",
        "old-split-not-object",
        "old-subset-not-object",
        "no-hf-subset",
        "scores-not-lists",
        "too-many-splits",
    ],
)
def test_a_bad_file_is_a_clear_error(tmp_path: Path, payload: Any, expected: str) -> None:
    path = _bad(tmp_path, payload)
    with pytest.raises(HarnessError) as error:
        read_mteb_result(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "Fix: pass a result file written by mteb" in message


def test_a_bare_nan_that_mteb_wrote_for_an_undefined_metric_reads_as_null(tmp_path: Path) -> None:
    """mteb saves an undefined metric (an nAUC over identical queries) as a bare NaN."""
    subset = {"main_score": 0.5, "accuracy": 0.5, "nauc_x": "NAN", "hf_subset": "default"}
    payload = {"task_name": "CIFAR10ZeroShot", "mteb_version": "2.26.24"}
    payload["scores"] = {"test": [{**subset, "languages": []}]}
    text = json.dumps(payload).replace('"NAN"', "NaN")
    path = _bad(tmp_path, text)
    [entry] = read_mteb_result(path).scores["test"]
    assert entry["nauc_x"] is None and entry["main_score"] == 0.5
    [problem] = validate(path).problems
    assert problem.check == "mteb"


def test_validate_says_an_mteb_file_is_one_and_what_a_submission_needs(tmp_path: Path) -> None:
    """One problem per file, naming its layout and version, instead of "Field required"."""
    v2 = write_mteb_result(tmp_path, "org/m", "r1", "CIFAR10ZeroShot", {"test": 0.5})
    for path, described in [
        (v2, f"({LAYOUT_2X}, mteb 2."),
        (CLIP_LIKE / "rev-a" / "CIFAR10ZeroShot.json", f"({LAYOUT_1X}, mteb 1.12.94)"),
        (OLD_MODEL / "CIFAR10ZeroShot.json", f"({LAYOUT_BEFORE_1_11}, mteb 1.1.1)"),
        (OLD_MODEL / "STS17MultilingualVisualSTS.json", "mteb version unknown"),
    ]:
        [problem] = validate(path).problems
        assert problem.check == "mteb"
        assert problem.message.startswith("an mteb result file (")
        assert described in problem.message
        assert "no harness block (no model fingerprint, run record, units or interval)" in (
            problem.message
        )
        assert "harness leaderboard --results DIR" in problem.fix
        assert "harness run --model M --tasks TASK" in problem.fix
