"""Device and dtype resolution and model loading shared by the adapters."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from harness.core.adapter import Item, rows_by_part
from harness.core.errors import HarnessError
from harness.model_adapters.family import LoadRequest

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def from_source(loader: Any, request: LoadRequest, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` (a model, tokenizer, processor or config class) on the
    requested model at its pinned hub revision."""
    return loader.from_pretrained(request.source, revision=request.hub_revision, **kwargs)


def load_eval_model(
    model_class: Any, request: LoadRequest, device: torch.device, dtype: torch.dtype
) -> Any:
    """The requested model in ``dtype`` on ``device``, in eval mode."""
    return from_source(model_class, request, dtype=dtype).to(device).eval()


def resolve_device(device: str) -> torch.device:
    """Turn ``cpu``, ``cuda`` or ``cuda:N`` into a ``torch.device`` that exists on this machine."""
    if device == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match is None:
        raise HarnessError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise HarnessError(
            f"--device {device} was requested but CUDA is not available on this machine; "
            "use --device cpu"
        )
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise HarnessError(
            f"--device {device} was requested but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s)"
        )
    return torch.device("cuda", index)


def resolve_dtype(dtype: str) -> torch.dtype:
    """Turn ``float32``, ``float16`` or ``bfloat16`` into a ``torch.dtype``."""
    try:
        return DTYPES[dtype]
    except KeyError:
        raise HarnessError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}") from None


def n_parameters(model: torch.nn.Module) -> int:
    """The number of parameters of a model."""
    return sum(parameter.numel() for parameter in model.parameters())


def to_numpy(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A processor's output for one item as numpy arrays, for ``preprocess``: they cross from a
    DataLoader worker to the main process inside the pickle stream, where torch tensors would
    each hold a shared-memory file descriptor."""
    return {key: np.asarray(value) for key, value in inputs.items()}


def concatenated(items: Sequence[Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Preprocessed items' arrays joined along the first dimension, key by key, as tensors."""
    return {
        key: torch.from_numpy(np.concatenate([item[key] for item in items])) for key in items[0]
    }


def summed_parts(
    items: Sequence[Item],
    preprocess: Callable[[Item], Item],
    dim: int,
    towers: Mapping[str, Callable[[list[Any]], torch.Tensor]],
    missing: str,
) -> np.ndarray:
    """A dual encoder's batch: an ``(len(items), dim)`` float32 array where each part's tower
    (by part name) embeds the preprocessed parts of the items that carry it, and an item with
    several parts gets their sum, as mteb's dual-encoder wrappers fuse them. An item with none
    of the parts is a ``BadInputError`` ("item i has {missing}")."""
    if not items:
        return np.zeros((0, dim), dtype=np.float32)
    items = [preprocess(item) for item in items]
    out = torch.zeros(len(items), dim, dtype=torch.float32)
    rows = rows_by_part(items, tuple(towers), missing)
    for (part, tower), part_rows in zip(towers.items(), rows, strict=True):
        if part_rows:
            out[part_rows] += tower([items[i][part] for i in part_rows])
    return out.numpy()
