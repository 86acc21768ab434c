"""mteb task objects over the local demo parquet files, for the mteb side of the comparison.

The task classes are built as mteb's mock tasks are (``mteb/mocks/mock_tasks``): a subclass of
the abstract task with its ``TaskMetadata`` and a ``load_data`` that reads the local demo
parquet files. Their class constants are the benchmark's: MIEB's for images (CIFAR10 for the
probe, zero-shot and legacy clustering; Winoground's column layout), MAEB's for audio (8
samples per label and 10 experiments for the probe; the current ``AbsTaskClustering`` on every
clip), and for video those of the harness's demo definitions (``demo_video.yaml``: MIEB's 16
samples per label and 5 experiments for the probe; MVEB's ``AbsTaskClustering`` on every
clip). Each task is declared by the name of its harness task definition.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

DEMO = Path(__file__).resolve().parent.parent / "harness" / "tasks" / "demo" / "data"
SIDES = {"t": "text", "i": "image", "a": "audio", "v": "video"}


def _metadata(name: str, kind: Any, main_score: str, category: Any, modalities: Any) -> Any:
    """mteb's metadata of a local demo task (``kind``, ``category`` and ``modalities`` are
    values of mteb's literal types)."""
    from mteb.abstasks.task_metadata import TaskMetadata

    return TaskMetadata(
        name=name,
        type=kind,
        main_score=main_score,
        description=f"{name}, read from {DEMO / name}.",
        reference="https://github.com/embeddings-benchmark/mteb",
        dataset={"path": str(DEMO / name), "revision": "local"},
        category=category,
        modalities=modalities,
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        date=("2025-01-01", "2025-01-01"),
        dialect=[],
        domains=[],
        task_subtypes=[],
        license="cc-by-4.0",
        annotations_creators="derived",
        sample_creation="found",
        bibtex_citation="",
    )


def _load(name: str, config: str | None = None) -> Any:
    import datasets

    return datasets.load_dataset(str(DEMO / name), config)


def retrieval(name: str, category: str) -> type:
    """Any-to-any retrieval; queries and documents keep their id and their side's column."""
    from mteb.abstasks import AbsTaskRetrieval

    query, document = SIDES[category[0]], SIDES[category[2]]
    modalities = sorted({query, document})

    class Task(AbsTaskRetrieval):
        metadata = _metadata(name, "Any2AnyRetrieval", "ndcg_at_10", category, modalities)

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            relevant: dict[str, dict[str, int]] = {}
            for row in _load(name, "qrels")["test"]:
                relevant.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
            split: Any = {
                "queries": _load(name, "queries")["test"].select_columns(["id", query]),
                "corpus": _load(name, "corpus")["test"].select_columns(["id", document]),
                "relevant_docs": relevant,
                "top_ranked": None,
            }
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    return Task


def classification(
    name: str, kind: str, modality: str, samples_per_label: int, n_experiments: int
) -> type:
    """The linear probe on a (column, label) dataset with train and test splits."""
    from mteb.abstasks import AbsTaskClassification

    class Task(AbsTaskClassification):
        metadata = _metadata(name, kind, "accuracy", f"{modality[0]}2c", [modality])
        input_column_name = modality

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = _load(name)
            self.data_loaded = True

    Task.samples_per_label, Task.n_experiments = samples_per_label, n_experiments
    return Task


def zero_shot(name: str, data: str, kind: str, modality: str) -> type:
    """Zero-shot classification against the label names, used as they are."""
    from mteb.abstasks import AbsTaskZeroShotClassification

    class Task(AbsTaskZeroShotClassification):
        metadata = _metadata(name, kind, "accuracy", f"{modality[0]}2t", ["text", modality])
        input_column_name = modality

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = _load(data)
            self.data_loaded = True

        def get_candidate_labels(self) -> list[str]:
            assert self.dataset is not None
            return list(self.dataset["test"].features[self.label_column_name].names)

    return Task


def legacy_clustering(name: str, data: str) -> type:
    """MIEB's image clustering (``AbsTaskClusteringLegacy``) on the test split."""
    from mteb.abstasks import AbsTaskClusteringLegacy

    class Task(AbsTaskClusteringLegacy):
        metadata = _metadata(name, "ImageClustering", "nmi", "i2c", ["image"])
        input_column_name = "image"
        label_column_name = "label"

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = {"test": _load(data)["test"]}
            self.data_loaded = True

    return Task


def fast_clustering(name: str, data: str, kind: str, modality: str) -> type:
    """MAEB's audio and MVEB's video clustering (``AbsTaskClustering``) on every clip of the
    test split."""
    from mteb.abstasks import AbsTaskClustering

    class Task(AbsTaskClustering):
        metadata = _metadata(name, kind, "v_measure", f"{modality[0]}2c", [modality])
        input_column_name = modality
        label_column_name = "label"
        max_fraction_of_documents_to_embed = None

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = {"test": _load(data)["test"]}
            self.data_loaded = True

    return Task


def winoground(name: str) -> type:
    """Winoground's layout: two images and two captions per row."""
    from mteb.abstasks.image.image_text_pair_classification import (
        AbsTaskImageTextPairClassification,
    )

    class Task(AbsTaskImageTextPairClassification):
        metadata = _metadata(name, "Compositionality", "accuracy", "i2t", ["text", "image"])
        images_column_names = ("image_0", "image_1")
        texts_column_names = ("caption_0", "caption_1")

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = _load(name)
            self.data_loaded = True

    return Task


SHAPES, CLIPS = "DemoShapesClassification", "DemoAudioClassification"
VIDEOS, MOTION = "DemoVideoClassification", "DemoVideoMotionClassification"
TASKS: dict[str, Callable[[], type]] = {
    "DemoShapesT2IRetrieval": lambda: retrieval("DemoShapesT2IRetrieval", "t2i"),
    SHAPES: lambda: classification(SHAPES, "ImageClassification", "image", 16, 5),
    "DemoShapesZeroShot": lambda: zero_shot(
        "DemoShapesZeroShot", SHAPES, "ZeroShotClassification", "image"
    ),
    "DemoShapesClustering": lambda: legacy_clustering("DemoShapesClustering", SHAPES),
    "DemoShapesWinoground": lambda: winoground("DemoShapesWinoground"),
    "DemoAudioA2TRetrieval": lambda: retrieval("DemoAudioA2TRetrieval", "a2t"),
    CLIPS: lambda: classification(CLIPS, "AudioClassification", "audio", 8, 10),
    "DemoAudioZeroShot": lambda: zero_shot(
        "DemoAudioZeroShot", CLIPS, "AudioZeroshotClassification", "audio"
    ),
    "DemoAudioClustering": lambda: fast_clustering(
        "DemoAudioClustering", CLIPS, "AudioClustering", "audio"
    ),
    "DemoVideoT2VRetrieval": lambda: retrieval("DemoVideoT2VRetrieval", "t2v"),
    "DemoVideoV2TRetrieval": lambda: retrieval("DemoVideoV2TRetrieval", "v2t"),
    VIDEOS: lambda: classification(VIDEOS, "VideoClassification", "video", 16, 5),
    "DemoVideoZeroShot": lambda: zero_shot(
        "DemoVideoZeroShot", VIDEOS, "VideoZeroshotClassification", "video"
    ),
    "DemoVideoClustering": lambda: fast_clustering(
        "DemoVideoClustering", VIDEOS, "VideoClustering", "video"
    ),
    MOTION: lambda: classification(MOTION, "VideoClassification", "video", 16, 5),
}


def build_tasks(names: tuple[str, ...]) -> list[Any]:
    """mteb task objects for the named demo tasks."""
    return [TASKS[name]()() for name in names]
