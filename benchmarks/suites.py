"""The suites of the side-by-side comparison and the model stack each modality runs on.

A suite is a few demo tasks of one modality; a warm suite reruns another suite's tasks through
the harness with the embedding cache that suite left (mteb has no cross-task cache). A stack
names the transformers model class whose feature methods count as forward calls and the shipped
models of that modality (``benchmarks/_probe.py`` counts that modality's decodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_CLIP = ROOT / "model_adapters" / "demo_clip"
DEMO_CLAP = ROOT / "model_adapters" / "demo_clap"


@dataclass(frozen=True)
class Stack:
    """What runs and what is counted for one modality."""

    model_class: str  # a transformers class; its ``forwards`` methods are counted
    forwards: tuple[str, ...]
    shipped: dict[str, Path]  # model kind -> directory; other kinds are built (image only)


STACKS = {
    "image": Stack(
        "CLIPModel",
        ("get_image_features", "get_text_features"),
        {"demo": DEMO_CLIP},
    ),
    "audio": Stack(
        "ClapModel",
        ("get_audio_features", "get_text_features"),
        {"demo": DEMO_CLAP},
    ),
}


@dataclass(frozen=True)
class Suite:
    """Tasks run together on both sides; ``warm_of`` reruns that suite with its cache."""

    key: str
    title: str
    modality: str
    tasks: tuple[str, ...]
    warm_of: str | None = None

    @property
    def cache_of(self) -> str:
        """The suite whose embedding cache this one uses."""
        return self.warm_of or self.key


IMAGE_TRIO = ("DemoShapesClassification", "DemoShapesZeroShot", "DemoShapesClustering")
AUDIO_TRIO = ("DemoAudioClassification", "DemoAudioZeroShot", "DemoAudioClustering")
SUITES = {
    suite.key: suite
    for suite in (
        Suite("a", "t2i retrieval", "image", ("DemoShapesT2IRetrieval",)),
        Suite("b", "probe+zero-shot+clustering", "image", IMAGE_TRIO),
        Suite("c", "(b) with a warm cache", "image", IMAGE_TRIO, warm_of="b"),
        Suite("d", "compositionality", "image", ("DemoShapesWinoground",)),
        Suite("e", "a2t retrieval", "audio", ("DemoAudioA2TRetrieval",)),
        Suite("f", "probe+zero-shot+clustering", "audio", AUDIO_TRIO),
        Suite("g", "(f) with a warm cache", "audio", AUDIO_TRIO, warm_of="f"),
    )
}
