"""Model adapters: the only code that touches a model.

A plugin adds a family with a ``Family`` record (its factory takes a ``LoadRequest``) declared
under the entry-point group ``harness.model_families``.
"""

from harness.model_adapters.family import AdapterFactory, Family, LoadRequest
from harness.model_adapters.registry import load_adapter, registered_models

__all__ = ["AdapterFactory", "Family", "LoadRequest", "load_adapter", "registered_models"]
