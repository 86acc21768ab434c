"""Run identity: what makes a result that result, so a stored one is reused only when it is.

A result is fixed by the task as it was scored (its definition with the resolved protocol and
main score), the data (the dataset's revision, or a local folder's content hash), the eval
splits, ``--limit``, whether bad inputs were skipped, and the model (its fingerprint: name,
revision, dtype, options and prompts; and its similarity).

Left out on purpose: the output and cache folders, progress bars, worker processes and the
local folder a dataset sits in (its content hash stands for it), and the device and batch size.
The last two can move a vector in its last float bits, but the embedding cache already treats
vectors made on any device with any batch size as the same vectors (its key is the fingerprint,
role, instruction and content), so a recomputation would be served the very same vectors.

Pure functions: plain data in, plain data out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Task-record keys that do not change a score: prose, catalog sizes, chance levels, where the
# data sits.
_DESCRIPTIVE_TASK_KEYS = ("description", "reference", "n_samples", "chance_level")
# How long a value may be when quoted in a difference, before it is cut.
_SHOWN_CHARS = 40


def run_identity(
    *,
    task: Mapping[str, Any],
    dataset_revision: str,
    local_dataset: bool,
    model: Mapping[str, Any],
    limit: int | None,
    skip_bad_inputs: bool,
    modality_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The identity of one task's result, with its ``digest``.

    ``task`` is the task record a result stores (definition, resolved protocol, main score),
    ``model`` the adapter's metadata as ``AdapterMeta.to_dict`` gives it, and
    ``modality_options`` its options for the task's input modalities (a video task's frame
    sampling: ``AdapterMeta.options_for``). A local dataset is known by its content hash
    (``dataset_revision``), not by the folder it sits in.
    """
    apart = (*_DESCRIPTIVE_TASK_KEYS, "dataset", "eval_splits")
    record = {key: value for key, value in task.items() if key not in apart}
    dataset = {key: value for key, value in task["dataset"].items() if key != "revision"}
    if local_dataset:
        dataset["path"] = None
    fields: dict[str, Any] = {
        "task": {**record, "dataset": dataset},
        "dataset_revision": dataset_revision,
        "eval_splits": list(task["eval_splits"]),
        "limit": limit,
        "skip_bad_inputs": skip_bad_inputs,
        "model_fingerprint": model["fingerprint"],
        "similarity": model["similarity"],
    }
    if modality_options:
        fields["model_modality_options"] = dict(modality_options)
    return {"digest": identity_digest(fields), **fields}


def identity_digest(fields: Mapping[str, Any]) -> str:
    """A stable short hash of identity fields (key order does not matter; ``digest`` is
    ignored)."""
    payload = {key: value for key, value in fields.items() if key != "digest"}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def identity_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Each field where ``stored`` differs from ``current``, as ``path: old -> new`` (dotted
    paths into nested fields, values cut short); empty when the identities match."""
    if stored.get("digest") == current.get("digest") == identity_digest(stored):
        return []
    changed = _differences(
        {k: v for k, v in stored.items() if k != "digest"},
        {k: v for k, v in current.items() if k != "digest"},
        "",
    )
    return changed or ["digest: the stored digest does not match its own fields"]


def _differences(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return [
            line
            for key in sorted(set(old) | set(new), key=str)
            for line in _differences(old.get(key), new.get(key), f"{path}{key}.")
        ]
    if old == new:
        return []
    return [f"{path.rstrip('.')}: {_shown(old)} -> {_shown(new)}"]


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
