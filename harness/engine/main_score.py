"""A result file's main score, as mteb's ``TaskResult.get_score`` and the leaderboard take it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def split_score(entries: Sequence[Mapping[str, Any]]) -> float | None:
    """A split's main score: its ``default`` subset, else the mean over its subsets (mteb).

    Harness files put the overall score in ``default`` and per-language subsets beside it;
    mteb's multilingual files have only per-language subsets, which mteb averages.
    """
    for entry in entries:
        if entry.get("hf_subset", "default") == "default":
            return finite_number(entry.get("main_score"))
    values = [finite_number(entry.get("main_score")) for entry in entries]
    if not values or None in values:
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def task_score(
    scores: Mapping[str, Sequence[Mapping[str, Any]]], eval_splits: Sequence[str]
) -> float | None:
    """The mean main score over ``eval_splits``; ``None`` when one of them has no score."""
    splits = list(eval_splits) or list(scores)
    values = [split_score(scores[split]) if split in scores else None for split in splits]
    if not values or None in values:
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]
