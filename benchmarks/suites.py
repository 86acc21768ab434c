"""The suites of the side-by-side comparison and the model stack each modality runs on.

A suite is a few demo tasks of one modality; a warm suite reruns another suite's tasks through
the harness with the embedding cache that suite left (mteb has no cross-task cache); a suite
without the embedding cache runs the harness with ``--no-cache`` (for video, the run's frame
store alone then keeps each clip to one decode). A stack names the transformers model class
whose feature methods count as forward calls, the shipped models of that modality and those
``benchmarks/models.py`` builds for it (``benchmarks/_probe.py`` counts that modality's
decodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_CLIP = ROOT / "harness" / "model_adapters" / "demo_clip"
DEMO_CLAP = ROOT / "harness" / "model_adapters" / "demo_clap"
DEMO_XCLIP = ROOT / "harness" / "model_adapters" / "demo_xclip"


@dataclass(frozen=True)
class Stack:
    """What runs and what is counted for one modality."""

    model_class: str  # a transformers class; its ``forwards`` methods are counted
    forwards: tuple[str, ...]
    shipped: dict[str, Path]  # model kind -> directory
    built: dict[str, str] = field(default_factory=dict)  # model kind -> benchmarks.models builder


STACKS = {
    "image": Stack(
        "CLIPModel",
        ("get_image_features", "get_text_features"),
        {"demo": DEMO_CLIP},
        {"b32": "clip-b32", "tiny": "clip-tiny"},
    ),
    "audio": Stack(
        "ClapModel",
        ("get_audio_features", "get_text_features"),
        {"demo": DEMO_CLAP},
    ),
    "video": Stack(
        "XCLIPModel",
        ("get_video_features", "get_text_features"),
        {"demo": DEMO_XCLIP},
        {"tiny": "xclip-tiny"},
    ),
}


@dataclass(frozen=True)
class Suite:
    """Tasks run together on both sides. ``warm_of`` reruns that suite's tasks through the
    harness with the cache it left; ``bare_of`` reruns them through the harness with
    ``--no-cache``, against that suite's mteb side."""

    key: str
    title: str
    modality: str
    tasks: tuple[str, ...]
    warm_of: str | None = None
    bare_of: str | None = None

    @property
    def rerun_of(self) -> str | None:
        """The suite whose tasks this one reruns through the harness alone, if any."""
        return self.warm_of or self.bare_of

    @property
    def cache_of(self) -> str | None:
        """The suite whose embedding cache this one uses; None: no cache."""
        return None if self.bare_of else self.warm_of or self.key


IMAGE_TRIO = ("DemoShapesClassification", "DemoShapesZeroShot", "DemoShapesClustering")
AUDIO_TRIO = ("DemoAudioClassification", "DemoAudioZeroShot", "DemoAudioClustering")
VIDEO_TRIO = ("DemoVideoClassification", "DemoVideoZeroShot", "DemoVideoClustering")
VIDEO_RETRIEVAL = ("DemoVideoT2VRetrieval", "DemoVideoV2TRetrieval")
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
        Suite("h", "t2v + v2t retrieval", "video", VIDEO_RETRIEVAL),
        Suite("i", "probe+zero-shot+clustering", "video", VIDEO_TRIO),
        Suite("j", "(i) with a warm cache", "video", VIDEO_TRIO, warm_of="i"),
        Suite("k", "(i) without the embedding cache", "video", VIDEO_TRIO, bare_of="i"),
        Suite("l", "motion probe", "video", ("DemoVideoMotionClassification",)),
    )
}
