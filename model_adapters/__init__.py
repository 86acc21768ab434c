"""Model adapters: the only code that touches a model."""

from model_adapters.registry import load_adapter, registered_models

__all__ = ["load_adapter", "registered_models"]
