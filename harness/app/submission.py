"""Files validated results under the leaderboard's layout: ``<to>/<org__model>/<revision>/``.

Nothing is written unless the whole submission is valid, no destination file with other
content would be replaced (``overwrite`` allows that), and no model revision already filed was
made with another fingerprint (never allowed: that is another model under the same name and
revision). Each file is written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.engine.records import ModelRecord
from harness.engine.results import canonical_folder, read_json, write_json_atomic
from harness.engine.validation import MODEL_META, Validation, validate


class InvalidSubmission(HarnessError):
    """A submission that failed validation: the problems are the message; exit status 1."""

    exit_code = 1


@dataclass(frozen=True)
class Filed:
    """One destination file and what happened to it: ``added``, ``replaced`` or ``unchanged``."""

    path: Path
    status: str


def submit(source: Path, destination: Path, *, overwrite: bool = False) -> list[Filed]:
    """Validate the results at ``source``, then file them under ``destination``."""
    validation = validate(source)
    if not validation.ok:
        problems = "\n".join(str(problem) for problem in validation.problems)
        raise InvalidSubmission(
            f"submission refused, {len(validation.problems)} problem(s):\n{problems}"
        )
    plan = _plan(validation, destination)
    filed = [Filed(path, _status(path, payload, overwrite)) for path, payload in plan.items()]
    for entry in filed:
        if entry.status != "unchanged":
            write_json_atomic(entry.path, plan[entry.path])
    return filed


def _plan(validation: Validation, destination: Path) -> dict[Path, Any]:
    """Destination path to content, for every result and its folder's model metadata."""
    plan: dict[Path, Any] = {}
    sources: dict[Path, Path] = {}
    for file, result in validation.results:
        model = result.harness.model
        folder = canonical_folder(destination, str(model.name), str(model.revision))
        _check_fingerprint(folder, model, file)
        # Known task names are built-in ones, so the file name stays inside ``folder``.
        for source, target in (
            (file, folder / f"{result.task_name}.json"),
            (file.parent / MODEL_META, folder / MODEL_META),
        ):
            payload = read_json(source)
            if target in plan and plan[target] != payload:
                raise HarnessError(
                    f"{source} and {sources[target]} would both be filed as {target} with "
                    "different content. Submit one of them."
                )
            plan[target], sources[target] = payload, source
    return plan


def _check_fingerprint(folder: Path, model: ModelRecord, source: Path) -> None:
    """Refuse a result whose model name and revision are filed with another fingerprint."""
    meta_file = folder / MODEL_META
    if meta_file.is_symlink() or not meta_file.exists():
        return
    try:
        block = read_json(meta_file).get("harness")
        filed = block.get("fingerprint") if isinstance(block, dict) else None
    except (HarnessError, AttributeError):
        filed = None
    if filed != model.fingerprint:
        raise HarnessError(
            f"{source}: {model.name} at revision {model.revision} is already filed in "
            f"{folder} with another model fingerprint (other dtype, prompts or options). "
            "Nothing was filed. Submit it under the model's own revision, or remove the filed "
            "folder first if it is to be replaced."
        )


def _status(target: Path, payload: Any, overwrite: bool) -> str:
    """What filing ``payload`` at ``target`` does; refuses to replace other content silently."""
    if not target.exists():
        return "added"
    try:
        if read_json(target) == payload:
            return "unchanged"
    except HarnessError:
        pass
    if not overwrite:
        raise HarnessError(
            f"{target} already exists with different content. Nothing was filed. "
            "Pass --overwrite to replace it."
        )
    return "replaced"
