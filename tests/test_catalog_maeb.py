"""MAEB's catalog entries: every task of MAEB(v1) and MAEB(v1, audio-only), read as mteb reads it.

Each distinct dataset layout (``tests.catalog_layouts``) is written as a tiny local dataset in
that layout, with short generated WAV clips in ``datasets.Audio`` columns, read back through
``load_dataset`` and scored end to end by ``harness run`` with a toy audio-and-text model. The
column names, protocol constants and label texts are compared with mteb's own task classes.
"""

from __future__ import annotations

import copy
import io
import math
import warnings
import zlib
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import soundfile
import yaml
from pydantic import ValidationError
from threadpoolctl import threadpool_limits

import harness.app.runner
from harness.core.adapter import AdapterMeta, Item, Role
from harness.core.audio import resample
from harness.core.items import RawItem
from harness.tasks.benchmarks import builtin_benchmarks
from harness.tasks.definition import TaskDefinition
from harness.tasks.labelled import LabelledSplit
from harness.tasks.loading import column
from harness.tasks.registry import task_type
from harness.tasks.retrieval import RetrievalProtocol
from tests.catalog_layouts import catalog_tasks, layout_params, score_on_fixture

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb

CATALOG = catalog_tasks(audio=True)
BENCHMARKS = {"maeb": "MAEB(v1)", "maeb-audio-only": "MAEB(v1, audio-only)"}
RATE = 16_000  # the fixtures' clips and the toy model's rate
N_LABELS = 3
LABEL_NAMES = ("calm", "happy", "sad")
TOY_MODEL = "toy-maeb"
# Label columns an entry reads under another name than mteb's task class: mteb derives them in
# dataset_transform from the entry's column (`gender` to 0/1 ids; the entries map them with
# `label_ids`, checked against mteb's transform below).
DERIVED_LABELS = {"IEMOCAPGender": "gender", "VoxPopuliGenderClustering": "gender"}
# Metrics each type reports beside its main score.
METRICS = {
    "retrieval": {"ndcg_at_10", "map_at_1000", "hit_rate_at_5", "recall_at_10"},
    "reranking": {"ndcg_at_10", "map_at_1000", "mrr_at_10"},
    "linear_probe": {"accuracy", "f1", "precision", "recall", "scores_per_experiment"},
    "multilabel_classification": {"lrap", "f1", "accuracy", "hamming", "scores_per_experiment"},
    "zero_shot_classification": {"accuracy", "f1", "precision", "recall"},
    "clustering_fast": {"v_measure", "v_measure_std", "ami"},
    "pair_classification": {"max_ap", "max_f1", "max_accuracy", "cosine_ap"},
}


def test_catalog_defines_every_maeb_task() -> None:
    """Every task of both benchmarks is an entry, and every MAEB entry is in ``maeb``."""
    for name, mteb_name in BENCHMARKS.items():
        benchmark = builtin_benchmarks()[name]
        assert benchmark.mteb_name == mteb_name
        assert benchmark.missing_tasks() == []
    assert {task.name for task in CATALOG} == set(builtin_benchmarks()["maeb"].tasks)


# --- fixtures: the layouts, with generated clips ----------------------------------------------


def wav(label: int, row: int) -> dict[str, Any]:
    """A short 16 kHz WAV clip as a stored Audio cell: a tone whose pitch tells its label."""
    seconds = 0.2 + 0.02 * (row % 3)
    t = np.arange(int(seconds * RATE)) / RATE
    samples = 0.5 * np.sin(2 * np.pi * (220.0 * 2**label + 3 * row) * t)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.astype(np.float32), RATE, format="WAV", subtype="PCM_16")
    return {"bytes": buffer.getvalue(), "path": None}


def write_configs(
    root: Path, configs: dict[str, dict[str, dict[str, list[Any]]]], features: datasets.Features
) -> Path:
    """Write ``{config: {split: columns}}`` as ``<config>/<split>-*.parquet`` with a dataset
    card naming every config and split, as the hub's parquet datasets are laid out."""
    card: list[dict[str, Any]] = []
    for config, splits in configs.items():
        (root / config).mkdir(parents=True, exist_ok=True)
        files = []
        for split, columns in splits.items():
            data = stored_audio(columns, datasets.Features({n: features[n] for n in columns}))
            data.to_parquet(str(root / config / f"{split}-00000-of-00001.parquet"))
            files.append({"split": split, "path": f"{config}/{split}-*.parquet"})
        card.append({"config_name": config, "data_files": files})
    (root / "README.md").write_text(f"---\n{yaml.safe_dump({'configs': card})}---\n")
    return root


def stored_audio(columns: dict[str, list[Any]], features: datasets.Features) -> datasets.Dataset:
    """A table whose Audio columns hold the given WAV bytes as they are (built as
    ``{bytes, path}`` structs, then cast, so that writing encodes nothing)."""
    audio = [name for name, feature in features.items() if isinstance(feature, datasets.Audio)]
    struct = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    data = datasets.Dataset.from_dict(
        columns, features=datasets.Features({**features, **dict.fromkeys(audio, struct)})
    )
    for name in audio:
        data = data.cast_column(name, datasets.Audio())
    return data


def feature_of(modality: str) -> Any:
    return datasets.Audio() if modality == "audio" else datasets.Value("string")


def item_cell(modality: str, label: int, row: int) -> Any:
    return wav(label, row) if modality == "audio" else f"sound number {label} row {row}"


def label_values(task: TaskDefinition) -> tuple[list[Any], Any]:
    """The labels a fixture's rows cycle through, and their feature: the names ``label_ids``
    maps, or the names with those ``exclude_labels`` drops (strings), else ClassLabel ids."""
    protocol = task.protocol
    if protocol.get("label_ids"):
        return list(protocol["label_ids"]), datasets.Value("string")
    if protocol.get("exclude_labels"):
        return [*LABEL_NAMES, *protocol["exclude_labels"]], datasets.Value("string")
    return list(range(len(LABEL_NAMES))), datasets.ClassLabel(names=list(LABEL_NAMES))


def write_labelled(
    task: TaskDefinition, root: Path, splits: dict[str, list[Any]], label_feature: Any
) -> Path:
    """Config ``default`` (or the entry's, or each of its ``subsets``), each split's clips and
    labels in the entry's columns; a clip's pitch tells its (first) label."""
    audio, label = column(task, "audio"), column(task, "label")
    features = datasets.Features({audio: datasets.Audio(), label: label_feature})
    configs = list(task.protocol.get("subsets", {})) or [
        task.dataset.configs.get("default", "default")
    ]
    stored = {task.dataset.splits.get("default", split): labels for split, labels in splits.items()}
    pitch = {str(value): i for i, value in enumerate([*LABEL_NAMES, *label_values(task)[0]])}
    columns = {
        split: {
            audio: [
                wav(pitch[str(x[0] if isinstance(x, list) else x)] % 5, row)
                for row, x in enumerate(xs)
            ],
            label: xs,
        }
        for split, xs in stored.items()
    }
    return write_configs(root, dict.fromkeys(configs, columns), features)


def write_cycled(task: TaskDefinition, root: Path, sizes: dict[str, int]) -> Path:
    """Each split's rows cycling through the entry's label values (see ``label_values``)."""
    values, feature = label_values(task)
    splits = {split: [values[i % len(values)] for i in range(n)] for split, n in sizes.items()}
    return write_labelled(task, root, splits, feature)


def write_linear_probe_fixture(task: TaskDefinition, root: Path) -> Path:
    """The train split and the eval splits; cross-validated, the one split, long enough that
    every fold's evaluation rows hold more than two labels (else the binary metrics apply)."""
    protocol: Any = task_type(task).protocol(task)
    if protocol.cross_validation_folds:
        return write_cycled(task, root, {protocol.train_split: 60})
    return write_cycled(
        task, root, {protocol.train_split: 24} | dict.fromkeys(task.eval_splits, 12)
    )


def write_multilabel_classification_fixture(task: TaskDefinition, root: Path) -> Path:
    """Rows holding one or two label names each."""

    def label_sets(n: int) -> list[list[str]]:
        return [
            sorted({LABEL_NAMES[i % N_LABELS], LABEL_NAMES[(i // 2) % N_LABELS]}) for i in range(n)
        ]

    protocol: Any = task_type(task).protocol(task)
    splits = {protocol.train_split: label_sets(12)}
    splits |= {split: label_sets(6) for split in task.eval_splits}
    return write_labelled(task, root, splits, datasets.List(datasets.Value("string")))


def write_clustering_fast_fixture(task: TaskDefinition, root: Path) -> Path:
    return write_cycled(task, root, dict.fromkeys(task.eval_splits, 12))


def write_zero_shot_classification_fixture(task: TaskDefinition, root: Path) -> Path:
    return write_cycled(task, root, dict.fromkeys(task.eval_splits, 6))


def write_pair_classification_fixture(task: TaskDefinition, root: Path) -> Path:
    """One row per pair: two clips and a 0/1 label (1 when both have the same pitch)."""
    first, second = column(task, "sentence1"), column(task, "sentence2")
    label = column(task, "labels")
    features = datasets.Features(
        {first: datasets.Audio(), second: datasets.Audio(), label: datasets.Value("int64")}
    )
    pairs = [(a, b) for a in range(N_LABELS) for b in range(N_LABELS)]
    columns: dict[str, list[Any]] = {
        first: [wav(a, row) for row, (a, _) in enumerate(pairs)],
        second: [wav(b, row + 1) for row, (_, b) in enumerate(pairs)],
        label: [int(a == b) for a, b in pairs],
    }
    splits = {task.dataset.splits.get("default", split): columns for split in task.eval_splits}
    return write_configs(root, {"default": splits}, features)


def retrieval_parts(task: TaskDefinition, n: int = 6) -> dict[str, dict[str, list[Any]]]:
    """mteb's retrieval layout: ``corpus``, ``queries`` and ``qrels``; query i's relevant
    document is document i."""
    parts: dict[str, dict[str, list[Any]]] = {}
    for part, side in (("queries", task.sides.query), ("corpus", task.sides.document)):
        parts[part] = {"id": [f"{part[0]}{i}" for i in range(n)]}
        for modality in side:
            parts[part][column(task, modality)] = [
                item_cell(modality, i % N_LABELS, i) for i in range(n)
            ]
    parts["qrels"] = {
        "query-id": [f"q{i}" for i in range(n)],
        "corpus-id": [f"c{i}" for i in range(n)],
        "score": [1] * n,
    }
    return parts


def retrieval_features(task: TaskDefinition) -> datasets.Features:
    modalities = {*task.sides.query, *task.sides.document}
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            **{column(task, m): feature_of(m) for m in modalities},
            "query-id": datasets.Value("string"),
            "corpus-id": datasets.Value("string"),
            "corpus-ids": datasets.List(datasets.Value("string")),
            "score": datasets.Value("int64"),
        }
    )


def write_paired_fixture(task: TaskDefinition, root: Path, n: int = 6) -> Path:
    """One table of clips with their captions (``paired``; one per config of
    ``config_subsets``): an id, a clip, and its captions joined by the entry's
    ``caption_separator`` (ending with it, as some of Clotho's do), or one caption."""
    spec = task.protocol["paired"]
    separator = spec.get("caption_separator")
    names = {name: column(task, name) for name in ("id", "text", "audio")}
    captions = [
        separator.join([f"sound {i % N_LABELS} first", f"sound {i % N_LABELS} second", ""])
        if separator
        else f"sound number {i % N_LABELS} row {i}"
        for i in range(n)
    ]
    columns: dict[str, list[Any]] = {
        names["id"]: [f"clip{i}" for i in range(n)],
        names["text"]: captions,
        names["audio"]: [wav(i % N_LABELS, i) for i in range(n)],
    }
    features = datasets.Features(
        {
            names["id"]: datasets.Value("string"),
            names["text"]: datasets.Value("string"),
            names["audio"]: datasets.Audio(),
        }
    )
    configs = list(task.protocol.get("config_subsets", {})) or [
        task.dataset.configs.get("pairs", "default")
    ]
    splits = dict.fromkeys(task.eval_splits, columns)
    return write_configs(root, dict.fromkeys(configs, splits), features)


def write_repeated_ids_fixture(task: TaskDefinition, root: Path, n: int = 4) -> Path:
    """FLEURS' layout (``duplicates: pool``; one config per language): a row per recording,
    its sentence's integer ``id`` and transcription repeated for each of its speakers (two,
    the first sentence one), every clip different."""
    rows = [sentence for sentence in range(n) for _ in range(1 if sentence == 0 else 2)]
    names = {name: column(task, name) for name in ("id", "text", "audio")}
    columns: dict[str, list[Any]] = {
        names["id"]: [1000 + sentence for sentence in rows],
        names["text"]: [
            f"sound number {sentence % N_LABELS} sentence {sentence}" for sentence in rows
        ],
        names["audio"]: [wav(sentence % N_LABELS, row) for row, sentence in enumerate(rows)],
    }
    features = datasets.Features(
        {
            names["id"]: datasets.Value("int32"),
            names["text"]: datasets.Value("string"),
            names["audio"]: datasets.Audio(),
        }
    )
    splits = dict.fromkeys(task.eval_splits, columns)
    return write_configs(root, dict.fromkeys(task.protocol["config_subsets"], splits), features)


def write_grouped_fixture(task: TaskDefinition, root: Path) -> Path:
    """One table of sung lines (``grouped``): a clip, its lyric, the artist, the song, the line
    numbers and the language; two artists per language, each line sung twice."""
    spec = task.protocol["grouped"]
    languages = list(spec["subsets"])
    rows = [
        (language, artist, line) for language in languages for artist in (0, 1) for line in (0, 1)
    ]
    columns: dict[str, list[Any]] = {
        column(task, "audio"): [wav(artist, n) for n, (_, artist, _) in enumerate(rows)],
        column(task, "text"): [f"line {line} of artist {artist}" for _, artist, line in rows],
        "artist": [f"{language}-artist-{artist}" for language, artist, _ in rows],
        "song_name": [f"{language}-song-{artist}" for language, artist, _ in rows],
        "line_indices": [[n, n + 1] for n in range(len(rows))],
        spec["subset_column"]: [language for language, _, _ in rows],
    }
    features = datasets.Features(
        {
            column(task, "audio"): datasets.Audio(),
            column(task, "text"): datasets.Value("string"),
            "artist": datasets.Value("string"),
            "song_name": datasets.Value("string"),
            "line_indices": datasets.List(datasets.Value("int64")),
            spec["subset_column"]: datasets.Value("string"),
        }
    )
    config = task.dataset.configs.get("pairs", "default")
    return write_configs(root, {config: dict.fromkeys(task.eval_splits, columns)}, features)


def write_retrieval_fixture(task: TaskDefinition, root: Path) -> Path:
    if task.protocol.get("duplicates") == "pool":
        return write_repeated_ids_fixture(task, root)
    if "paired" in task.protocol:
        return write_paired_fixture(task, root)
    if "grouped" in task.protocol:
        return write_grouped_fixture(task, root)
    parts = retrieval_parts(task)
    configs = {part: {"test": columns} for part, columns in parts.items()}
    return write_configs(root, configs, retrieval_features(task))


def write_reranking_fixture(task: TaskDefinition, root: Path) -> Path:
    """The retrieval layout plus ``top_ranked``: each query's candidates, its own document
    and the next two."""
    parts = retrieval_parts(task)
    n = len(parts["queries"]["id"])
    parts["top_ranked"] = {
        "query-id": [f"q{i}" for i in range(n)],
        "corpus-ids": [[f"c{(i + k) % n}" for k in (2, 0, 1)] for i in range(n)],
    }
    configs = {part: {"test": columns} for part, columns in parts.items()}
    return write_configs(root, configs, retrieval_features(task))


WRITERS: dict[str, Callable[[TaskDefinition, Path], Path]] = {
    "retrieval": write_retrieval_fixture,
    "reranking": write_reranking_fixture,
    "linear_probe": write_linear_probe_fixture,
    "multilabel_classification": write_multilabel_classification_fixture,
    "clustering_fast": write_clustering_fast_fixture,
    "zero_shot_classification": write_zero_shot_classification_fixture,
    "pair_classification": write_pair_classification_fixture,
}


# --- a toy model for audio and text ----------------------------------------------------------


class ToyAudioTextAdapter:
    """Embeds a clip by its dominant pitch and loudness, a text by a checksum of its words:
    enough to give every layout finite, non-trivial scores."""

    meta = AdapterMeta(
        TOY_MODEL,
        "v1",
        "test",
        "cosine",
        ("audio", "text"),
        "float32",
        options={"sampling_rate": RATE},
    )

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        if "audio" in item:
            return {"audio": resample(item["audio"], RATE).samples}
        return dict(item)

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        return np.asarray([self._vector(item) for item in items], dtype=np.float32)

    @staticmethod
    def _vector(item: Item) -> list[float]:
        if "audio" in item:
            samples = item["audio"]
            pitch = np.argmax(np.abs(np.fft.rfft(samples))) * RATE / len(samples)
            return [math.log2(pitch / 110.0), float(np.sqrt(np.mean(samples**2))), 0.1, 1.0]
        checksum = zlib.crc32(str(item.get("text", "")).encode()) % 1000
        return [checksum / 250.0, 0.3, 1.0, 0.5]


@pytest.fixture
def toy_model(monkeypatch: pytest.MonkeyPatch) -> str:
    """``harness run --model toy-maeb`` loads a :class:`ToyAudioTextAdapter`."""
    real = harness.app.runner.load_adapter

    def load(model: str, **kwargs: Any) -> Any:
        return ToyAudioTextAdapter() if model == TOY_MODEL else real(model, **kwargs)

    monkeypatch.setattr(harness.app.runner, "load_adapter", load)
    return TOY_MODEL


def subset_names(task: TaskDefinition) -> list[str]:
    """The subsets a result holds: the entry's configs, or its grouped layout's values."""
    protocol = task.protocol
    subsets = (
        protocol.get("grouped", {}).get("subsets")
        or protocol.get("config_subsets")
        or protocol.get("subsets")
    )
    return list(subsets or ["default"])


@pytest.mark.parametrize("task", layout_params(CATALOG))
def test_layout_scores(task: TaskDefinition, toy_model: str, tmp_path: Path) -> None:
    with threadpool_limits(limits=1):  # MiniBatchKMeans' threads only spin on these few rows
        result = score_on_fixture(task, WRITERS[task.type], Path(toy_model), tmp_path)
    assert set(result["scores"]) == set(task.eval_splits)
    for split in task.eval_splits:
        assert [scores["hf_subset"] for scores in result["scores"][split]] == subset_names(task)
        for scores in result["scores"][split]:
            assert math.isfinite(scores["main_score"])
            assert scores["main_score"] == scores[task_type(task).main_score(task)]
            assert METRICS[task.type] <= set(scores)


# --- the entries against mteb's task classes -------------------------------------------------


@cache
def mteb_task(name: str) -> Any:
    """mteb's task as MAEB(v1) runs it (the benchmark narrows some tasks' subsets)."""
    return {task.metadata.name: task for task in mteb.get_benchmark("MAEB(v1)").tasks}[name]


@pytest.mark.parametrize(
    "task",
    [t for t in CATALOG if t.type not in ("retrieval", "reranking", "pair_classification")],
    ids=lambda task: task.name,
)
def test_labelled_columns_and_constants_match_mteb(task: TaskDefinition) -> None:
    reference = mteb_task(task.name)
    assert column(task, "audio") == reference.input_column_name
    label = DERIVED_LABELS.get(task.name, reference.label_column_name)
    assert column(task, "label") == label
    protocol: Any = task_type(task).protocol(task)
    subsets = task.protocol.get("subsets") or {"default": task.languages}
    assert list(subsets) == list(reference.hf_subsets)
    if len(subsets) > 1 or "default" not in subsets:
        assert subsets == {
            name: reference.metadata.hf_subsets_to_langscripts[name] for name in subsets
        }
    if task.type in ("linear_probe", "multilabel_classification"):
        assert protocol.samples_per_label == reference.samples_per_label
        assert protocol.n_experiments == reference.n_experiments
        assert protocol.train_split == reference.train_split
    if task.type == "linear_probe":
        folds = reference.n_splits if reference.is_cross_validation else None
        assert protocol.cross_validation_folds == folds
    if task.type == "multilabel_classification":
        assert protocol.max_eval_samples == reference.max_eval_samples
        assert protocol.classifier == "logistic"  # mteb fits its MultiOutputClassifier
        assert type(reference.evaluator_model).__name__ == "MultiOutputClassifier"
    if task.type == "clustering_fast":
        assert protocol.max_fraction_of_documents_to_embed == (
            reference.max_fraction_of_documents_to_embed
        )
        assert protocol.max_document_to_embed == reference.max_document_to_embed
        assert protocol.kmeans_batch_size == reference.k_mean_batch_size
    if task.type == "zero_shot_classification":
        assert protocol.label_names == reference.get_candidate_labels()
        assert [protocol.template.replace("{label}", name) for name in protocol.label_names] == (
            reference.get_candidate_labels()
        )
        assert (protocol.label_scoring == "softmax") == (
            reference.metadata.modalities == ["image", "text"]
        )


@pytest.mark.parametrize(
    "task", catalog_tasks("pair_classification", audio=True), ids=lambda task: task.name
)
def test_pair_columns_match_mteb(task: TaskDefinition) -> None:
    reference = mteb_task(task.name)
    assert column(task, "sentence1") == reference.input1_column_name
    assert column(task, "sentence2") == reference.input2_column_name
    assert column(task, "labels") == reference.label_column_name


@pytest.mark.parametrize(
    "task", catalog_tasks("retrieval", "reranking", audio=True), ids=lambda task: task.name
)
def test_retrieval_constants_and_prompts_match_mteb(task: TaskDefinition) -> None:
    reference = mteb_task(task.name)
    protocol: Any = task_type(task).protocol(task)
    assert protocol.k_values == tuple(reference.k_values)
    assert protocol.skip_first_result == reference.skip_first_result
    assert subset_names(task) == list(reference.hf_subsets)
    named = task.protocol.get("grouped", {}).get("subsets") or task.protocol.get("config_subsets")
    named = named or {}
    assert named == {name: reference.metadata.hf_subsets_to_langscripts[name] for name in named}
    prompts = reference.metadata.prompt or {}
    assert task.prompts.query == prompts.get("query")
    assert task.prompts.document == prompts.get("document")


@pytest.mark.parametrize(
    "task",
    [t for t in CATALOG if {"exclude_labels", "label_ids"} & set(t.protocol)],
    ids=lambda task: task.name,
)
def test_label_reshaping_matches_mtebs_dataset_transform(task: TaskDefinition) -> None:
    """The rows and labels ``exclude_labels`` and ``label_ids`` leave are those mteb's own
    dataset_transform leaves, on a split holding every label the entry names."""
    names = [str(value) for value in label_values(task)[0]]
    protocol: Any = task_type(task).protocol(task)
    splits = {getattr(protocol, "train_split", task.eval_splits[0]), *task.eval_splits}
    reference = copy.deepcopy(mteb_task(task.name))
    stored = datasets.Dataset.from_dict({column(task, "label"): names})
    reference.dataset = datasets.DatasetDict(
        {task.dataset.splits.get("default", split): stored for split in splits}
    )
    reference.dataset_transform()
    evaluated = reference.dataset[task.eval_splits[0]]
    expected = evaluated[reference.label_column_name]
    feature = evaluated.features[reference.label_column_name]
    if isinstance(feature, datasets.ClassLabel) and not protocol.label_ids:
        expected = feature.int2str(expected)  # mteb's stratified_subsampling casts to ids
    items = [RawItem.of(str(row), text=name) for row, name in enumerate(names)]
    ours = protocol.reshape(
        task, LabelledSplit(items, names, None, split="x"), evaluated=True, seed=protocol.seed
    )
    assert ours.labels == expected


def test_repeated_ids_are_read_as_mtebs_dataset_transform_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FLEURS' layout, read by the entry and by mteb's FleursT2ARetrieval from the same local
    dataset: the same query and document rows in the same order (every speaker's row, ids
    repeated), the same texts and clips, and the same judgments (mteb's ids, prefixed as
    ``paired`` names them). ``tests/test_pooled_search.py`` checks the search and the scores
    of such rows against mteb's. mteb reads the clips undecoded here (torchcodec is not
    installed); its transform does not look into them."""
    (task,) = [task for task in CATALOG if task.protocol.get("duplicates") == "pool"]
    languages = dict(list(task.protocol["config_subsets"].items())[:2])
    task = task.model_copy(update={"protocol": {**task.protocol, "config_subsets": languages}})
    fixture = write_repeated_ids_fixture(task, tmp_path / "fixture")
    local = {"path": str(fixture), "revision": None}
    task = task.model_copy(update={"dataset": task.dataset.model_copy(update=local)})
    loaded: Any = task_type(task).load(task, "test")
    reference = copy.deepcopy(mteb_task(task.name))
    reference.hf_subsets = list(languages)
    reference.metadata = reference.metadata.model_copy(update={"dataset": local})  # not the class's
    load_dataset = datasets.load_dataset
    monkeypatch.setattr(
        datasets,
        "load_dataset",
        lambda *args, **kwargs: load_dataset(*args, **kwargs).cast_column(
            "audio", datasets.Audio(decode=False)
        ),
    )
    reference.load_data()
    for language in languages:
        part = loaded.parts[language]
        queries = reference.queries[language]["test"]
        corpus = reference.corpus[language]["test"]
        assert [query.id for query in part.queries] == [f"query-{i}" for i in queries["id"]]
        assert len(set(queries["id"])) < len(queries)  # ids repeat
        assert [query.parts["text"] for query in part.queries] == queries["text"]
        assert [doc.id for doc in part.corpus] == [f"corpus-{i}" for i in corpus["id"]]
        assert [doc.parts["audio"].data for doc in part.corpus] == [
            clip["bytes"] for clip in corpus["audio"]
        ]
        assert part.qrels == {
            f"query-{query}": {f"corpus-{doc}": score for doc, score in docs.items()}
            for query, docs in reference.relevant_docs[language]["test"].items()
        }


def test_config_subsets_take_no_other_subsets() -> None:
    english = {"en": ["eng-Latn"]}
    with pytest.raises(ValidationError, match="`config_subsets` reads each subset from its own"):
        RetrievalProtocol.model_validate({"config_subsets": english, "split_subsets": english})
    for layout in ({"paired": {"ids": "column"}}, {}):  # a paired table or BEIR configs each
        protocol = RetrievalProtocol.model_validate({**layout, "config_subsets": english})
        assert protocol.subset_languages == english
