"""The encoder contract that task types use: raw items in, vectors out.

Task types never build an encoder; the engine hands them one
(:class:`harness.engine.encoding.BatchEncoder`), which batches, caches and shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from harness.core.adapter import Adapter, Role
from harness.core.items import RawItem


@dataclass(frozen=True)
class Encoded:
    """Vectors for a list of items; ``kept[i]`` is false for an item skipped as bad input.

    ``vectors`` is a float32 ``(n, d)`` matrix, or for a multi-vector adapter (similarity
    ``maxsim``) an object array of n float32 ``(tokens, d)`` arrays (empty for skipped items).
    """

    vectors: np.ndarray
    kept: np.ndarray
    skipped: tuple[str, ...] = ()


class Encoder(Protocol):
    """What a task type may ask of the encoder it is handed."""

    adapter: Adapter
    device: str

    def encode(
        self,
        items: Sequence[RawItem],
        *,
        role: Role = None,
        instruction: str | None = None,
        task: str = "",
    ) -> Encoded:
        """Vectors for ``items``, in order."""
        ...
