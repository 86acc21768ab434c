"""harness: an evaluation harness for embedding models in the MTEB/MIEB style.

``harness.evaluate(model, tasks, **settings)`` (:func:`harness.app.api.evaluate`) runs a
model on tasks from Python; it is imported on first use, so ``import harness`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "evaluate"]
# Attributes imported on first use: the application layer and its dependencies (torch,
# transformers...) load only when the Python API is called, never with ``import harness``,
# which the lower layers do for the version.
_LAZY = {"evaluate": "harness.app.api"}


def __getattr__(name: str) -> Any:
    """``evaluate``, imported from :mod:`harness.app.api` when first asked for."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
