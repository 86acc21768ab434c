"""MAEB's task types end to end on tiny local audio datasets in MAEB's layouts: load, encode
through the encoder with a toy audio-and-text adapter, score, and compare with mteb's own
evaluators fed the same vectors."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import soundfile
import yaml

from harness.core.adapter import AdapterMeta, Role
from harness.core.audio import Waveform
from harness.core.errors import HarnessError
from harness.engine.encoding import BatchEncoder
from harness.scoring.classification import CLASSIFICATION_METRICS
from harness.scoring.clustering_fast import METRIC_KEYS as CLUSTERING_KEYS
from harness.scoring.pair_classification import METRIC_KEYS as PAIR_KEYS
from harness.tasks.base import SplitOutcome
from harness.tasks.definition import TaskDefinition
from harness.tasks.registry import load_task_file, task_type
from tests.test_scoring_clustering_fast import mteb_scores as mteb_clustering
from tests.test_scoring_pair_classification import mteb_pair_scores
from tests.test_scoring_reranking import mteb_scores as mteb_retrieval

mteb = pytest.importorskip("mteb")
from mteb.timing import TimingStack  # noqa: E402

RATE = 8000
PITCHES = (300.0, 700.0, 1300.0, 2100.0)  # one per class
BANDS = np.linspace(0, RATE / 2, 17)


def clip(pitch: float, seed: int, noise: float = 0.25) -> bytes:
    """A quarter second of a tone with seeded noise, as WAV bytes."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE // 4) / RATE
    samples = 0.4 * np.sin(2 * np.pi * pitch * (1 + 0.03 * rng.normal()) * t)
    samples += rng.normal(scale=noise, size=len(t))
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.astype(np.float32), RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def audio_vector(samples: np.ndarray) -> np.ndarray:
    """Energy in 16 frequency bands."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / RATE)
    bands = np.digitize(frequencies, BANDS[1:-1])
    return np.bincount(bands, weights=spectrum, minlength=16).astype(np.float32) / len(samples)


def text_vector(text: str) -> np.ndarray:
    """A caption "tone N" points at the band of N Hz (an empty caption at none)."""
    vector = np.full(16, 0.05, dtype=np.float32)
    if text.strip():
        vector[np.digitize(float(text.split()[-1]), BANDS[1:-1])] = 1.0
    return vector


def clip_vector(data: bytes) -> np.ndarray:
    """What the adapter returns for a stored clip (decoded here as the workers decode it)."""
    samples, _ = soundfile.read(io.BytesIO(data), dtype="float32")
    return audio_vector(samples)


class ToyAudioTextAdapter:
    """Audio by band energies, captions by the band they name; both when an item has both."""

    meta = AdapterMeta("toy-audio-text", "1", "test", "cosine", ("audio", "text"), "float32")

    def encode(
        self, items: Sequence[dict[str, Any]], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        rows = []
        for item in items:
            vector = np.zeros(16, dtype=np.float32)
            if isinstance(item.get("audio"), Waveform):
                vector += audio_vector(item["audio"].samples)
            if item.get("text") is not None:
                vector += text_vector(item["text"])
            rows.append(vector)
        return np.stack(rows)


AUDIO = datasets.Audio()


def write_table(path: Path, columns: dict[str, list[Any]], audio_columns: Sequence[str]) -> None:
    """One parquet file; ``audio_columns`` hold clip bytes as a hub ``Audio`` column."""
    cells = {
        name: [{"bytes": v, "path": None} for v in values] if name in audio_columns else values
        for name, values in columns.items()
    }
    data = datasets.Dataset.from_dict(cells)
    for name in audio_columns:
        data = data.cast_column(name, AUDIO)
    path.parent.mkdir(parents=True, exist_ok=True)
    data.to_parquet(str(path))


def definition(tmp_path: Path, entry: dict[str, Any]) -> TaskDefinition:
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(entry))
    [task] = load_task_file(path)
    return task


def evaluate(task: TaskDefinition, split: str = "test", **kwargs: Any) -> SplitOutcome:
    encoder = BatchEncoder(ToyAudioTextAdapter(), batch_size=16, show_progress=False)
    return task_type(task).evaluate(task, encoder, split=split, **kwargs)


def close(ours: dict[str, Any], reference: dict[str, Any], keys: Sequence[str]) -> float:
    """The largest absolute difference over ``keys``."""
    return max(abs(float(ours[key]) - float(reference[key])) for key in keys)


# --- pair classification: MAEB's layout (audio1, audio2, label) -----------------------------


def test_pair_classification_equals_mteb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    first, second, labels = [], [], []
    for row in range(40):
        a, b = rng.integers(0, len(PITCHES), 2)
        first.append(clip(PITCHES[a], row))
        second.append(clip(PITCHES[b], 1000 + row))
        labels.append(int(a == b))
    columns: dict[str, list[Any]] = {"audio1": first, "audio2": second, "label": labels}
    write_table(tmp_path / "data" / "test-00000-of-00001.parquet", columns, ["audio1", "audio2"])
    task = definition(
        tmp_path,
        {
            "name": "ToyPairs",
            "type": "pair_classification",
            "category": "a2a",
            "dataset": {
                "path": str(tmp_path / "data"),
                "columns": {"sentence1": "audio1", "sentence2": "audio2", "labels": "label"},
            },
        },
    )
    [scores] = evaluate(task).subsets
    reference = mteb_pair_scores(
        np.stack([clip_vector(c) for c in first]),
        np.stack([clip_vector(c) for c in second]),
        labels,
        "cosine",
    )
    assert close(scores, reference, PAIR_KEYS) < 1e-6
    assert scores["main_score"] == scores["max_ap"] > 0.8


def test_pair_classification_refuses_labels_that_are_not_binary(tmp_path: Path) -> None:
    columns: dict[str, list[Any]] = {
        "audio1": [clip(300, 0)] * 2,
        "audio2": [clip(300, 1)] * 2,
        "labels": [0, 2],
    }
    write_table(tmp_path / "data" / "test.parquet", columns, ["audio1", "audio2"])
    task = definition(
        tmp_path,
        {
            "name": "BadPairs",
            "type": "pair_classification",
            "category": "a2a",
            "dataset": {
                "path": str(tmp_path / "data"),
                "columns": {"sentence1": "audio1", "sentence2": "audio2"},
            },
        },
    )
    with pytest.raises(HarnessError, match=r"label of 0 or 1.*first at row 1: 2"):
        evaluate(task)


# --- clustering: MAEB's layout (audio, label) ---------------------------------------------


def labelled_clips(n: int, seed: int, noise: float = 0.25) -> tuple[list[bytes], list[int]]:
    labels = np.random.default_rng(seed).integers(0, len(PITCHES), n).tolist()
    clips = [clip(PITCHES[label], seed * 1000 + row, noise) for row, label in enumerate(labels)]
    return clips, labels


def test_clustering_fast_equals_mteb(tmp_path: Path) -> None:
    clips, labels = labelled_clips(60, 1)
    write_table(
        tmp_path / "data" / "train-00000-of-00001.parquet",
        {"audio": clips, "label": labels},
        ["audio"],
    )
    protocol = {"max_fraction_of_documents_to_embed": None, "sample_size": 100}
    task = definition(
        tmp_path,
        {
            "name": "ToyClustering",
            "type": "clustering_fast",
            "category": "a2a",
            "eval_splits": ["train"],
            "dataset": {"path": str(tmp_path / "data")},
            "protocol": protocol,
        },
    )
    outcome = evaluate(task, split="train")
    [scores] = outcome.subsets
    reference = mteb_clustering(
        np.stack([clip_vector(c) for c in clips]),
        labels,
        max_fraction_of_documents_to_embed=None,
        max_documents_per_cluster=100,
    )
    assert close(scores, reference, CLUSTERING_KEYS) < 1e-6
    assert scores["main_score"] == scores["v_measure"] > 0.5
    assert outcome.units["default"].score() == pytest.approx(scores["v_measure"])


def test_clustering_fast_refuses_two_limits(tmp_path: Path) -> None:
    entry = {
        "name": "ToyClustering",
        "type": "clustering_fast",
        "category": "a2a",
        "dataset": {"path": str(tmp_path)},
        "protocol": {"max_document_to_embed": 10},
    }
    with pytest.raises(HarnessError, match="not both"):
        definition(tmp_path, entry)


# --- classification: MAEB's cross-validated linear probe ----------------------------------


def mteb_cross_validated(vectors: np.ndarray, labels: list[int]) -> dict[str, Any]:
    """mteb's 5-fold cross-validated classification of a train split whose rows encode to
    ``vectors`` (a text task with MAEB's audio settings: the scoring ignores the modality)."""
    task = mteb.get_task("Banking77Classification")
    task.is_cross_validation, task.n_splits, task.samples_per_label = True, 5, 8
    task.evaluator_model = task.evaluator_model.set_params(random_state=task.seed)
    data = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": ["x"] * len(labels), "label": labels})}
    )

    class Fixed:
        mteb_model_meta = None

        def encode(self, inputs: Any, **_: Any) -> np.ndarray:
            return vectors

    return dict(
        task._evaluate_subset_cross_validation(
            Fixed(),
            data,
            encode_kwargs={},
            hf_split="train",
            hf_subset="default",
            timer=TimingStack(),
        )
    )


@pytest.mark.parametrize("n", [57, 60])
def test_cross_validated_linear_probe_equals_mteb(tmp_path: Path, n: int) -> None:
    clips, labels = labelled_clips(n, 2, noise=2.0)  # hard enough for the folds to differ
    write_table(
        tmp_path / "data" / "train-00000-of-00001.parquet",
        {"audio": clips, "label": labels},
        ["audio"],
    )
    task = definition(
        tmp_path,
        {
            "name": "ToyClassification",
            "type": "linear_probe",
            "category": "a2c",
            "eval_splits": ["train"],
            "dataset": {"path": str(tmp_path / "data")},
            "protocol": {
                "cross_validation_folds": 5,
                "samples_per_label": 8,
                "n_experiments": 10,
                "fit_dtype": "float32",
            },
        },
    )
    outcome = evaluate(task, split="train")
    [scores] = outcome.subsets
    reference = mteb_cross_validated(np.stack([clip_vector(c) for c in clips]), labels)
    keys = [key for key in CLASSIFICATION_METRICS if not np.isnan(reference[key])]
    assert close(scores, reference, keys) < 1e-6
    assert len(scores["scores_per_experiment"]) == 5
    assert 0.5 < scores["accuracy"] < 0.95
    assert outcome.units["default"].score() == pytest.approx(scores["accuracy"])


def test_cross_validation_scores_the_train_split_only(tmp_path: Path) -> None:
    task = definition(
        tmp_path,
        {
            "name": "ToyClassification",
            "type": "linear_probe",
            "category": "a2c",
            "dataset": {"path": str(tmp_path)},
            "protocol": {"cross_validation_folds": 5},
        },
    )
    with pytest.raises(HarnessError, match="cross-validation scores the train split"):
        evaluate(task, split="test")


# --- retrieval and reranking: queries/corpus/qrels(/top_ranked) configs --------------------


def retrieval_dataset(root: Path, query_side: str, document_side: str, seed: int) -> dict:
    """Queries and documents with an ``audio`` and/or ``text`` column; each query's relevant
    documents share its pitch. Returns mteb's view: ids, vectors, qrels, candidates."""
    rng = np.random.default_rng(seed)
    vectors: dict[str, np.ndarray] = {}

    def rows(prefix: str, n: int, side: str) -> tuple[dict[str, list[Any]], list[int]]:
        pitches = rng.integers(0, len(PITCHES), n).tolist()
        columns: dict[str, list[Any]] = {"id": [f"{prefix}{i}" for i in range(n)]}
        if "a" in side:
            columns["audio"] = [clip(PITCHES[p], seed * 999 + i + len(prefix)) for i, p in
                                enumerate(pitches)]  # fmt: skip
        if "t" in side:
            columns["text"] = [f"tone {PITCHES[p] + 40 * rng.normal():.0f}" for p in pitches]
        for i, key in enumerate(columns["id"]):
            vector = np.zeros(16, dtype=np.float32)
            if "audio" in columns:
                vector += clip_vector(columns["audio"][i])
            if "text" in columns:
                vector += text_vector(columns["text"][i])
            vectors[key] = vector
        return columns, pitches

    queries, query_pitches = rows("q", 10, query_side)
    corpus, doc_pitches = rows("d", 30, document_side)
    qrels = {
        f"q{i}": {f"d{j}": 1 for j, p in enumerate(doc_pitches) if p == pitch}
        for i, pitch in enumerate(query_pitches)
    }
    qrels = {query: docs for query, docs in qrels.items() if docs}
    candidates = {
        query: [f"d{j}" for j in rng.choice(30, size=13, replace=False)] + list(qrels[query])[:2]
        for query in qrels
    }
    for config, columns in (("queries", queries), ("corpus", corpus)):
        write_table(root / config / "test.parquet", columns, ["audio"])
    pairs = [(q, d) for q, docs in qrels.items() for d in docs]
    write_table(
        root / "qrels" / "test.parquet",
        {"query-id": [q for q, _ in pairs], "corpus-id": [d for _, d in pairs],
         "score": [1] * len(pairs)},
        [],
    )  # fmt: skip
    write_table(
        root / "top_ranked" / "test.parquet",
        {"query-id": list(candidates), "corpus-ids": list(candidates.values())},
        [],
    )
    return {
        "queries": [q for q in queries["id"] if q in qrels],
        "docs": corpus["id"],
        "vectors": vectors,
        "qrels": qrels,
        "candidates": candidates,
    }


@pytest.mark.parametrize("category", ["a2t", "t2a", "a2a", "at2t", "t2at"])
def test_retrieval_with_audio_on_either_side_equals_mteb(tmp_path: Path, category: str) -> None:
    query_side, document_side = category.split("2")
    case = retrieval_dataset(tmp_path / "data", query_side, document_side, seed=4)
    entry = {
        "name": "ToyRetrieval",
        "type": "retrieval",
        "category": category,
        "dataset": {"path": str(tmp_path / "data")},
    }
    task = definition(tmp_path, entry)
    [scores] = evaluate(task).subsets
    reference = mteb_retrieval({**case, "candidates": None}, "cosine")
    keys = [key for key in scores if key in reference and isinstance(scores[key], float)]
    assert len(keys) > 40
    assert close(scores, reference, keys) < 1e-6
    assert scores["ndcg_at_10"] > 0.5


def test_reranking_equals_mteb(tmp_path: Path) -> None:
    case = retrieval_dataset(tmp_path / "data", "a", "a", seed=5)
    entry = {
        "name": "ToyReranking",
        "type": "reranking",
        "category": "a2a",
        "dataset": {"path": str(tmp_path / "data")},
    }
    task = definition(tmp_path, entry)
    loaded = task_type(task).load(task, "test")
    encoded_documents = {doc.id for doc in loaded.parts["default"].corpus}
    assert encoded_documents == {d for docs in case["candidates"].values() for d in docs}
    [scores] = evaluate(task).subsets
    reference = mteb_retrieval(case, "cosine")
    keys = [key for key in scores if key in reference and isinstance(scores[key], float)]
    assert close(scores, reference, keys) < 1e-6
    assert scores["main_score"] == scores["map_at_1000"] > 0.3


def test_reranking_refuses_candidates_outside_the_corpus(tmp_path: Path) -> None:
    retrieval_dataset(tmp_path / "data", "a", "a", seed=6)
    write_table(
        tmp_path / "data" / "top_ranked" / "test.parquet",
        {"query-id": ["q0"], "corpus-ids": [["d0", "nowhere"]]},
        [],
    )
    entry = {
        "name": "ToyReranking",
        "type": "reranking",
        "category": "a2a",
        "dataset": {"path": str(tmp_path / "data")},
    }
    with pytest.raises(HarnessError, match=r"not in the corpus.*'nowhere'"):
        evaluate(definition(tmp_path, entry))


# --- zero-shot: audio inputs against caption prompts ---------------------------------------


def test_audio_zero_shot_scores_by_the_models_similarity(tmp_path: Path) -> None:
    clips, labels = labelled_clips(24, 7)
    write_table(tmp_path / "data" / "test.parquet", {"audio": clips, "label": labels}, ["audio"])
    task = definition(
        tmp_path,
        {
            "name": "ToyZeroShot",
            "type": "zero_shot_classification",
            "category": "a2t",
            "dataset": {"path": str(tmp_path / "data")},
            "protocol": {"template": "tone {label}", "label_names": [str(p) for p in PITCHES]},
        },
    )
    kind = task_type(task)
    assert kind.protocol(task).label_scoring == "similarity"  # type: ignore[attr-defined]
    [scores] = evaluate(task).subsets
    label_vectors = np.stack([text_vector(f"tone {p}") for p in PITCHES])
    inputs = np.stack([clip_vector(c) for c in clips])
    cosine = (inputs / np.linalg.norm(inputs, axis=1, keepdims=True)) @ (
        label_vectors / np.linalg.norm(label_vectors, axis=1, keepdims=True)
    ).T
    assert scores["accuracy"] == pytest.approx(np.mean(cosine.argmax(axis=1) == labels))
    assert scores["accuracy"] > 0.9


# --- multilabel: MAEB's FSD2019Kaggle layout (configs curated and noisy, label lists) -------

CHORD_PITCHES = (250.0, 600.0, 1100.0, 1700.0, 2500.0, 3300.0)


def chord(labels: Sequence[int], seed: int) -> bytes:
    """A quarter second of the labels' tones with seeded noise, as WAV bytes."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE // 4) / RATE
    samples = rng.normal(scale=1.2, size=len(t))
    for label in labels:
        samples += 0.3 * np.sin(2 * np.pi * CHORD_PITCHES[label] * t + rng.uniform(0, 6))
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.astype(np.float32), RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def test_multilabel_subsets_continue_mteb_generator(tmp_path: Path) -> None:
    """Two configs of different sizes: the second subset's samples continue the stream of
    the first, as mteb's one generator per task does."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    from tests.test_scoring_classification import (
        MockMultilabelClassification,
        TableEncoder,
        random_label_sets,
    )

    sizes = {"curated": (200, 30), "noisy": (260, 40)}
    vectors: dict[str, np.ndarray] = {}
    mteb_data = {}
    for number, (subset, (n_train, n_test)) in enumerate(sizes.items()):
        splits = {}
        for split, n in (("train", n_train), ("test", n_test)):
            label_sets = random_label_sets(n, len(CHORD_PITCHES), seed=10 * number + n)
            clips = [chord(labels, seed=row + 100 * n) for row, labels in enumerate(label_sets)]
            write_table(
                tmp_path / "data" / subset / f"{split}.parquet",
                {"audio": clips, "sound": label_sets},
                ["audio"],
            )
            keys = [f"{subset}-{split}-{row}" for row in range(n)]
            vectors |= {key: clip_vector(c) for key, c in zip(keys, clips, strict=True)}
            splits[split] = datasets.Dataset.from_dict({"text": keys, "label": label_sets})
        mteb_data[subset] = datasets.DatasetDict(splits)
    task = definition(
        tmp_path,
        {
            "name": "ToyFSD",
            "type": "multilabel_classification",
            "category": "a2t",
            "dataset": {"path": str(tmp_path / "data"), "columns": {"label": "sound"}},
            "protocol": {
                "classifier": "logistic",
                "n_experiments": 3,
                "max_eval_samples": None,
                "subsets": {"curated": ["eng-Latn"], "noisy": ["eng-Latn"]},
            },
        },
    )
    ours = {entry["hf_subset"]: entry for entry in evaluate(task).subsets}
    reference_task = MockMultilabelClassification()
    reference_task.n_experiments, reference_task.max_eval_samples = 3, None
    reference_task.evaluator_model = MultiOutputClassifier(estimator=LogisticRegression())
    reference_task.dataset, reference_task.data_loaded = mteb_data, True
    reference_task.hf_subsets = list(mteb_data)
    reference = reference_task.evaluate(
        TableEncoder(vectors, as_tensor=False), "test", encode_kwargs={"batch_size": 16}
    )
    assert list(ours) == ["curated", "noisy"]
    for subset in ours:
        assert close(ours[subset], reference[subset], ("accuracy", "lrap", "f1", "hamming")) < 1e-6
        assert ours[subset]["languages"] == ["eng-Latn"]
    assert ours["noisy"]["lrap"] > 0.6


# --- mteb's per-task reshaping of labelled splits -------------------------------------------


def test_reshaping_equals_mteb_common_language_transform() -> None:
    """CommonLanguageAgeDetection drops two labels from every split, then cuts its test split
    to 2,048 rows by stratified sampling: the same rows, in the same order."""
    from harness.core.items import RawItem
    from harness.tasks.labelled import LabelledSplit
    from harness.tasks.linear_probe import LinearProbeProtocol

    rng = np.random.default_rng(8)
    ages = ["teens", "twenties", "thirties", "fourties", "fifties", "not_defined", "eighties"]
    weights = [0.2, 0.3, 0.2, 0.15, 0.1, 0.04, 0.01]
    splits = {}
    for split, n in (("train", 300), ("test", 2600)):
        keys = [f"{split}{row}" for row in range(n)]
        splits[split] = (keys, rng.choice(ages, size=n, p=weights).tolist())
    reference_task = mteb.get_task("CommonLanguageAgeDetection")
    reference_task.dataset = datasets.DatasetDict(
        {s: datasets.Dataset.from_dict({"key": k, "age": a}) for s, (k, a) in splits.items()}
    )
    reference_task.dataset_transform()
    protocol = LinearProbeProtocol(
        exclude_labels=("not_defined", "eighties"), stratified_subsample=2048
    )
    task = TaskDefinition(name="T", type="linear_probe", category="a2c", dataset={"path": "x"})
    for split, (keys, labels) in splits.items():
        data = LabelledSplit([RawItem.of(k, text=k) for k in keys], labels, None, split=split)
        ours = protocol.reshape(task, data, evaluated=split == "test", seed=42)
        assert [item.id for item in ours.items] == reference_task.dataset[split]["key"]
    assert len(reference_task.dataset["test"]) == 2048


def test_label_ids_must_cover_every_label() -> None:
    from harness.core.items import RawItem
    from harness.tasks.labelled import LabelledSplit
    from harness.tasks.linear_probe import LinearProbeProtocol

    protocol = LinearProbeProtocol(label_ids={"Female": 0, "Male": 1})
    task = TaskDefinition(name="T", type="linear_probe", category="a2c", dataset={"path": "x"})
    items = [RawItem.of(str(i), text="x") for i in range(3)]
    data = LabelledSplit(items, ["Male", "Female", "Male"], None, split="train")
    assert protocol.reshape(task, data, evaluated=True, seed=42).labels == [1, 0, 1]
    bad = LabelledSplit(items, ["Male", "Other", "Male"], None, split="train")
    with pytest.raises(HarnessError, match="does not list: Other"):
        protocol.reshape(task, bad, evaluated=True, seed=42)


def test_clotho_layout_equals_mteb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MAEB's ClothoT2ARetrieval: one table of clips whose captions are joined by "."; mteb's
    own ``load_data`` builds the queries, corpus and qrels we compare with."""
    import mteb.tasks.retrieval.eng.clotho as clotho

    rng = np.random.default_rng(9)
    pitches = rng.choice(PITCHES, size=12).tolist()
    captions = [  # later captions keep their leading space, a final "." adds an empty one
        ". ".join(f"tone {p + 30 * rng.normal():.0f}" for _ in range(int(rng.integers(1, 4))))
        + ("." if row % 3 == 0 else "")
        for row, p in enumerate(pitches)
    ]
    clips = [clip(p, 500 + row) for row, p in enumerate(pitches)]
    indices = [f"clip{row}" for row in range(len(clips))]
    write_table(
        tmp_path / "data" / "default" / "test.parquet",
        {"index": indices, "audio": clips, "text": captions},
        ["audio"],
    )
    task = definition(
        tmp_path,
        {
            "name": "ToyClotho",
            "type": "retrieval",
            "category": "t2a",
            "dataset": {"path": str(tmp_path / "data"), "columns": {"id": "index"}},
            "protocol": {"paired": {"caption_separator": "."}},
        },
    )
    [scores] = evaluate(task).subsets
    table = datasets.Dataset.from_dict({"index": indices, "audio": indices, "text": captions})
    monkeypatch.setattr(clotho, "load_dataset", lambda **_: table)
    reference_task = mteb.get_task("ClothoT2ARetrieval")
    reference_task.load_data()
    queries = reference_task.queries["test"]
    vectors = {key: clip_vector(c) for key, c in zip(indices, clips, strict=True)}
    vectors |= {
        qid: text_vector(text) for qid, text in zip(queries["id"], queries["text"], strict=True)
    }
    case = {
        "queries": queries["id"],
        "docs": indices,
        "vectors": vectors,
        "qrels": reference_task.relevant_docs["test"],
        "candidates": None,
    }
    reference = mteb_retrieval(case, "cosine")
    keys = [key for key in scores if key in reference and isinstance(scores[key], float)]
    assert close(scores, reference, keys) < 1e-6
    assert scores["ndcg_at_10"] > 0.3


def test_cross_validated_subsets_are_scored_each_as_mteb_does(tmp_path: Path) -> None:
    """MInDS14's layout: one config per language, each cross-validated on its own."""
    references = {}
    for number, (subset, n) in enumerate((("en-GB", 45), ("fr-FR", 52))):
        clips, labels = labelled_clips(n, 20 + number, noise=2.0)
        write_table(
            tmp_path / "data" / subset / "train.parquet",
            {"audio": clips, "intent_class": labels},
            ["audio"],
        )
        references[subset] = mteb_cross_validated(np.stack([clip_vector(c) for c in clips]), labels)
    languages = {"en-GB": ["eng-Latn"], "fr-FR": ["fra-Latn"]}
    task = definition(
        tmp_path,
        {
            "name": "ToyMInDS14",
            "type": "linear_probe",
            "category": "a2c",
            "eval_splits": ["train"],
            "dataset": {"path": str(tmp_path / "data"), "columns": {"label": "intent_class"}},
            "protocol": {
                "cross_validation_folds": 5,
                "samples_per_label": 8,
                "fit_dtype": "float32",
                "subsets": languages,
            },
        },
    )
    outcome = evaluate(task, split="train")
    assert [entry["hf_subset"] for entry in outcome.subsets] == list(languages)
    for entry in outcome.subsets:
        reference = references[entry["hf_subset"]]
        keys = [key for key in CLASSIFICATION_METRICS if not np.isnan(reference[key])]
        assert close(entry, reference, keys) < 1e-6
        assert entry["languages"] == languages[entry["hf_subset"]]
    assert set(outcome.units) == set(languages)


def test_options_off_by_default_stay_out_of_the_record() -> None:
    """Results recorded before these options existed keep their identity."""
    from harness.tasks.linear_probe import LinearProbeProtocol
    from harness.tasks.multilabel import MultilabelProtocol
    from harness.tasks.retrieval import RetrievalProtocol

    new = {"exclude_labels", "label_ids", "stratified_subsample", "cross_validation_folds"}
    assert not new & set(LinearProbeProtocol().model_dump(mode="json"))
    assert "subsets" not in MultilabelProtocol().model_dump(mode="json")
    assert "caption_separator" not in RetrievalProtocol(paired={}).model_dump()["paired"]
    assert "grouped" not in RetrievalProtocol().model_dump()
    dumped = LinearProbeProtocol(cross_validation_folds=5, label_ids={"a": 0}).model_dump()
    assert dumped["cross_validation_folds"] == 5 and dumped["label_ids"] == {"a": 0}


@pytest.mark.parametrize(
    ("name", "category", "group"),
    [("JamAltArtistA2ARetrieval", "a2a", "artist"), ("JamAltLyricA2TRetrieval", "a2t", "text")],
)
def test_jam_alt_layout_equals_mteb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, category: str, group: str
) -> None:
    """MAEB's JamAlt tasks: one table of lyric lines; each language is a subset, every clip a
    query, relevant to the rows of the same artist (or the same lyric line), its own included.
    mteb's own loader builds the queries, corpus and qrels we compare with."""
    import mteb.tasks.retrieval.multilingual.jam_alt as jam_alt

    rng = np.random.default_rng(11)
    rows: dict[str, list[Any]] = {
        "song_name": [], "line_indices": [], "song_language": [], "artist": [], "text": []
    }  # fmt: skip
    clips: list[bytes] = []
    for line in range(36):
        pitch = int(rng.integers(0, len(PITCHES)))
        rows["song_name"].append(f"song{line % 5}")
        rows["line_indices"].append([line, line + 1])
        rows["song_language"].append(["en", "fr"][line % 2])
        rows["artist"].append(f"artist{pitch}")
        rows["text"].append(f"tone {PITCHES[pitch] + (0 if line % 4 else 900):.0f}")
        clips.append(clip(PITCHES[pitch], 700 + line))
    write_table(tmp_path / "data" / "default" / "test.parquet", {**rows, "audio": clips}, ["audio"])
    languages = {"en": ["eng-Latn"], "fr": ["fra-Latn"]}
    task = definition(
        tmp_path,
        {
            "name": name,
            "type": "retrieval",
            "category": category,
            "dataset": {"path": str(tmp_path / "data")},
            "protocol": {
                "grouped": {
                    "group_column": group,
                    "id_template": "{song_name}{line_indices[0]}",
                    "subset_column": "song_language",
                    "subsets": languages,
                }
            },
        },
    )
    ours = {entry["hf_subset"]: entry for entry in evaluate(task).subsets}
    keys = [f"clip{line}" for line in range(len(clips))]
    table = datasets.Dataset.from_dict({**rows, "audio": keys})
    monkeypatch.setattr(jam_alt, "load_dataset", lambda **_: table)
    monkeypatch.setattr(jam_alt, "Audio", lambda **_: datasets.Value("string"))
    reference_task = mteb.get_task(name)
    reference_task.hf_subsets = list(languages)
    reference_task.load_data()
    vectors_of = {key: clip_vector(c) for key, c in zip(keys, clips, strict=True)}
    assert list(ours) == list(languages)
    for language in languages:
        queries = reference_task.queries[language]["test"]
        corpus = reference_task.corpus[language]["test"]
        pairs = zip(queries["id"], queries["audio"], strict=True)
        vectors = {qid: vectors_of[key] for qid, key in pairs}
        document_column = "audio" if category == "a2a" else "text"
        for doc_id, value in zip(corpus["id"], corpus[document_column], strict=True):
            vectors[doc_id] = vectors_of[value] if category == "a2a" else text_vector(value)
        case = {
            "queries": queries["id"],
            "docs": corpus["id"],
            "vectors": vectors,
            "qrels": reference_task.relevant_docs[language]["test"],
            "candidates": None,
        }
        reference = mteb_retrieval(case, "cosine")
        metric_keys = [
            k for k in ours[language] if k in reference and isinstance(reference[k], float)
        ]
        assert len(metric_keys) > 40
        assert close(ours[language], reference, metric_keys) < 1e-6
        assert ours[language]["languages"] == languages[language]
