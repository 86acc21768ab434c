"""The warm path: a run whose every vector is cached imports neither torch nor transformers and
never loads the model, and gives the cold run's numbers; the model's load key changes with
its files and options; a record that disagrees with the model is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from harness.app.runner import RunReport, RunSettings, run
from harness.core.errors import HarnessError
from harness.engine.cache import EmbeddingCache
from harness.engine.lazy_model import LazyAdapter, ModelRecords, json_form, model_adapter
from harness.model_adapters.registry import load_adapter, model_load_key
from tests.dataset_fixtures import colour_retrieval, retrieval_task_yaml, task_file
from tests.test_clustering import entry, swatch_dataset

# Runs `harness run` and prints, at exit, the heavy libraries the process imported.
WRAPPER = """
import atexit, sys
from harness.app.cli import main
heavy = {"torch", "transformers", "sentence_transformers"}
atexit.register(lambda: print("HEAVY=" + ",".join(sorted(
    {name.split(".")[0] for name in sys.modules} & heavy)), file=sys.stderr))
sys.exit(main(sys.argv[1:]))
"""


def harness_run(model: Path, tasks: Iterable[Path], output: Path, cache: Path) -> set[str]:
    """`harness run` in a fresh process; the heavy libraries it imported."""
    command = [sys.executable, "-c", WRAPPER, "run", "--model", str(model), "--tasks"]
    command += [",".join(map(str, tasks)), "--output", str(output), "--cache-dir", str(cache)]
    command += ["--quiet", "--num-workers", "0"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [line for line in done.stderr.splitlines() if line.startswith("HEAVY=")]
    return set(filter(None, line.removeprefix("HEAVY=").split(",")))


def scores_of(output: Path) -> dict[str, Any]:
    """Every result file's scores and identity, by task name."""
    found = {}
    for path in output.rglob("*.json"):
        if path.name != "model_meta.json":
            data = json.loads(path.read_text())
            found[data["task_name"]] = (data["scores"], data["harness"]["identity"])
    return found


@pytest.fixture()
def clustering_task(tmp_path: Path) -> Path:
    data = swatch_dataset(tmp_path / "swatches", n=24)
    return task_file(tmp_path / "clustering.yaml", [entry("SwatchClustering", data)])


@pytest.fixture()
def retrieval_task(tmp_path: Path) -> Path:
    data = colour_retrieval(tmp_path / "colours", "t2i")
    return retrieval_task_yaml(tmp_path / "t2i.yaml", "ColourT2IRetrieval", data, "t2i")


def test_warm_rerun_imports_no_model_library_and_scores_the_same(
    tiny_clip_dir: Path, clustering_task: Path, retrieval_task: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cold = harness_run(tiny_clip_dir, [clustering_task], tmp_path / "cold", cache)
    assert {"torch", "transformers"} <= cold
    # Every vector cached, a fresh output folder: read vectors, score, write.
    assert harness_run(tiny_clip_dir, [clustering_task], tmp_path / "warm", cache) == set()
    assert scores_of(tmp_path / "warm") == scores_of(tmp_path / "cold")
    # The results there already: nothing to compute, and still no model library.
    assert harness_run(tiny_clip_dir, [clustering_task], tmp_path / "warm", cache) == set()
    # Retrieval scores its similarities with torch (as mteb does), but loads no model.
    harness_run(tiny_clip_dir, [retrieval_task], tmp_path / "cold", cache)
    warm = harness_run(tiny_clip_dir, [retrieval_task], tmp_path / "warm-retrieval", cache)
    assert "transformers" not in warm
    cold_scores = scores_of(tmp_path / "cold")
    assert scores_of(tmp_path / "warm-retrieval") == {
        "ColourT2IRetrieval": cold_scores["ColourT2IRetrieval"]
    }


class MissingOne(EmbeddingCache):
    """The embedding cache, less one entry: the first key ever asked for."""

    missing: str | None = None

    def get_many(self, keys: Iterable[str], ndim: int = 1) -> dict[str, np.ndarray]:
        keys = list(keys)
        if MissingOne.missing is None and keys:
            MissingOne.missing = keys[0]
        return {
            key: vector
            for key, vector in super().get_many(keys, ndim).items()
            if key != MissingOne.missing
        }


def test_one_missing_vector_loads_the_model_and_gives_the_same_numbers(
    tiny_clip_dir: Path,
    retrieval_task: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def settings(output: str) -> RunSettings:
        return RunSettings(
            output=tmp_path / output,
            cache_dir=tmp_path / "cache",
            batch_size=3,
            num_workers=0,
            show_progress=False,
        )

    cold = run(str(tiny_clip_dir), [str(retrieval_task)], settings("cold"))
    warm = run(str(tiny_clip_dir), [str(retrieval_task)], settings("warm"))
    assert isinstance(warm.encoder.adapter, LazyAdapter)
    assert not warm.encoder.adapter.is_loaded
    monkeypatch.setattr(MissingOne, "missing", None)
    monkeypatch.setattr("harness.app.runner.EmbeddingCache", MissingOne)
    missing = run(str(tiny_clip_dir), [str(retrieval_task)], settings("missing"))
    assert isinstance(missing.encoder.adapter, LazyAdapter)
    assert missing.encoder.adapter.is_loaded
    # The one batch that holds the missing item, encoded whole (its neighbours keep their
    # cached vectors).
    assert missing.encoder.stats.model_calls == 1
    assert 1 <= missing.encoder.stats.items_encoded <= 3
    assert MissingOne.missing is not None
    expected = scores_json(cold)
    assert scores_json(warm) == scores_json(missing) == expected
    phases = missing.outcomes[0].phases
    assert phases is not None and phases.model_load > 0 and 1 <= phases.items_encoded <= 3


def scores_json(report: RunReport) -> str:
    """A run's scores as JSON (where NaN equals NaN)."""
    return json.dumps([result.scores for result in report.results], sort_keys=True)


def changed_weights(model_dir: Path, target: Path) -> Path:
    """A copy of ``model_dir`` with one weight changed in its last float bit."""
    shutil.copytree(model_dir, target)
    [weights] = target.glob("*.safetensors")
    tensors = load_file(str(weights))
    name = sorted(tensors)[0]
    bits = tensors[name].view(np.uint32) if tensors[name].dtype == np.float32 else None
    assert bits is not None
    bits.flat[0] ^= 1
    save_file(tensors, str(weights), metadata={"format": "pt"})
    return target


def test_the_load_key_and_fingerprint_change_with_the_weights_and_options(
    tiny_clip_dir: Path, tmp_path: Path
) -> None:
    key = model_load_key(str(tiny_clip_dir))
    assert model_load_key(str(tiny_clip_dir)) == key
    copy = tmp_path / tiny_clip_dir.name
    shutil.copytree(tiny_clip_dir, copy)
    assert model_load_key(str(copy)) != key  # another directory
    changed = changed_weights(tiny_clip_dir, tmp_path / "changed" / tiny_clip_dir.name)
    assert model_load_key(str(changed)) != model_load_key(str(copy))
    assert load_adapter(str(changed)).meta.fingerprint != load_adapter(str(copy)).meta.fingerprint
    assert model_load_key(str(copy), options={"fusion": "normalized_sum"}) != model_load_key(
        str(copy)
    )
    assert model_load_key(str(copy), dtype="bfloat16") != model_load_key(str(copy))
    assert model_load_key(str(copy), device="cuda") != model_load_key(str(copy))


def test_a_record_that_disagrees_with_the_model_is_refused_and_removed(
    tiny_clip_dir: Path, tmp_path: Path
) -> None:
    records = ModelRecords(tmp_path / "cache")
    real = load_adapter(str(tiny_clip_dir))
    first = model_adapter(lambda: real, "k", records)
    assert isinstance(first, LazyAdapter) and first.is_loaded
    recorded = records.get("k")
    assert recorded is not None and json_form(recorded) == json_form(real.meta)
    stale = json.loads((tmp_path / "cache" / "models" / "k.json").read_text())
    stale["embed_dim"] = 7  # not in the fingerprint: the record still reads back
    (tmp_path / "cache" / "models" / "k.json").write_text(json.dumps(stale))
    lazy = model_adapter(lambda: real, "k", records)
    assert isinstance(lazy, LazyAdapter) and not lazy.is_loaded
    with pytest.raises(HarnessError, match="record is removed"):
        lazy.loaded()
    assert records.get("k") is None


def test_a_record_that_does_not_read_back_is_no_record(tmp_path: Path) -> None:
    records = ModelRecords(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "bad.json").write_text('{"name": "x"}')
    (tmp_path / "models" / "torn.json").write_text('{"name": ')
    assert records.get("bad") is None and records.get("torn") is None
    assert records.get("absent") is None
