"""Result files: mteb reads them, they are valid JSON, and names cannot escape the folder."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from mteb.models.model_meta import ModelMeta
from mteb.results import TaskResult

from harness.core.adapter import AdapterMeta
from harness.engine.records import ModelRecord, SettingsRecord, TaskRecord
from harness.engine.results import (
    HarnessBlock,
    ResultFile,
    model_meta_payload,
    read_json,
    read_result,
    result_path,
    write_json_atomic,
    write_result,
)
from harness.engine.validation import scan_results

ROOT = Path(__file__).resolve().parent.parent

META = AdapterMeta(
    name="org/model",
    revision="abc123",
    family="clip",
    similarity="cosine",
    modalities=("image", "text"),
    dtype="float32",
    embed_dim=8,
    n_parameters=1000,
)


def make_result(main_score: float) -> ResultFile:
    block = HarnessBlock(
        harness_version="0",
        model=ModelRecord.of(META),
        task=TaskRecord(name="SomeTask", eval_splits=["test"], main_score="ndcg_at_10"),
        run_settings=SettingsRecord(limit=None),
        environment={},
    )
    scores = {
        "test": [
            {
                "main_score": main_score,
                "ndcg_at_10": main_score,
                "hf_subset": "default",
                "languages": ["eng-Latn"],
            }
        ]
    }
    return ResultFile(
        task_name="SomeTask",
        dataset_revision="rev",
        mteb_version="2.26.24",
        scores=scores,
        evaluation_time=1.5,
        date=dt.datetime.now(dt.UTC),
        harness=block,
    )


def test_mteb_loads_our_result_file(tmp_path: Path) -> None:
    path = result_path(tmp_path, META, "SomeTask")
    write_result(path, make_result(0.75))
    assert path == tmp_path / "org__model" / "abc123" / "SomeTask.json"
    loaded = TaskResult.from_disk(path)
    assert loaded.task_name == "SomeTask" and loaded.scores["test"][0]["main_score"] == 0.75
    harness = read_result(path).harness
    assert harness.model.fingerprint == META.fingerprint and harness.model.embed_dim == 8
    assert harness.task.main_score == "ndcg_at_10" and harness.run_settings.limit is None


def test_committed_results_read_typed_and_write_back_unchanged() -> None:
    """The typed records read every committed file, and dump back exactly its JSON."""
    files = scan_results(ROOT / "results").files
    assert len(files) == 32  # demo-clip 20, demo-xclip 6, demo-clap 5, OCR baseline 1
    for file in files:
        result = read_result(file)
        assert result.harness.model.name and result.harness.task.name == result.task_name
        assert result.harness.identity is not None and result.harness.identity.limit is None
        assert result.model_dump(mode="json") == read_json(file), file


def test_records_keep_unknown_keys_and_write_no_filled_in_default() -> None:
    """A key of another harness version survives reading; a field the file lacked stays out."""
    record = TaskRecord.model_validate({"name": "T", "later_field": {"x": 1}})
    assert record.written() == {"name": "T", "later_field": {"x": 1}}
    assert record.eval_splits is None and record.languages == []
    assert SettingsRecord.model_validate({"limit": 3}).written() == {"limit": 3}


def test_nan_is_written_as_null(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_result(path, make_result(float("nan")))
    text = path.read_text()
    assert "NaN" not in text
    assert json.loads(text)["scores"]["test"][0]["main_score"] is None


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    write_json_atomic(tmp_path / "a.json", {"x": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}


def test_model_meta_has_mteb_model_meta_fields() -> None:
    payload = model_meta_payload(META)
    assert payload["harness"]["fingerprint"] == META.fingerprint
    payload.pop("harness")
    meta = ModelMeta.model_validate(payload)
    assert meta.name == "org/model" and meta.embed_dim == 8


def test_names_cannot_leave_the_output_folder(tmp_path: Path) -> None:
    sneaky = AdapterMeta(
        name="../../etc",
        revision="..",
        family="clip",
        similarity="cosine",
        modalities=("text",),
        dtype="float32",
    )
    path = result_path(tmp_path, sneaky, "../../passwd")
    assert tmp_path in path.resolve().parents


def test_scores_are_rounded_to_six_decimals_as_mteb_saves_them(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_result(path, make_result(0.123456789))
    entry = json.loads(path.read_text())["scores"]["test"][0]
    assert entry["main_score"] == 0.123457 and entry["ndcg_at_10"] == 0.123457


def test_multi_vector_model_meta_uses_mteb_spelling() -> None:
    from dataclasses import replace

    payload = model_meta_payload(replace(META, similarity="maxsim"))
    payload.pop("harness")
    assert ModelMeta.model_validate(payload).similarity_fn_name.value == "MaxSim"
