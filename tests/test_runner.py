"""`harness run` end to end with tiny random models: results, cache, resume."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mteb.results import TaskResult

from harness.app.runner import RunSettings, run
from harness.core.adapter import AdapterMeta, Role
from harness.model_adapters.registry import load_adapter
from tests.dataset_fixtures import colour_retrieval, retrieval_task_yaml


@pytest.fixture(scope="module")
def colour_tasks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Custom YAML task files for t2i, i2t and i2i colour retrieval over local parquet files."""
    root = tmp_path_factory.mktemp("colour-tasks")
    files = {}
    for category in ("t2i", "i2t", "i2i"):
        name = f"Colour{category.upper()}Retrieval"
        data = colour_retrieval(root / name, category)
        files[category] = retrieval_task_yaml(root / f"{name}.yaml", name, data, category)
    return files


def settings(tmp_path: Path, **overrides: Any) -> RunSettings:
    values: dict[str, Any] = {
        "output": tmp_path / "results",
        "cache_dir": tmp_path / "cache",
        "batch_size": 3,
        "num_workers": 0,
        "show_progress": False,
    }
    return RunSettings(**{**values, **overrides})


class InterruptAfter:
    """Wraps an adapter and raises KeyboardInterrupt on the call after ``calls`` calls."""

    def __init__(self, adapter: Any, calls: int) -> None:
        self.adapter, self.remaining = adapter, calls
        self.meta: AdapterMeta = adapter.meta

    def encode(
        self, items: Sequence[dict], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        if self.remaining == 0:
            raise KeyboardInterrupt
        self.remaining -= 1
        return self.adapter.encode(items, role=role, instruction=instruction)


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.mark.parametrize("model_fixture", ["tiny_clip_dir", "tiny_siglip_dir"])
def test_end_to_end_writes_mteb_readable_results(
    model_fixture: str,
    colour_tasks: dict[str, Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    model_dir = request.getfixturevalue(model_fixture)
    report = run(str(model_dir), [str(p) for p in colour_tasks.values()], settings(tmp_path))
    assert [o.status for o in report.outcomes] == ["done"] * 3
    assert (report.model_folder / "model_meta.json").exists()
    for outcome in report.outcomes:
        loaded = TaskResult.from_disk(outcome.path)
        assert loaded.task_name == outcome.task
        entry = loaded.scores["test"][0]
        assert entry["main_score"] == entry["ndcg_at_10"] == outcome.main_score
        assert 0.0 <= entry["main_score"] <= 1.0
        assert {
            "map_at_1000",
            "recall_at_5",
            "precision_at_3",
            "mrr_at_10",
            "hit_rate_at_20",
        } <= set(entry)
        block = read(outcome.path)["harness"]
        assert block["model"]["fingerprint"] == report.encoder.adapter.meta.fingerprint
        assert block["run_settings"]["batch_size"] == 3
        assert block["task"]["protocol"]["k_values"] == [1, 3, 5, 10, 20, 100, 1000]
        assert {"torch", "transformers", "mteb"} <= set(block["environment"])
    assert "main score" in report.summary()


def test_second_run_calls_the_model_zero_times(
    tiny_clip_dir: Path, colour_tasks: dict[str, Path], tmp_path: Path
) -> None:
    tasks = [str(p) for p in colour_tasks.values()]
    first = run(str(tiny_clip_dir), tasks, settings(tmp_path))
    assert first.encoder.stats.model_calls > 0
    second = run(str(tiny_clip_dir), tasks, settings(tmp_path, overwrite=True))
    assert second.encoder.stats.model_calls == 0
    assert second.encoder.stats.cache_hits > 0
    assert [o.main_score for o in first.outcomes] == [o.main_score for o in second.outcomes]


def test_rerun_skips_finished_tasks(
    tiny_clip_dir: Path, colour_tasks: dict[str, Path], tmp_path: Path
) -> None:
    task = [str(colour_tasks["t2i"])]
    run(str(tiny_clip_dir), task, settings(tmp_path, cache_dir=None))
    again = run(str(tiny_clip_dir), task, settings(tmp_path, cache_dir=None))
    assert again.outcomes[0].status == "exists"
    assert again.encoder.stats.model_calls == 0


def test_shared_task_is_encoded_once_across_runs(
    tiny_clip_dir: Path, colour_tasks: dict[str, Path], tmp_path: Path
) -> None:
    t2i, i2t, i2i = (str(colour_tasks[c]) for c in ("t2i", "i2t", "i2i"))
    run(str(tiny_clip_dir), [t2i, i2t], settings(tmp_path, output=tmp_path / "a"))
    second = run(str(tiny_clip_dir), [t2i, i2i], settings(tmp_path, output=tmp_path / "b"))
    calls = {o.task: read(o.path)["harness"]["encoding"]["model_calls"] for o in second.outcomes}
    assert calls["ColourT2IRetrieval"] == 0
    # I2I's query images are I2T's queries and its corpus is T2I's: the cache spans tasks.
    assert calls["ColourI2IRetrieval"] == 0
    assert second.encoder.stats.cache_hits == 32


@pytest.mark.parametrize(
    ("model", "category", "change"),
    [
        ("clip", "t2i", {"revision": "other-revision"}),
        ("clip", "t2i", {"dtype": "bfloat16"}),
        ("all-MiniLM-L6-v2", "t2t", {"options": {"prompts": {"query": "query: "}}}),
    ],
    ids=["revision", "dtype", "prompt"],
)
def test_changed_model_settings_miss_the_cache(
    model: str, category: str, change: dict[str, Any], tiny_clip_dir: Path, tmp_path: Path
) -> None:
    data = colour_retrieval(tmp_path / "data", category)
    task = [str(retrieval_task_yaml(tmp_path / "task.yaml", "ColourTask", data, category))]
    model = str(tiny_clip_dir) if model == "clip" else model
    base = load_adapter(model)
    run(base, task, settings(tmp_path))
    changed = load_adapter(model, **change)
    assert changed.meta.fingerprint != base.meta.fingerprint
    report = run(changed, task, settings(tmp_path, output=tmp_path / "changed"))
    assert report.encoder.stats.model_calls > 0
    assert report.encoder.stats.cache_hits == 0
    unchanged = run(load_adapter(model), task, settings(tmp_path, output=tmp_path / "same"))
    assert unchanged.encoder.stats.model_calls == 0


def test_custom_task_over_plain_parquet_folders(tiny_clip_dir: Path, tmp_path: Path) -> None:
    """A local folder without a dataset card: one folder of parquet files per config."""
    data = colour_retrieval(tmp_path / "plain", "t2i", card=False)
    assert not (data / "README.md").exists()
    task = retrieval_task_yaml(tmp_path / "plain.yaml", "PlainT2I", data, "t2i")
    report = run(str(tiny_clip_dir), [str(task)], settings(tmp_path))
    assert report.outcomes[0].status == "done"
    assert read(report.outcomes[0].path)["dataset_revision"].startswith("local-")


def test_resume_after_a_kill_computes_only_what_is_missing(
    tiny_clip_dir: Path, colour_tasks: dict[str, Path], tmp_path: Path
) -> None:
    tasks = [str(colour_tasks["t2i"]), str(colour_tasks["i2i"])]
    adapter = load_adapter(str(tiny_clip_dir))
    reference = run(
        adapter, tasks, settings(tmp_path, output=tmp_path / "reference", cache_dir=None)
    )

    # t2i needs 4 batches of 3 (8 queries, 8 documents -> 3+3+2, 3+3+2 = 6 calls); die in i2i.
    with pytest.raises(KeyboardInterrupt):
        run(InterruptAfter(adapter, calls=7), tasks, settings(tmp_path))
    folder = reference.model_folder.relative_to(tmp_path / "reference")
    assert (tmp_path / "results" / folder / "ColourT2IRetrieval.json").exists()
    assert not (tmp_path / "results" / folder / "ColourI2IRetrieval.json").exists()

    resumed = run(adapter, tasks, settings(tmp_path))
    assert [o.status for o in resumed.outcomes] == ["exists", "done"]
    # i2i's corpus images are t2i's, already cached; of its 8 query images the first batch of 3
    # was cached before the kill, so exactly 5 items remain to encode.
    assert resumed.encoder.stats.items_encoded == 5
    assert [o.main_score for o in resumed.outcomes] == [o.main_score for o in reference.outcomes]


def test_limit_caps_queries_and_keeps_their_relevant_documents(
    tiny_clip_dir: Path, colour_tasks: dict[str, Path], tmp_path: Path
) -> None:
    report = run(str(tiny_clip_dir), [str(colour_tasks["t2i"])], settings(tmp_path, limit=3))
    # 3 queries; corpus = their 3 relevant documents plus the first 3 documents (the same ones).
    assert report.encoder.stats.items_encoded == 6
    assert read(report.outcomes[0].path)["harness"]["run_settings"]["limit"] == 3
