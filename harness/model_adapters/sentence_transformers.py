"""Text models loaded with the sentence-transformers library."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sentence_transformers import SentenceTransformer

from harness.core.adapter import AdapterMeta, Item, Role, Similarity, check_options
from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters.family import LoadRequest
from harness.model_adapters.torch_utils import n_parameters, resolve_device, resolve_dtype

OPTIONS = frozenset({"prompts", "uses_instructions", "instruction_template"})
ROLES = ("query", "document")
SIMILARITIES = ("cosine", "dot")


class SentenceTransformerAdapter:
    """Encode texts with a ``SentenceTransformer``.

    ``options``: ``prompts`` (``{"query": str, "document": str}``, defaults to the model's own
    saved query/document prompts; when any is set the adapter is role-aware and prefixes the
    role's prompt), ``uses_instructions`` (default false: when true, the task's instruction,
    formatted with ``instruction_template`` (default ``"{instruction} "``), is prefixed to every
    text that is not a document).
    """

    def __init__(self, request: LoadRequest) -> None:
        check_options("sentence-transformers", request.options, OPTIONS)
        torch_device = resolve_device(request.device)
        self.model = SentenceTransformer(
            request.source, device=str(torch_device), revision=request.hub_revision
        )
        self.model.to(resolve_dtype(request.dtype))
        self._prompts = _role_prompts(request.options.get("prompts"), self.model.prompts)
        self._uses_instructions = bool(request.options.get("uses_instructions", False))
        self._template = str(request.options.get("instruction_template", "{instruction} "))
        settings: dict[str, Any] = {"prompts": self._prompts}
        if self._uses_instructions:
            settings["instruction_template"] = self._template
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="sentence-transformers",
            similarity=_similarity(self.model.similarity_fn_name),
            modalities=("text",),
            dtype=request.dtype,
            embed_dim=self.model.get_embedding_dimension(),
            n_parameters=n_parameters(self.model),
            uses_instructions=self._uses_instructions,
            role_aware=bool(self._prompts),
            options=settings,
        )

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """Encode one batch of text items, prefixed with the role's prompt and the instruction."""
        texts = []
        for index, item in enumerate(items):
            if item.get("text") is None:
                raise BadInputError(
                    f"item {index} has no text, but {self.meta.name} is a text-only model"
                )
            texts.append(item["text"])
        if not texts:
            return np.zeros((0, self.meta.embed_dim or 0), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            prompt=self._prefix(role, instruction) or None,
            batch_size=len(texts),
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def _prefix(self, role: Role, instruction: str | None) -> str:
        """The text put before every input of this batch."""
        prefix = self._prompts.get(role, "") if role else ""
        if self._uses_instructions and instruction and role != "document":
            prefix = self._template.format(instruction=instruction) + prefix
        return prefix


def _role_prompts(configured: Any, saved: Mapping[str, str | None]) -> dict[str, str]:
    """The non-empty query/document prompts: the configured ones, else the model's saved ones."""
    if configured is None:
        return {role: prompt for role in ROLES if (prompt := saved.get(role))}
    if not isinstance(configured, Mapping) or set(configured) - set(ROLES):
        raise HarnessError(
            f"option prompts must map 'query' and/or 'document' to a prompt, got {configured!r}"
        )
    return {role: str(configured[role]) for role in ROLES if configured.get(role)}


def _similarity(name: str) -> Similarity:
    """Check that the model's similarity function is one the harness scores with."""
    if name not in SIMILARITIES:
        raise HarnessError(
            f"this model's similarity function {name!r} is not supported; "
            f"supported: {', '.join(SIMILARITIES)}"
        )
    return name  # type: ignore[return-value]
