"""One loaded dataset serves every task that shares it: an in-process memo of loaded splits.

CIFAR10's linear probe, zero-shot and clustering tasks read one dataset; the memo hands each
the ``datasets`` object the first one loaded, keyed by what identifies the rows: the dataset's
path, its revision (for a local folder, its content hash), the config and the split. A loaded
split is memory-mapped Arrow data, so holding it costs little.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Key = tuple[str, str | None, str, str]
Loaded = TypeVar("Loaded")

_MEMO: dict[Key, Any] = {}


def memoised(key: Key, load: Callable[[], Loaded]) -> Loaded:
    """The split ``key`` (path, revision, config, split) names: loaded once, then shared."""
    if key not in _MEMO:
        _MEMO[key] = load()
    result: Loaded = _MEMO[key]
    return result
