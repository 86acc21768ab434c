"""Result folders written by hand for the leaderboard tests: any model name, any scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HOSTILE = "<script>alert(1)</script>"


def result_payload(
    model: str,
    task: str,
    task_type: str,
    scores: dict[str, list[dict[str, Any]]],
    *,
    n_parameters: int | None = 1_000_000,
    modalities: tuple[str, ...] = ("image", "text"),
    date: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    """A result file's JSON in the harness schema."""
    return {
        "task_name": task,
        "dataset_revision": "rev",
        "mteb_version": "2.26.24",
        "scores": scores,
        "evaluation_time": 1.0,
        "kg_co2_emissions": None,
        "date": date,
        "harness": {
            "harness_version": "0.1.0",
            "model": {
                "name": model,
                "revision": "r1",
                "embed_dim": 64,
                "n_parameters": n_parameters,
                "modalities": list(modalities),
                "similarity": "cosine",
            },
            "task": {"name": task, "type": task_type, "eval_splits": list(scores)},
            "run_settings": {},
            "environment": {},
        },
    }


def main_scores(value: float | None, **metrics: float) -> dict[str, list[dict[str, Any]]]:
    """A ``test`` split with one ``default`` subset."""
    return {"test": [{"main_score": value, "hf_subset": "default", "languages": [], **metrics}]}


def write_payload(root: Path, folder: str, payload: dict[str, Any], file: str = "") -> Path:
    """Write ``payload`` to ``root/<folder>/r1/<file or task>.json``; its path."""
    path = root / folder / "r1" / f"{file or payload['task_name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


# Three models (one hostile name) on three tasks of two types; "small" ran only one task.
TABLE = {
    "alpha": {"T1": 0.9, "T2": 0.5, "S1": 0.3},
    HOSTILE: {"T1": 0.9, "T2": 0.7},
    "small": {"T1": 0.1},
}
TYPES = {"T1": "retrieval", "T2": "retrieval", "S1": "clustering"}
BORDA_ORDER = ["alpha", HOSTILE, "small"]
SIZES = {"alpha": 5_000_000, HOSTILE: 50_000_000, "small": 500_000_000}
MODALITIES = {"alpha": ("image", "text"), HOSTILE: ("image", "text"), "small": ("text",)}


def write_table(root: Path) -> Path:
    """Write :data:`TABLE` as result files, in a folder per model whose name is safe."""
    for index, (model, scores) in enumerate(TABLE.items()):
        for task, score in scores.items():
            payload = result_payload(
                model,
                task,
                TYPES[task],
                main_scores(score),
                n_parameters=SIZES[model],
                modalities=MODALITIES[model],
            )
            write_payload(root, f"model{index}", payload)
    return root
