"""Data-parallel encoding inside one task, over ``torch.distributed`` (``torchrun``).

Every rank runs the same tasks in lockstep. The encoder plans its batches exactly as a single
process would (the same items, sorted the same way, cut into the same batches, the same ones
wholly cached), then each rank encodes only its share of the batches left to encode, balanced
by cost (each part's by its modality: pixels for images, characters for texts), writes them to
the embedding cache as they finish, and the ranks exchange their vectors with one
``all_gather_object``. Every rank then holds every vector, bit for bit what one process
computes, so scores are identical; rank 0 alone writes result files.

A rank that dies makes ``torchrun`` stop the others: the run fails, finished result files and
every batch already in the cache stay, and a rerun encodes only the batches with missing items.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.core.items import RawItem
from harness.core.modalities import modality


@dataclass(frozen=True)
class Shards:
    """This process's place in a data-parallel group."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """Whether this rank writes results and shows progress."""
        return self.rank == 0

    def my_batches(self, costs: Sequence[float]) -> list[int]:
        """The indices of the batches this rank encodes: longest first to the least loaded rank.

        Every rank computes the same assignment from the same costs.
        """
        loads = [(0.0, rank) for rank in range(self.world_size)]
        heapq.heapify(loads)
        mine = []
        for batch in sorted(range(len(costs)), key=lambda b: (-costs[b], b)):
            load, rank = heapq.heappop(loads)
            if rank == self.rank:
                mine.append(batch)
            heapq.heappush(loads, (load + costs[batch], rank))
        return sorted(mine)

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        import torch.distributed as dist

        dist.barrier()

    def gather(
        self, vectors: dict[str, np.ndarray], skipped: set[str]
    ) -> tuple[dict[str, np.ndarray], set[str]]:
        """Every rank's vectors and skipped keys, merged, on every rank."""
        import torch.distributed as dist

        shared: list[tuple[dict[str, np.ndarray], set[str]] | None] = [None] * self.world_size
        dist.all_gather_object(shared, (vectors, skipped))
        merged: dict[str, np.ndarray] = {}
        all_skipped: set[str] = set()
        for part in shared:
            assert part is not None
            merged.update(part[0])
            all_skipped |= part[1]
        return merged, all_skipped


def item_cost(item: RawItem) -> float:
    """What encoding an item costs, roughly: 1, plus the cost of each part by its modality
    (an image's pixels, read from its header and never decoded; a text's characters)."""
    return sum((modality(name).cost(value) for name, value in item.parts.items()), 1.0)


def shards_from_environment() -> Shards | None:
    """Join the ``torchrun`` group this process was started in (None outside one).

    The backend is NCCL when each rank has a GPU, else gloo (CPU, and the tests).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return Shards(dist.get_rank(), dist.get_world_size())


def rank_device(device: str) -> str:
    """The device of this rank: ``cuda`` becomes ``cuda:<LOCAL_RANK>`` inside a group."""
    local_rank = os.environ.get("LOCAL_RANK")
    if device == "cuda" and local_rank is not None:
        return f"cuda:{local_rank}"
    return device
