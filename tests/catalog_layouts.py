"""Catalog layout tests, shared: group catalog entries by dataset layout, score one per layout.

A *layout* is everything about an entry that decides how its data is read: the task type, the
configs, splits and columns it maps, the eval splits, and the protocol keys that name data
(subsets, label columns...). Entries that share a layout share one generated fixture; each
distinct layout is scored end to end through ``harness run --data-dir TASK=FIXTURE``, which
reads the fixture with ``load_dataset`` and the entry's own configs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.tasks.definition import TaskDefinition
from harness.tasks.registry import builtin_tasks, demo_tasks
from tests.dataset_fixtures import read_result_json, run_cli

# Protocol keys that change which configs, splits or columns are read (the rest are constants).
DATA_PROTOCOL_KEYS = frozenset(
    {
        "subsets",
        "split_subsets",
        "dir_subsets",
        "label_column",
        "image_column",
        "text_column",
        "image_columns",
        "text_columns",
        "columns",
        "configs",
        "source",
        "style",
        "layout",
        "paired",
        "where",
        "candidates",
        # MAEB's: the splits a cross-validated probe reads, and mteb's reshaping of the labels
        "cross_validation_folds",
        "exclude_labels",
        "label_ids",
        "stratified_subsample",
        # MVEB's: the split a probe trains on (`test` when it cross-validates its one split)
        "train_split",
        # retrieval: each subset's own configs (CommonVoice, ViDoRe v3), and blank page texts kept
        "config_subsets",
        "keep_blank_text",
    }
)


def catalog_tasks(*types: str, audio: bool = False, video: bool = False) -> list[TaskDefinition]:
    """The built-in entries that are not demo tasks, of the given types (all when none given):
    those without audio or video inputs (MIEB, ViDoRe...), with ``audio`` those with audio but
    no video (MAEB), with ``video`` those with video, audio or not (MVEB)."""
    demo = set(demo_tasks())
    return [
        task
        for name, task in sorted(builtin_tasks().items())
        if name not in demo
        and (not types or task.type in types)
        and ("video" in task.input_modalities) == video
        and (video or ("audio" in task.input_modalities) == audio)
    ]


def layout_key(task: TaskDefinition) -> str:
    """A string that two entries share exactly when their data is read the same way."""
    data_protocol = {k: v for k, v in task.protocol.items() if k in DATA_PROTOCOL_KEYS}
    return json.dumps(
        {
            "type": task.type,
            "category": task.category,
            "configs": task.dataset.configs,
            "splits": task.dataset.splits,
            "columns": task.dataset.columns,
            "eval_splits": task.eval_splits,
            "protocol": data_protocol,
        },
        sort_keys=True,
    )


def distinct_layouts(tasks: Iterable[TaskDefinition]) -> dict[str, list[TaskDefinition]]:
    """Entries grouped by layout; the first entry of each group stands for the group."""
    groups: dict[str, list[TaskDefinition]] = {}
    for task in tasks:
        groups.setdefault(layout_key(task), []).append(task)
    return groups


def layout_params(tasks: Iterable[TaskDefinition]) -> list[Any]:
    """``pytest.param`` per distinct layout, its id naming every entry that shares it."""
    import pytest

    return [
        pytest.param(group[0], id="+".join(task.name for task in group))
        for group in distinct_layouts(tasks).values()
    ]


def score_on_fixture(
    task: TaskDefinition,
    write_fixture: Callable[[TaskDefinition, Path], Path],
    model_dir: Path,
    workdir: Path,
) -> dict[str, Any]:
    """Write ``task``'s fixture, run the built-in entry on it, and return the result JSON."""
    fixture = write_fixture(task, workdir / "fixture")
    code = run_cli(model_dir, task.name, workdir, "--data-dir", f"{task.name}={fixture}")
    assert code == 0, f"harness run failed on the {task.name} layout"
    return read_result_json(workdir, task.name)
