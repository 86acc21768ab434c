"""Result folders written by hand for the leaderboard tests: any model name, any score.

Each file is valid as ``harness validate`` sees it: a built-in task's record, dataset revision
and eval splits, and per-unit scores (``1000`` zeros and ones) whose mean is the main score, so
scores are multiples of 0.001. A task that is not built in gets a minimal custom record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.engine.validation import MODEL_META
from harness.tasks.loading import dataset_revision
from harness.tasks.registry import builtin_tasks, task_record

HOSTILE = "<script>alert(1)</script>"
UNITS = 1000
# Three built-in demo tasks of two types.
T1, T2, S1 = "DemoShapesT2IRetrieval", "DemoShapesI2TRetrieval", "DemoShapesZeroShot"


def _units(score: float) -> dict[str, Any]:
    """Stored units of the ``mean`` statistic whose mean is ``score``."""
    ones = round(score * UNITS)
    assert ones == score * UNITS, "fixture scores are multiples of 1 / UNITS"
    values = [1.0] * ones + [0.0] * (UNITS - ones)
    return {
        "statistic": "mean",
        "ids_digest": "0" * 16,
        "n_units": UNITS,
        "columns": {"values": values},
    }


def result_payload(
    model: str,
    task: str,
    score: float,
    *,
    task_type: str = "custom_type",
    revision: str = "r1",
    n_parameters: int | None = 1_000_000,
    modalities: tuple[str, ...] = ("image", "text"),
    date: str = "2026-01-01T00:00:00Z",
    fingerprint: str = "",
) -> dict[str, Any]:
    """A valid result file's JSON: of a built-in task as its definition says, else of a custom
    task of ``task_type`` scored by accuracy."""
    definition = builtin_tasks().get(task)
    if definition is not None:
        record, revision_of_data = task_record(definition), dataset_revision(definition)
    else:
        record = {"name": task, "type": task_type, "eval_splits": ["test"]}
        record, revision_of_data = {**record, "main_score": "accuracy"}, "local-0123456789ab"
    metric = record["main_score"]
    entry = {"main_score": score, "hf_subset": "default", "languages": ["eng-Latn"], metric: score}
    splits = record["eval_splits"]
    return {
        "task_name": task,
        "dataset_revision": revision_of_data,
        "mteb_version": "2.26.24",
        "scores": {split: [dict(entry)] for split in splits},
        "evaluation_time": 1.0,
        "kg_co2_emissions": None,
        "date": date,
        "harness": {
            "harness_version": "0.1.0",
            "model": {
                "name": model,
                "revision": revision,
                "fingerprint": fingerprint or f"fp-{revision}",
                "embed_dim": 64,
                "n_parameters": n_parameters,
                "modalities": list(modalities),
                "similarity": "cosine",
            },
            "task": record,
            "run_settings": {"limit": None},
            "environment": {},
            "units": {split: {"default": _units(score)} for split in splits},
        },
    }


def write_payload(root: Path, folder: str, payload: dict[str, Any], file: str = "") -> Path:
    """Write ``payload`` to ``root/<folder>/<revision>/<file or task>.json`` with the
    ``model_meta.json`` of its model beside it; the task file's path."""
    model = payload["harness"]["model"]
    path = root / folder / model["revision"] / f"{file or payload['task_name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")
    meta = {"name": model["name"], "revision": model["revision"], "harness": model}
    (path.parent / MODEL_META).write_text(json.dumps(meta), encoding="utf-8")
    return path


# Three models (one hostile name) on three tasks of two types; "small" ran only one task.
TABLE = {
    "alpha": {T1: 0.9, T2: 0.5, S1: 0.3},
    HOSTILE: {T1: 0.9, T2: 0.7},
    "small": {T1: 0.1},
}
TYPES = {T1: "retrieval", T2: "retrieval", S1: "zero_shot_classification"}
BORDA_ORDER = ["alpha", HOSTILE, "small"]
SIZES = {"alpha": 5_000_000, HOSTILE: 50_000_000, "small": 500_000_000}
MODALITIES = {"alpha": ("image", "text"), HOSTILE: ("image", "text"), "small": ("text",)}


def write_table(root: Path) -> Path:
    """Write :data:`TABLE` as result files, in a folder per model whose name is safe."""
    for index, (model, scores) in enumerate(TABLE.items()):
        for task, score in scores.items():
            payload = result_payload(
                model, task, score, n_parameters=SIZES[model], modalities=MODALITIES[model]
            )
            write_payload(root, f"model{index}", payload)
    return root
