"""mteb result files written by the installed mteb's own code, for tests.

:func:`write_mteb_result` saves a ``TaskResult`` with ``TaskResult.to_disk`` (and a
``model_meta.json`` from mteb's ``ModelMeta``) in mteb's layout,
``<root>/<org__model>/<revision>/<Task>.json``: the file a published result would be. mteb is
imported on first use (about 3 s). :data:`MTEB_FIXTURES` holds files of older mteb versions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Files written by mteb's own code at older versions (see its README.md): mteb 1.12's
# ``MTEBResults`` under ``mteb-1.12/``, and the layout before 1.11 under ``mteb-before-1.11/``.
MTEB_FIXTURES = Path(__file__).parent / "fixtures" / "mteb"
# The date every fixture records, so that files are the same from run to run.
FIXTURE_DATE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

SplitScores = float | Sequence[Mapping[str, Any]]


def write_mteb_result(
    root: Path,
    model: str,
    revision: str,
    task: str,
    scores: Mapping[str, SplitScores],
    *,
    model_meta: bool = True,
    dataset_revision: str | None = None,
    n_parameters: int | None = None,
    embed_dim: int | None = None,
    modalities: Sequence[str] = ("image", "text"),
) -> Path:
    """Write mteb's result file of ``model`` at ``revision`` on built-in ``task`` under
    ``root`` and return its path.

    ``scores`` maps each split to its main score (one ``default`` subset whose main metric,
    the task's, has that value) or to mteb's full list of subset entries (``hf_subset``,
    ``languages``, ``main_score`` and metrics). ``dataset_revision`` defaults to the task
    definition's. With ``model_meta``, ``model_meta.json`` is written beside it.
    """
    from mteb.results import TaskResult

    from harness.tasks.registry import builtin_tasks, task_record

    definition = builtin_tasks()[task]
    metric = str(task_record(definition)["main_score"])
    result = TaskResult.model_validate(
        {
            "dataset_revision": dataset_revision or definition.dataset.revision,
            "task_name": task,
            "mteb_version": _mteb_version(),
            "scores": {
                split: _entries(value, metric, definition.languages)
                for split, value in scores.items()
            },
            "evaluation_time": 1.0,
            "kg_co2_emissions": None,
            "date": FIXTURE_DATE,
        }
    )
    folder = root / model.replace("/", "__") / revision
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task}.json"
    result.to_disk(path)
    if model_meta:
        meta = _model_meta(model, revision, n_parameters, embed_dim, list(modalities))
        (folder / "model_meta.json").write_text(json.dumps(meta, default=str), encoding="utf-8")
    return path


def _entries(value: SplitScores, metric: str, languages: list[str]) -> list[dict[str, Any]]:
    """A split's subset entries: given in full, or one ``default`` subset of a main score."""
    if isinstance(value, int | float):
        return [
            {"main_score": value, metric: value, "hf_subset": "default", "languages": languages}
        ]
    return [dict(entry) for entry in value]


def _mteb_version() -> str:
    from importlib.metadata import version

    return version("mteb")


def _model_meta(
    name: str, revision: str, n_parameters: int | None, embed_dim: int | None, modalities: list[str]
) -> dict[str, Any]:
    """``ModelMeta.to_dict()`` as mteb saves it beside its results."""
    from mteb.models.model_meta import ModelMeta, ScoringFunction

    meta = ModelMeta(
        loader=None,
        name=name,
        revision=revision,
        release_date=None,
        languages=None,
        n_parameters=n_parameters,
        memory_usage_mb=None,
        max_tokens=None,
        embed_dim=embed_dim,
        license=None,
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=[],
        similarity_fn_name=ScoringFunction.COSINE,
        use_instructions=False,
        training_datasets=None,
        modalities=modalities,  # type: ignore[arg-type]  # mteb's names, checked by ModelMeta
    )
    return meta.to_dict()
