"""mteb's own result files, read as external results: every layout mteb has written.

- before 1.11: ``mteb_dataset_name``, ``dataset_revision`` and ``mteb_version`` (maybe absent)
  at the top, one key per split holding its metrics (or one object per language subset), an
  ``evaluation_time`` per split, similarity metrics grouped in objects (``cos_sim: {...}``),
  and sometimes no ``main_score`` (the task's main metric is then taken, as mteb does);
- 1.11 to 1.x ``TaskResult`` (``MTEBResults`` until 1.12): ``task_name``,
  ``scores: {split: [{hf_subset, languages, main_score, ...}]}``, ``evaluation_time``, later
  ``kg_co2_emissions``. Files older than 1.12.48 group the metrics of mteb's text
  ``PairClassification`` tasks in objects, which mteb's loader flattens; no built-in task is of
  that type (ours are mteb's audio and video pair classification, added later), so such
  objects are kept as they are;
- 2.x ``TaskResult``: the same, with ``date`` (a timestamp) and ``mteb_version`` per subset.

:func:`read_mteb_result` normalises all of them to the 1.11+ layout (:class:`MtebResult`), as
``mteb.results.TaskResult.from_disk`` does. A file is read with the limits of
:func:`harness.engine.results.read_json` and :mod:`harness.engine.validation`'s size bounds.
The model comes from ``model_meta.json`` beside the file, else from mteb's folder names
(``<org__model>/<revision>/<Task>.json``): :func:`external_model`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.core.errors import HarnessError
from harness.engine.main_score import finite_number
from harness.engine.results import read_json, schema_summary
from harness.engine.validation import (
    MAX_METRICS,
    MAX_SPLITS,
    MAX_SUBSETS,
    MODEL_META,
    metric_range,
)
from harness.tasks.definition import TaskDefinition

LAYOUT_BEFORE_1_11 = "mteb<1.11"
LAYOUT_1X = "mteb 1.x TaskResult"
LAYOUT_2X = "mteb 2.x TaskResult"
LAYOUT_UNKNOWN_VERSION = "mteb TaskResult"
# mteb < 1.11 grouped each similarity's metrics in an object; 1.11+ name them
# ``<similarity>_<metric>`` (mteb's ScoringFunction spellings).
SIMILARITY_GROUPS = {
    "cos_sim": "cosine",
    "manhattan": "manhattan",
    "euclidean": "euclidean",
    "dot": "dot",
    "max": "max",
    "similarity": "similarity",
}
# Objects inside a split of a file before 1.11 that are metrics, not language subsets (mteb's
# list: "similarity" is not in it).
NOT_SUBSETS = frozenset({"v_measures", "cos_sim", "euclidean", "manhattan", "dot", "max"})
# The release numbers a version string starts with (``1.1.2.dev0`` -> 1, 1, 2).
_RELEASE = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")
FIX = (
    "pass a result file written by mteb (`<org__model>/<revision>/<Task>.json`), or a harness "
    "result from `harness run`"
)


class MtebResult(BaseModel):
    """One mteb result file, normalised to the 1.11+ layout."""

    task_name: str
    dataset_revision: str | None
    mteb_version: str | None
    scores: dict[str, list[dict[str, Any]]]
    evaluation_time: float | None
    layout: str


@dataclass(frozen=True)
class ExternalModel:
    """The model of an mteb result: from its ``model_meta.json``, else its folder names."""

    name: str
    revision: str
    n_parameters: int | None = None
    embed_dim: int | None = None
    modalities: list[str] = field(default_factory=list)


def min_version(version: Any) -> tuple[int, int, int] | None:
    """The release numbers of the lowest mteb version a stored ``mteb_version`` names (mteb
    writes ranges such as ``2.12.16-2.15.4`` for merged results); ``None`` when absent or not
    a version."""
    match = _RELEASE.match(version) if isinstance(version, str) else None
    if match is None:
        return None
    major, minor, patch = (int(part or 0) for part in match.groups())
    return major, minor, patch


def mteb_layout(payload: Mapping[str, Any]) -> str | None:
    """The layout of ``payload`` when it is an mteb result file without a harness block."""
    if not isinstance(payload, Mapping) or "harness" in payload:
        return None
    if isinstance(payload.get("mteb_dataset_name"), str):
        return LAYOUT_BEFORE_1_11
    if not isinstance(payload.get("task_name"), str) or not isinstance(
        payload.get("scores"), Mapping
    ):
        return None
    version = min_version(payload.get("mteb_version"))
    if version is None:
        return LAYOUT_UNKNOWN_VERSION
    return LAYOUT_2X if version[0] >= 2 else LAYOUT_1X


def read_mteb_result(path: Path) -> MtebResult:
    """Read an mteb result file of any layout, normalised as mteb's loader normalises it."""
    try:
        payload = read_json(path, nan_as_null=True)  # mteb writes an undefined metric as NaN
    except HarnessError as error:
        raise HarnessError(f"{error}. Fix: {FIX}") from error
    layout = mteb_layout(payload) if isinstance(payload, dict) else None
    if layout is None:
        raise HarnessError(
            f"{path}: not an mteb result file (no `task_name` and `scores`, nor the "
            f"`mteb_dataset_name` of mteb before 1.11, or it has a harness block). Fix: {FIX}"
        )
    try:
        if layout == LAYOUT_BEFORE_1_11:
            data = _from_before_1_11(payload)
        else:
            data = {key: payload.get(key) for key in MtebResult.model_fields if key != "layout"}
        result = MtebResult.model_validate({**data, "layout": layout})
    except ValidationError as error:
        raise HarnessError(
            f"{path}: {layout} file that {schema_summary(error)}. Fix: {FIX}"
        ) from error
    except ValueError as error:
        raise HarnessError(
            f"{path}: {layout} file that cannot be read: {error}. Fix: {FIX}"
        ) from error
    _check_sizes(path, result)
    for entries in result.scores.values():
        for entry in entries:
            _check_entry(path, entry)
            entry.pop("mteb_version", None)  # the file's version is the result's
    return result


def _from_before_1_11(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A file before 1.11 in the 1.11 layout: ``{split: [subset scores]}``, similarity
    groups renamed, the main score filled in from the task's main metric where absent."""
    data = dict(payload)
    task_name = data.pop("mteb_dataset_name")
    revision = data.pop("dataset_revision", None)
    version = data.pop("mteb_version", None)
    if len(data) > MAX_SPLITS:
        raise ValueError(f"{len(data)} splits; at most {MAX_SPLITS}")
    splits: dict[str, dict[str, Any]] = {}
    evaluation_time: float | None = None
    for split, scores in data.items():
        if not isinstance(scores, dict):
            raise ValueError(f"split {split[:40]!r} is not an object of scores")
        scores = dict(scores)
        seconds = finite_number(scores.pop("evaluation_time", None))
        if seconds is not None:
            evaluation_time = (evaluation_time or 0.0) + seconds
        splits[split] = scores
    nested = any(
        isinstance(value, dict)
        for scores in splits.values()
        for key, value in scores.items()
        if key not in NOT_SUBSETS
    )
    metric = _main_metric(str(task_name))
    languages = _languages(str(task_name))
    converted: dict[str, list[dict[str, Any]]] = {}
    for split, scores in splits.items():
        subsets = scores if nested else {"default": scores}
        if len(subsets) > MAX_SUBSETS:
            raise ValueError(
                f"split {split[:40]!r} has {len(subsets)} subsets; at most {MAX_SUBSETS}"
            )
        converted[split] = [
            _subset_from_before_1_11(split, subset, values, metric, languages)
            for subset, values in subsets.items()
        ]
    return {
        "task_name": task_name,
        "dataset_revision": revision,
        "mteb_version": version,
        "scores": converted,
        "evaluation_time": evaluation_time,
    }


def _subset_from_before_1_11(
    split: str, subset: str, values: Any, metric: str | None, languages: list[str]
) -> dict[str, Any]:
    """One subset's scores with its similarity groups renamed and its main score set."""
    if not isinstance(values, dict):
        raise ValueError(f"split {split[:40]!r}, subset {subset[:40]!r} is not an object of scores")
    scores = dict(values)
    for old, new in SIMILARITY_GROUPS.items():
        group = scores.pop(old, None)
        if isinstance(group, dict):
            scores.update({f"{new}_{key}": value for key, value in group.items()})
    if "main_score" not in scores:
        scores["main_score"] = scores.get(metric) if metric is not None else None
    return {**scores, "hf_subset": subset, "languages": languages}


def _builtin(task_name: str) -> Any:
    """The built-in definition of ``task_name``, if any."""
    from harness.tasks.registry import builtin_tasks

    return builtin_tasks().get(task_name)


def _main_metric(task_name: str) -> str | None:
    """The main metric of a built-in task (``None`` for any other)."""
    from harness.tasks.registry import task_record

    task = _builtin(task_name)
    return None if task is None else str(task_record(task)["main_score"])


def _languages(task_name: str) -> list[str]:
    """A built-in task's languages (mteb gives a subset it cannot map all the task's)."""
    task = _builtin(task_name)
    return list(task.languages) if task is not None else []


def _check_sizes(path: Path, result: MtebResult) -> None:
    """The file holds at most :data:`MAX_SPLITS` splits of :data:`MAX_SUBSETS` subsets of
    :data:`MAX_METRICS` metrics, as a harness result may."""
    problem = ""
    if len(result.scores) > MAX_SPLITS:
        problem = f"{len(result.scores)} splits; at most {MAX_SPLITS}"
    for split, entries in result.scores.items():
        if problem:
            break
        if len(entries) > MAX_SUBSETS:
            problem = f"split {split[:40]!r} has {len(entries)} subsets; at most {MAX_SUBSETS}"
        elif any(len(entry) > MAX_METRICS for entry in entries):
            problem = f"split {split[:40]!r} has a subset of more than {MAX_METRICS} metrics"
    if problem:
        raise HarnessError(f"{path}: refused, {problem}. Fix: {FIX}")


def _check_entry(path: Path, entry: Mapping[str, Any]) -> None:
    """mteb's shape of a subset: ``hf_subset`` (text), ``languages`` (a list), ``main_score``."""
    if (
        not isinstance(entry.get("hf_subset"), str)
        or not isinstance(entry.get("languages"), list)
        or "main_score" not in entry
    ):
        raise HarnessError(
            f"{path}: a subset of its scores lacks mteb's `hf_subset`, `languages` or "
            f"`main_score`. Fix: {FIX}"
        )


def external_problems(result: MtebResult, task: TaskDefinition | None) -> list[str]:
    """Why an mteb result cannot be ranked beside harness results of ``task`` (its built-in
    definition, ``None`` when there is none); empty when it can. The dataset revision must be
    the definition's, every eval split present, and each of their subsets' main score a finite
    number within its metric's range that equals the metric where the subset has it."""
    from harness.tasks.loading import dataset_revision
    from harness.tasks.registry import task_record

    if task is None:
        return [f"task {result.task_name[:60]!r} is not a built-in task (see `harness tasks`)"]
    try:
        expected = dataset_revision(task)
    except HarnessError as error:
        return [f"cannot check the dataset revision: {error}"]
    problems = []
    if result.dataset_revision != expected:
        shown = None if result.dataset_revision is None else result.dataset_revision[:60]
        problems.append(
            f"dataset revision {shown!r} does not match task {task.name}'s {expected!r}"
        )
    missing = [split for split in task.eval_splits if split not in result.scores]
    if missing:
        problems.append(
            f"eval split(s) {', '.join(missing)} missing (task {task.name} evaluates on "
            f"{', '.join(task.eval_splits)})"
        )
    metric = str(task_record(task)["main_score"])
    for split in task.eval_splits:
        for entry in result.scores.get(split, []):
            problem = _main_score_problem(entry, metric)
            if problem:
                subset = str(entry["hf_subset"])[:40]
                problems.append(f"split {split!r}, subset {subset!r}: {problem}")
    return problems


def _main_score_problem(entry: Mapping[str, Any], metric: str) -> str:
    """Why one subset's main score cannot be ranked ('' when it can)."""
    value = finite_number(entry.get("main_score"))
    if value is None:
        return f"main score ({metric}) is not a finite number"
    low, high = metric_range(metric)
    if not low <= value <= high:
        return f"main score {metric} = {value} is outside [{low:g}, {high:g}]"
    if metric in entry and entry[metric] != value:
        return f"main score {value} is not the value of the metric it names, {metric}"
    return ""


def external_model(result_file: Path) -> ExternalModel:
    """The model of an mteb result: ``model_meta.json`` beside it (mteb 1.x or 2.x
    ``ModelMeta``), else the folder names ``<org__model>/<revision>/``; its name or
    revision missing from the metadata is taken from the folders too."""
    folder = result_file.parent
    meta_file = folder / MODEL_META
    fallback = ExternalModel(folder.parent.name.replace("__", "/"), folder.name)
    if meta_file.is_symlink():
        raise HarnessError(
            f"{meta_file}: a symbolic link (not followed, not read). Fix: copy the real file "
            "into the results folder"
        )
    if not meta_file.is_file():
        return fallback
    meta = read_json(meta_file)
    if not isinstance(meta, dict):
        raise HarnessError(f"{meta_file}: not a JSON object. Fix: keep mteb's model_meta.json")
    name, revision = meta.get("name"), meta.get("revision")
    modalities = meta.get("modalities")
    return ExternalModel(
        name=name if isinstance(name, str) and name else fallback.name,
        revision=revision if isinstance(revision, str) and revision else fallback.revision,
        n_parameters=_count(meta.get("n_parameters")),
        embed_dim=_count(meta.get("embed_dim")),
        modalities=[str(m) for m in modalities if isinstance(m, str)]
        if isinstance(modalities, list)
        else [],
    )


def _count(value: Any) -> int | None:
    """A positive whole number, or ``None`` (mteb writes null when unknown)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value
