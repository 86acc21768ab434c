"""One side of the comparison: mteb's own ``evaluate`` on mteb task classes over local files.

The task classes are built as mteb's mock tasks are (``mteb/mocks/mock_tasks``): a subclass of
the abstract task with its ``TaskMetadata`` and a ``load_data`` that reads the local demo
parquet files. Their class constants are MIEB's (CIFAR10 for the probe, zero-shot and
clustering; Winoground's and ARO's column layout for compositionality). The model is a minimal
encoder in mteb's protocol over the same transformers CLIP and preprocessing as
``model_adapters/clip.py``; it returns torch tensors, as mteb's CLIP wrapper does.

Run as ``python -m benchmarks.mteb_side MODEL_DIR SUITE REPORT.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import _probe

DEMO = Path(__file__).resolve().parent.parent / "tasks" / "demo" / "data"


def _metadata(name: str, kind: str, main_score: str, category: str, modalities: list[str]) -> Any:
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


def build_tasks(suite: str) -> list[Any]:
    """mteb task objects of one suite: ``a`` retrieval, ``b`` CIFAR10-style trio, ``d`` pairs."""
    from mteb.abstasks import (
        AbsTaskClassification,
        AbsTaskClusteringLegacy,
        AbsTaskRetrieval,
        AbsTaskZeroShotClassification,
    )
    from mteb.abstasks.image.image_text_pair_classification import (
        AbsTaskImageTextPairClassification,
    )

    class DemoShapesT2IRetrieval(AbsTaskRetrieval):
        metadata = _metadata(
            "DemoShapesT2IRetrieval", "Any2AnyRetrieval", "ndcg_at_10", "t2i", ["text", "image"]
        )

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            name = self.metadata.name
            queries = _load(name, "queries")["test"].remove_columns(["modality", "image"])
            corpus = _load(name, "corpus")["test"].remove_columns(["modality", "text"])
            relevant: dict[str, dict[str, int]] = {}
            for row in _load(name, "qrels")["test"]:
                relevant.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
            split = {
                "queries": queries,
                "corpus": corpus,
                "relevant_docs": relevant,
                "top_ranked": None,
            }
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    class DemoShapesClassification(AbsTaskClassification):
        metadata = _metadata(
            "DemoShapesClassification", "ImageClassification", "accuracy", "i2c", ["image"]
        )
        input_column_name = "image"
        samples_per_label = 16
        n_experiments = 5

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = _load("DemoShapesClassification")
            self.data_loaded = True

    class DemoShapesZeroShot(AbsTaskZeroShotClassification):
        metadata = _metadata(
            "DemoShapesZeroShot", "ZeroShotClassification", "accuracy", "i2t", ["text", "image"]
        )
        input_column_name = "image"

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = _load("DemoShapesClassification")
            self.data_loaded = True

        def get_candidate_labels(self) -> list[str]:
            return list(self.dataset["test"].features[self.label_column_name].names)

    class DemoShapesClustering(AbsTaskClusteringLegacy):
        metadata = _metadata("DemoShapesClustering", "ImageClustering", "nmi", "i2c", ["image"])
        input_column_name = "image"
        label_column_name = "label"

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = {"test": _load("DemoShapesClassification")["test"]}
            self.data_loaded = True

    class DemoShapesWinoground(AbsTaskImageTextPairClassification):
        metadata = _metadata(
            "DemoShapesWinoground", "Compositionality", "accuracy", "i2t", ["text", "image"]
        )
        images_column_names = ("image_0", "image_1")
        texts_column_names = ("caption_0", "caption_1")

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = _load("DemoShapesWinoground")
            self.data_loaded = True

    suites = {
        "a": [DemoShapesT2IRetrieval],
        "b": [DemoShapesClassification, DemoShapesZeroShot, DemoShapesClustering],
        "d": [DemoShapesWinoground],
    }
    return [cls() for cls in suites[suite]]


class ClipEncoder:
    """mteb's EncoderProtocol over a transformers CLIP, preprocessed as the clip adapter does."""

    def __init__(self, model_dir: str) -> None:
        from mteb.models import ModelMeta
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.image_processor = AutoImageProcessor.from_pretrained(model_dir)
        self.max_length = int(self.tokenizer.model_max_length)
        if self.max_length >= 1_000_000:
            self.max_length = int(self.model.config.text_config.max_position_embeddings)
        self.mteb_model_meta = (
            ModelMeta.create_empty() if hasattr(ModelMeta, "create_empty") else None
        )

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Texts and/or images of each batch; an item with both is the sum, as mteb's CLIP."""
        import torch

        features = inputs.dataset.features
        chunks = []
        with torch.inference_mode():
            for batch in inputs:
                vectors = None
                if "text" in features:
                    vectors = self._texts(batch["text"])
                if "image" in features:
                    images = self._images(batch["image"])
                    vectors = images if vectors is None else vectors + images
                chunks.append(vectors)
        return torch.cat(chunks)

    def _texts(self, texts: list[str]) -> Any:
        batch = self.tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        output = self.model.get_text_features(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        )
        return _pooled(output)

    def _images(self, images: list[Any]) -> Any:
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        batch = self.image_processor(images=rgb, return_tensors="pt")
        return _pooled(self.model.get_image_features(pixel_values=batch["pixel_values"]))

    def similarity(self, a: Any, b: Any) -> Any:
        from mteb.similarity_functions import cos_sim

        return cos_sim(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        from mteb.similarity_functions import pairwise_cos_sim

        return pairwise_cos_sim(a, b)


def _pooled(output: Any) -> Any:
    return (output if hasattr(output, "shape") else output.pooler_output).float()


def main(model_dir: str, suite: str, report: Path, batch_size: int = 32) -> None:
    """Evaluate the suite's tasks through mteb and write scores, counts, time and memory."""
    _probe.install()
    start = time.perf_counter()
    model = ClipEncoder(model_dir)
    scores: dict[str, float] = {}
    for task in build_tasks(suite):
        task.load_data()
        result = task.evaluate(
            model, "test", encode_kwargs={"batch_size": batch_size, "show_progress_bar": False}
        )
        scores[task.metadata.name] = float(result["default"]["main_score"])
    payload = {
        "scores": scores,
        "run_seconds": time.perf_counter() - start,
        "peak_rss_mib": _probe.peak_rss_mib(),
        **_probe.counts(),
    }
    _probe.write_report(report, payload)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), *map(int, sys.argv[4:5]))
