"""The result file: a superset of mteb's ``TaskResult`` JSON, written atomically.

Layout, as mteb's: ``<output>/<org__model>/<revision>/<Task>.json`` with ``model_meta.json``
beside the task files. The extra ``harness`` block records the run's settings, versions and
the model fingerprint; its model, task, settings and identity parts are the typed records of
``harness.engine.records``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import re
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError, field_validator

import harness
from harness.core.adapter import AdapterMeta
from harness.core.errors import HarnessError
from harness.core.modalities import modality, ordered
from harness.engine.atomic import write_atomic
from harness.engine.main_score import split_score
from harness.engine.records import (
    IdentityRecord,
    ModelRecord,
    PhasesRecord,
    SettingsRecord,
    TaskRecord,
)
from harness.engine.targets import folder_target
from harness.scoring.bootstrap import Interval, UnitScores

SplitScores = dict[str, Any]


SCORE_DECIMALS = 6
# A file that `harness leaderboard` leaves in every site it builds; result scans skip such folders.
SITE_MARKER = ".harness-leaderboard"


def _rounded(value: Any, decimals: int) -> Any:
    """Round every float in nested dicts and lists, as mteb rounds scores when it saves them."""
    if isinstance(value, float):
        return round(value, decimals)
    if isinstance(value, dict):
        return {key: _rounded(item, decimals) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item, decimals) for item in value]
    return value


class HarnessBlock(BaseModel):
    """What the harness adds to mteb's schema: how the numbers were made."""

    harness_version: str
    model: ModelRecord
    task: TaskRecord
    run_settings: SettingsRecord
    environment: dict[str, str]
    encoding: dict[str, Any] = Field(default_factory=dict)
    # What a reader should know about these numbers (all-zero or constant vectors, ...).
    warnings: list[str] = Field(default_factory=list)
    skipped_inputs: dict[str, list[str]] = Field(default_factory=dict)
    # {split: {subset: interval}}: the main score's bootstrap interval (see `interval_payload`).
    intervals: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    # {split: {subset: units}}: what the main score is recomputed from (see `units_payload`).
    units: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    # What makes this result this result (`harness.engine.identity.run_identity`); None in files of
    # older harness versions, which are therefore never reused.
    identity: IdentityRecord | None = None
    # {split: where its time went} (`harness.engine.records.PhasesRecord`); descriptive, absent in
    # files of older harness versions.
    phases: dict[str, PhasesRecord] = Field(default_factory=dict, exclude_if=lambda p: not p)


def units_payload(units: UnitScores) -> dict[str, Any]:
    """Units as JSON: floats at the 6 decimals of the scores, integer columns as they are."""
    return {
        "statistic": units.statistic,
        "ids_digest": units.ids_digest,
        "n_units": len(units),
        "columns": {
            name: np.round(values, SCORE_DECIMALS).tolist()
            if np.issubdtype(values.dtype, np.floating)
            else values.tolist()
            for name, values in units.columns.items()
        },
    }


def interval_payload(interval: Interval, units: UnitScores) -> dict[str, Any]:
    """A bootstrap interval as stored in the result file."""
    return {
        "low": interval.low,
        "high": interval.high,
        "level": interval.level,
        "resamples": interval.resamples,
        "seed": interval.seed,
        "method": interval.method,
        "statistic": units.statistic,
        "n_units": len(units),
    }


class ResultFile(BaseModel):
    """One task's scores for one model, readable by ``mteb.results.TaskResult.from_disk``."""

    task_name: str
    dataset_revision: str
    mteb_version: str
    scores: dict[str, list[SplitScores]]
    # Strict: a boolean is not a number (lax parsing would read true as 1.0).
    evaluation_time: float = Field(strict=True)
    kg_co2_emissions: float | None = Field(default=None, strict=True)
    date: dt.datetime
    harness: HarnessBlock

    @field_validator("scores")
    @classmethod
    def _round_scores(cls, scores: dict[str, list[SplitScores]]) -> dict[str, list[SplitScores]]:
        """Scores carry mteb's 6 decimals, as mteb rounds them when it saves a result."""
        return _rounded(scores, SCORE_DECIMALS)

    def unit_scores(self, split: str, subset: str) -> UnitScores | None:
        """The stored units of one subset, or None when the run stored none."""
        payload = self.harness.units.get(split, {}).get(subset)
        if payload is None:
            return None
        try:
            return UnitScores(
                payload["statistic"],
                {name: np.asarray(values) for name, values in payload["columns"].items()},
                payload["ids_digest"],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise HarnessError(
                f"stored units of {split}/{subset} are malformed ({error})"
            ) from error

    def main_scores(self) -> dict[str, float | None]:
        """``{split: main score}``: the ``default`` subset's, else the mean over the subsets,
        as the leaderboard and mteb's ``TaskResult.get_score`` take it."""
        return {split: split_score(entries) for split, entries in self.scores.items()}


def environment(modalities: Iterable[str] = ()) -> dict[str, str]:
    """Versions of Python and the libraries that shape the numbers, and the pipeline of each
    of ``modalities`` that has one (``audio_decoder``, ``audio_resampler``...)."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "transformers", "datasets", "mteb", "numpy", "scikit-learn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    for name in ordered(modalities):
        pipeline = modality(name).pipeline
        if pipeline is not None:
            versions |= {f"{name}_{part}": what for part, what in pipeline().items()}
    return versions


# The mteb release whose protocols the scorers follow (tests/test_catalog_drift.py and the
# cross-checks run against it); mteb itself is an optional extra, not needed to score.
MTEB_PROTOCOL_VERSION = "2.26.24"


def mteb_version() -> str:
    """The mteb version whose protocol the scores follow (whether or not mteb is installed)."""
    return MTEB_PROTOCOL_VERSION


def harness_version() -> str:
    """The version of this package."""
    return harness.__version__


def _safe_part(text: str) -> str:
    """A path component that cannot climb out of its folder."""
    cleaned = re.sub(r"[^A-Za-z0-9._=+-]", "_", text.replace("/", "__"))
    return cleaned.lstrip(".") or "_"


def canonical_folder(output: Path, name: str, revision: str) -> Path:
    """``<output>/<org__model>/<revision>`` for a model name and revision."""
    return output / _safe_part(name) / _safe_part(revision)


def model_folder(output: Path, meta: AdapterMeta) -> Path:
    """``<output>/<org__model>/<revision>`` for a model."""
    return canonical_folder(output, meta.name, meta.revision)


def result_file_name(task_name: str) -> str:
    """The file name of a task's result (``<Task>.json``, the name made path-safe)."""
    return f"{_safe_part(task_name)}.json"


def result_path(output: Path, meta: AdapterMeta, task_name: str) -> Path:
    """Where one task's result for one model lives."""
    return model_folder(output, meta) / result_file_name(task_name)


def _finite_or_none(value: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(item) for item in value]
    return value


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON atomically and durably (``harness.engine.atomic``), with the umask's permissions.

    A disk that is full or read-only is a ``HarnessError`` naming the path; the file already
    there, if any, is left as it was.
    """
    text = json.dumps(_finite_or_none(payload), indent=2, allow_nan=False, default=str)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (text + "\n").encode("utf-8"))
    except OSError as error:
        raise HarnessError(
            f"cannot write {path}: {error.strerror or error}. Free space on that disk, or write "
            "to a folder on another one; the files written before are intact."
        ) from error


def write_result(path: Path, result: ResultFile) -> None:
    """Write a result file atomically."""
    write_json_atomic(path, result.model_dump(mode="json"))


# Limits on JSON read from result folders: a result file is a few kB, nested about 6 deep.
MAX_JSON_BYTES = 20 * 1024 * 1024
MAX_JSON_DEPTH = 64
# A JSON string (an unrolled loop: linear even when a string never ends), and JSON's brackets.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _too_deep(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``."""
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > limit:
            return True
    return False


# Integers longer than this are refused while parsing (no count or size in a result needs more).
MAX_INT_DIGITS = 18


class _Refused(ValueError):
    """A JSON construct refused while parsing; its message quotes nothing from the file."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"bare {name} is not valid JSON (write null instead)")


def _nan_as_null(name: str) -> Any:
    if name == "NaN":
        return None
    return _refuse_constant(name)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are unique: a repeated key would silently hide a value."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Refused("a key appears twice in one object")
    return result


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("a number is too large to be a finite float")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def schema_summary(error: ValidationError) -> str:
    """The first few schema errors in one line: where and what, never the offending value."""
    parts = [
        f"{'.'.join(str(p)[:40] for p in e['loc']) or '(top)'}: {e['msg']}"
        for e in error.errors()[:5]
    ]
    return "does not match the result schema (" + "; ".join(parts) + ")"


def read_json(path: Path, *, nan_as_null: bool = False) -> Any:
    """Parse a JSON file, refusing huge files and deep nesting before parsing anything.

    Bare ``NaN`` and infinities are refused; with ``nan_as_null`` a bare ``NaN`` reads as
    ``None`` (mteb writes an undefined metric so; a harness file never does)."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise HarnessError(
                f"{path}: refused, {size / 2**20:.1f} MB is over the "
                f"{MAX_JSON_BYTES // 2**20} MB limit for a JSON file of results"
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise HarnessError(f"{path}: not UTF-8 text (byte {error.start})") from error
    except OSError as error:
        raise HarnessError(f"{path}: cannot be read ({error.strerror})") from error
    if _too_deep(text, MAX_JSON_DEPTH):
        raise HarnessError(f"{path}: refused, JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(
            text,
            parse_constant=_nan_as_null if nan_as_null else _refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )
    except _Refused as error:
        raise HarnessError(f"{path}: not valid JSON ({error})") from error
    except json.JSONDecodeError as error:
        # Only the decoder's own words and the position: never text from the file.
        what = error.msg.split(":")[0]
        where = f"line {error.lineno}, column {error.colno}"
        raise HarnessError(f"{path}: not valid JSON ({what} at {where})") from error
    except ValueError as error:
        raise HarnessError(f"{path}: not valid JSON") from error


def read_result(path: Path) -> ResultFile:
    """Read and validate a result file (size and nesting limited, as ``read_json``)."""
    payload = read_json(path)
    try:
        return ResultFile.model_validate(payload)
    except ValidationError as error:
        raise HarnessError(f"{path}: not a valid result file; {schema_summary(error)}") from error


# mteb's ScoringFunction spellings.
MTEB_SIMILARITY_NAMES = {"cosine": "cosine", "dot": "dot", "maxsim": "MaxSim"}


def model_meta_payload(meta: AdapterMeta) -> dict[str, Any]:
    """``model_meta.json`` in the fields of mteb's ``ModelMeta``, plus the harness fingerprint."""
    return {
        "name": meta.name,
        "revision": meta.revision,
        "release_date": None,
        "languages": None,
        "n_parameters": meta.n_parameters,
        "memory_usage_mb": None,
        "max_tokens": None,
        "embed_dim": meta.embed_dim,
        "license": None,
        "open_weights": True,
        "public_training_code": None,
        "public_training_data": None,
        "framework": ["PyTorch"],
        "similarity_fn_name": MTEB_SIMILARITY_NAMES[meta.similarity],
        "use_instructions": meta.uses_instructions,
        "training_datasets": None,
        "modalities": list(meta.modalities),
        "loader": None,
        "harness": meta.to_dict(),
    }


def ensure_writable(folder: Path) -> None:
    """Fail early, before any encoding, when results could not be written (see
    ``harness.engine.targets``: a link, a file or an unwritable folder is refused)."""
    folder_target(folder, "--output")
