"""MVEB's labelled catalog entries (video classification, clustering, pair classification and
zero-shot), read and scored as mteb reads and scores them.

Each distinct dataset layout (``tests.catalog_layouts``) is written as a tiny local dataset:
clips of 4 frames of 16 x 16 in ``datasets.Video`` columns, whose colour tells the label, and
their audio tracks as short WAVs in ``datasets.Audio`` columns, whose pitch tells it too. Each is
scored end to end by ``harness run`` with a toy video, audio and text model. The columns,
protocol constants, label texts and ``dataset_transform`` steps are compared with mteb's task
classes, and the scores with mteb's evaluators fed the same vectors as mteb's video wrappers
hand them over (torch tensors, which scikit-learn fits in float64).
"""

from __future__ import annotations

import copy
import io
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import soundfile
import torch
from threadpoolctl import threadpool_limits

import harness.app.runner
from harness.core.adapter import AdapterMeta, Item, Role
from harness.core.audio import resample
from harness.core.items import RawItem
from harness.core.video import FrameSampling, Video, encode_video
from harness.engine.encoding import BatchEncoder
from harness.scoring.classification import CLASSIFICATION_METRICS
from harness.scoring.clustering_fast import METRIC_KEYS as CLUSTERING_KEYS
from harness.scoring.pair_classification import METRIC_KEYS as PAIR_KEYS
from harness.tasks.definition import TaskDefinition
from harness.tasks.labelled import LabelledSplit
from harness.tasks.loading import column
from harness.tasks.pair_classification import side_columns
from harness.tasks.registry import task_type
from tests.catalog_layouts import catalog_tasks, layout_params, score_on_fixture

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mteb
    from mteb.similarity_functions import cos_sim, pairwise_cos_sim
    from mteb.timing import TimingStack

TYPES = {
    "linear_probe": "VideoClassification",
    "clustering_fast": "VideoClustering",
    "pair_classification": "VideoPairClassification",
    "zero_shot_classification": "VideoZeroshotClassification",
}
CATALOG = catalog_tasks(*TYPES, video=True)
BENCHMARKS = ("MVEB(v1)", "MVEB(video, v1)", "MVEB(text, video, v1)")
TOY_MODEL = "toy-mveb"
RATE = 16_000
SAMPLING = FrameSampling(num_frames=4)
# The fixtures' labels (a ClassLabel), each a clip colour and a tone; `neutral` is the label
# MELDEmotionAudioVideoClustering drops.
LABEL_NAMES = ("red", "green", "blue", "neutral")
COLOURS = ((220, 40, 40), (40, 200, 40), (40, 40, 220), (128, 128, 128))
# Scores a toy model that sees the colour (and the tone) must beat on every layout.
FLOORS = {"accuracy": 0.9, "v_measure": 0.9, "max_ap": 0.9}


@cache
def mteb_task(name: str) -> Any:
    """mteb's task of that name (copy it before changing it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mteb.get_task(name)


def test_catalog_defines_every_labelled_mveb_task() -> None:
    """Every classification, clustering, pair classification and zero-shot task of the three
    MVEB benchmarks is an entry of the matching type, and no other video entry of these types
    exists."""
    expected = {
        task.metadata.name: task.metadata.type
        for benchmark in BENCHMARKS
        for task in mteb.get_benchmark(benchmark).tasks
        if task.metadata.type in TYPES.values()
    }
    assert len(expected) == 27
    assert {task.name: TYPES[task.type] for task in CATALOG} == expected


# --- fixtures: the layouts, with generated clips --------------------------------------------


@cache
def clip(label: int, variant: int, noise: float = 0.0) -> bytes:
    """Four 16 x 16 frames of the label's colour, a shade per variant, moved by seeded noise
    (``noise`` times 100 levels), as MP4 bytes."""
    shift = 8 * (variant % 3) + 100 * noise * np.random.default_rng(variant).normal(size=3)
    colour = np.clip(np.asarray(COLOURS[label]) + shift, 0, 255).astype(np.uint8)
    return encode_video(np.ascontiguousarray(np.broadcast_to(colour, (4, 16, 16, 3))), 4.0)


@cache
def wav(label: int, variant: int, noise: float = 0.0) -> bytes:
    """A tenth of a second of the label's tone, its pitch moved by seeded noise (``noise``
    octaves), as 16 kHz WAV bytes."""
    octaves = label + 0.01 * (variant % 3) + noise * np.random.default_rng(variant).normal()
    t = np.arange(RATE // 10) / RATE
    samples = 0.4 * np.sin(2 * np.pi * 220.0 * 2**octaves * t)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.astype(np.float32), RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


CELLS: dict[str, tuple[Callable[..., bytes], Any]] = {
    "video": (clip, datasets.Video()),
    "audio": (wav, datasets.Audio()),
}


STORED_FILE = datasets.Features(
    {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
)
CLASS_LABEL = datasets.ClassLabel(names=list(LABEL_NAMES))


def write_split(
    root: Path,
    split: str,
    columns: Mapping[str, Sequence[Any]],
    kinds: Mapping[str, str],
    label: Any,
) -> None:
    """One parquet file of a split: each column named in ``kinds`` holds a ``video`` or
    ``audio`` cell per row (given as ``(label, variant[, noise])``), stored as a hub Video or
    Audio column; the other column holds labels, of feature ``label``."""
    features = {name: STORED_FILE if name in kinds else label for name in columns}
    cells = {
        name: [{"bytes": CELLS[kinds[name]][0](*cell), "path": None} for cell in values]
        if name in kinds
        else values
        for name, values in columns.items()
    }
    data = datasets.Dataset.from_dict(cells, features=datasets.Features(features))
    for name, kind in kinds.items():
        data = data.cast_column(name, CELLS[kind][1])
    root.mkdir(parents=True, exist_ok=True)
    data.to_parquet(str(root / f"{split}-00000-of-00001.parquet"))


def write_labelled(task: TaskDefinition, root: Path, sizes: dict[str, int]) -> Path:
    """Each split's rows cycling through the labels, a cell per query modality and a label."""
    kinds = {column(task, part): part for part in task.sides.query}
    for split, n in sizes.items():
        labels = [row % len(LABEL_NAMES) for row in range(n)]
        cells = [(label, row % 3) for row, label in enumerate(labels)]
        columns: dict[str, list[Any]] = {
            **dict.fromkeys(kinds, cells),
            column(task, "label"): labels,
        }
        write_split(root, split, columns, kinds, CLASS_LABEL)
    return root


def write_linear_probe_fixture(task: TaskDefinition, root: Path) -> Path:
    """Cross-validated, the one split (long enough for every fold to hold several labels);
    else the train split and the evaluation split."""
    protocol: Any = task_type(task).protocol(task)
    if protocol.cross_validation_folds:
        return write_labelled(task, root, {protocol.train_split: 40})
    return write_labelled(
        task, root, {protocol.train_split: 32, **dict.fromkeys(task.eval_splits, 16)}
    )


def write_clustering_fast_fixture(task: TaskDefinition, root: Path) -> Path:
    return write_labelled(task, root, dict.fromkeys(task.eval_splits, 24))


def write_zero_shot_classification_fixture(task: TaskDefinition, root: Path) -> Path:
    return write_labelled(task, root, dict.fromkeys(task.eval_splits, 12))


def write_pair_classification_fixture(task: TaskDefinition, root: Path) -> Path:
    """A row per pair of labels: the first side's cells, the second's, and 1 when the labels
    are equal."""
    pairs = [(a, b) for a in range(len(LABEL_NAMES)) for b in range(len(LABEL_NAMES))]
    columns: dict[str, list[Any]] = {column(task, "labels"): [int(a == b) for a, b in pairs]}
    kinds: dict[str, str] = {}
    for number, side in enumerate((task.sides.query, task.sides.document), start=1):
        for part, name in side_columns(task, side, number).items():
            kinds[name] = part
            columns[name] = [(pair[number - 1], row % 3) for row, pair in enumerate(pairs)]
    for split in task.eval_splits:
        write_split(root, split, columns, kinds, datasets.Value("int64"))
    return root


WRITERS: dict[str, Callable[[TaskDefinition, Path], Path]] = {
    "linear_probe": write_linear_probe_fixture,
    "clustering_fast": write_clustering_fast_fixture,
    "zero_shot_classification": write_zero_shot_classification_fixture,
    "pair_classification": write_pair_classification_fixture,
}


# --- a toy model for video, audio and text ---------------------------------------------------


def tone(samples: np.ndarray) -> float:
    """The label a tone stands for, from its dominant frequency (0 for the first label)."""
    pitch = np.argmax(np.abs(np.fft.rfft(samples))) * RATE / len(samples)
    return float(math.log2(pitch / 220.0))


def text_colour(text: str) -> np.ndarray:
    """The colour of the label a text names (black when it names none)."""
    words = text.lower().replace("_", " ").split()
    named = [COLOURS[i] for i, name in enumerate(LABEL_NAMES) if name in words]
    return np.asarray(named[0] if named else (0, 0, 0), dtype=np.float32) / 255


def toy_vector(parts: dict[str, Any]) -> np.ndarray:
    """Colour, tone and a constant: a clip's mean colour, a text's colour, an audio track's
    tone; summed over the parts an item has."""
    vector = np.asarray([0.0, 0.0, 0.0, 0.0, 0.1], dtype=np.float32)
    if "video" in parts:
        vector[:3] += parts["video"]
    if "audio" in parts:
        vector[3] += parts["audio"] / 4
    if "text" in parts:
        vector[:3] += text_colour(parts["text"])
    return vector


class ToyVideoAdapter:
    """Embeds a clip by its frames' mean colour, its audio track by its tone, a text by the
    colour it names; records which parts each item had."""

    meta = AdapterMeta(
        TOY_MODEL,
        "v1",
        "test",
        "cosine",
        ("audio", "text", "video"),
        "float32",
        options={"sampling_rate": RATE, **SAMPLING.options()},
    )

    def __init__(self) -> None:
        self.part_sets: set[tuple[str, ...]] = set()

    def preprocess(self, item: Item, *, role: Role = None, instruction: str | None = None) -> Item:
        parts: dict[str, Any] = {}
        if "video" in item:
            parts["video"] = item["video"].frames(SAMPLING).mean(axis=(0, 1, 2)) / 255
        if "audio" in item:
            parts["audio"] = tone(resample(item["audio"], RATE).samples)
        if "text" in item:
            parts["text"] = item["text"]
        return parts

    def encode(
        self, items: Sequence[Item], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        self.part_sets |= {tuple(sorted(item)) for item in items}
        return np.stack([toy_vector(dict(item)) for item in items])


def stored_vector(cells: dict[str, bytes]) -> np.ndarray:
    """The toy model's vector of stored cells (``video``/``audio`` bytes), decoded here."""
    parts: dict[str, Any] = {}
    if "video" in cells:
        parts["video"] = Video(cells["video"]).frames(SAMPLING).mean(axis=(0, 1, 2)) / 255
    if "audio" in cells:
        samples, rate = soundfile.read(io.BytesIO(cells["audio"]), dtype="float32")
        assert rate == RATE
        parts["audio"] = tone(samples)
    return toy_vector(parts)


@pytest.fixture
def toy_adapter(monkeypatch: pytest.MonkeyPatch) -> Iterator[ToyVideoAdapter]:
    """``harness run --model toy-mveb`` loads this :class:`ToyVideoAdapter`."""
    adapter = ToyVideoAdapter()
    real = harness.app.runner.load_adapter

    def load(model: str, **kwargs: Any) -> Any:
        return adapter if model == TOY_MODEL else real(model, **kwargs)

    monkeypatch.setattr(harness.app.runner, "load_adapter", load)
    yield adapter


@pytest.mark.parametrize("task", layout_params(CATALOG))
def test_layout_scores(task: TaskDefinition, toy_adapter: ToyVideoAdapter, tmp_path: Path) -> None:
    """Every layout is read and scored; the model sees each item's clip, with its audio track
    for a ``va`` category, and the scores are far above chance."""
    with threadpool_limits(limits=1):  # MiniBatchKMeans' threads only spin on these few rows
        result = score_on_fixture(task, WRITERS[task.type], Path(TOY_MODEL), tmp_path)
    main = task_type(task).main_score(task)
    [scores] = result["scores"]["test"]
    assert scores["hf_subset"] == "default" and scores["languages"] == task.languages
    assert scores["main_score"] == scores[main] > FLOORS[main]
    inputs = tuple(sorted(task.sides.query))
    assert inputs in toy_adapter.part_sets
    assert toy_adapter.part_sets <= {inputs, ("text",)}


# --- the entries against mteb's task classes -------------------------------------------------


def mteb_columns(columns: Any, modalities: Sequence[str]) -> dict[str, str]:
    """mteb's input columns as ``{column: modality}``: a single column holds the task's first
    modality, a tuple names each column after its modality, a mapping says it."""
    if isinstance(columns, str):
        return {columns: modalities[0]}
    if isinstance(columns, dict):
        return dict(columns)
    return {name: name for name in columns}


def our_columns(task: TaskDefinition) -> dict[str, str]:
    return {column(task, part): part for part in task.sides.query}


@pytest.mark.parametrize(
    "task", [t for t in CATALOG if t.type != "pair_classification"], ids=lambda t: t.name
)
def test_labelled_columns_and_constants_match_mteb(task: TaskDefinition) -> None:
    reference = mteb_task(task.name)
    modalities = reference.metadata.modalities
    assert our_columns(task) == mteb_columns(reference.input_column_name, modalities)
    assert column(task, "label") == reference.label_column_name
    assert list(reference.hf_subsets) == ["default"]
    protocol: Any = task_type(task).protocol(task)
    assert protocol.seed == reference.seed
    if task.type == "linear_probe":
        assert protocol.samples_per_label == reference.samples_per_label
        assert protocol.n_experiments == reference.n_experiments
        assert protocol.train_split == reference.train_split
        folds = reference.n_splits if reference.is_cross_validation else None
        assert protocol.cross_validation_folds == folds
        assert protocol.fit_dtype == "float64"  # mteb's video wrappers hand over tensors
    if task.type == "clustering_fast":
        assert protocol.max_fraction_of_documents_to_embed == (
            reference.max_fraction_of_documents_to_embed
        )
        assert protocol.max_document_to_embed == reference.max_document_to_embed
        assert protocol.n_experiments == reference.n_clusters
        assert protocol.sample_size == reference.max_documents_per_cluster
        assert protocol.kmeans_batch_size == reference.k_mean_batch_size
        assert protocol.fit_dtype == "float64"
    if task.type == "zero_shot_classification":
        assert protocol.label_scoring == "similarity"
        assert modalities != ["image", "text"]  # mteb's softmax path is the image one


@pytest.mark.parametrize(
    "task", catalog_tasks("pair_classification", video=True), ids=lambda t: t.name
)
def test_pair_columns_match_mteb(task: TaskDefinition) -> None:
    reference = mteb_task(task.name)
    modalities = reference.metadata.modalities
    sides = (task.sides.query, task.sides.document)
    for number, (side, columns) in enumerate(
        zip(sides, (reference.input1_column_name, reference.input2_column_name), strict=True),
        start=1,
    ):
        ours = {name: part for part, name in side_columns(task, side, number).items()}
        assert ours == mteb_columns(columns, modalities)
    assert column(task, "labels") == reference.label_column_name


# Stored label names with an underscore, as HMDB51's are, and MELD's `neutral`.
CANDIDATES = ("brush_hair", "ride horse", "neutral", "Joy")


@pytest.mark.parametrize(
    "task", catalog_tasks("zero_shot_classification", video=True), ids=lambda t: t.name
)
def test_label_prompts_match_mtebs_candidate_labels(task: TaskDefinition) -> None:
    """The prompts built from a ClassLabel's names are mteb's ``get_candidate_labels``."""
    protocol: Any = task_type(task).protocol(task)
    assert protocol.label_names == "feature"
    reference = copy.deepcopy(mteb_task(task.name))
    feature = datasets.Features(
        {column(task, "label"): datasets.ClassLabel(names=list(CANDIDATES))}
    )
    stored = datasets.Dataset.from_dict({column(task, "label"): [0]}, features=feature)
    reference.dataset = datasets.DatasetDict({"test": stored})
    prompts = [protocol.template.replace("{label}", n) for n in protocol.rewritten(CANDIDATES)]
    assert prompts == list(reference.get_candidate_labels())


def transformed(task: TaskDefinition) -> bool:
    """Whether mteb's task class reshapes its data in its own ``dataset_transform``."""
    own = type(mteb_task(task.name)).__dict__
    return "dataset_transform" in own


@pytest.mark.parametrize(
    "task",
    [t for t in CATALOG if t.type != "pair_classification" and transformed(t)],
    ids=lambda t: t.name,
)
def test_reshaping_matches_mtebs_dataset_transform(task: TaskDefinition) -> None:
    """The rows the entry keeps of a split of 2,100 unevenly labelled rows (more than MELD's
    2,048-row cut) are the rows mteb's own ``dataset_transform`` keeps, in its order (each
    row's number rides in its ``video`` cell, a column every transform keeps)."""
    rng = np.random.default_rng(0)
    labels = rng.choice(len(LABEL_NAMES), size=2100, p=[0.4, 0.3, 0.2, 0.1]).tolist()
    label = column(task, "label")
    rows = [str(row) for row in range(len(labels))]
    stored = datasets.Dataset.from_dict(
        {"video": rows, "audio": rows, label: labels},
        features=datasets.Features(
            {
                "video": datasets.Value("string"),
                "audio": datasets.Value("string"),
                label: CLASS_LABEL,
            }
        ),
    )
    protocol: Any = task_type(task).protocol(task)
    train = getattr(protocol, "train_split", "test")
    reference = copy.deepcopy(mteb_task(task.name))
    reference.dataset = datasets.DatasetDict(dict.fromkeys({train, *task.eval_splits}, stored))
    reference.dataset_transform()
    expected = reference.dataset["test"]
    items = [RawItem.of(row, text="x") for row in rows]
    data = LabelledSplit(items, labels, list(LABEL_NAMES), split="test")
    ours = protocol.reshape(task, data, evaluated=True, seed=protocol.seed)
    assert [item.id for item in ours.items] == expected["video"]
    assert ours.labels == expected[label]
    if protocol.exclude_labels or protocol.stratified_subsample:
        assert len(ours.labels) < len(labels)


# --- the scorers against mteb's evaluators, fed the vectors as mteb's video wrappers return them


def local(name: str, root: Path) -> TaskDefinition:
    """The catalog entry ``name``, reading the local dataset at ``root``."""
    task = next(task for task in CATALOG if task.name == name)
    spec = task.dataset.model_copy(update={"path": str(root), "revision": None})
    return task.model_copy(update={"dataset": spec})


def evaluate(task: TaskDefinition) -> dict[str, Any]:
    """The entry's scores of split ``test``, encoded by the toy model through the encoder."""
    encoder = BatchEncoder(ToyVideoAdapter(), batch_size=16, show_progress=False)
    with threadpool_limits(limits=1):
        [scores] = task_type(task).evaluate(task, encoder, split="test").subsets
    return scores


def noisy_rows(n: int, seed: int) -> tuple[list[int], list[tuple[int, int, float]]]:
    """``n`` random labels and a noisy cell for each, so that no score is perfect."""
    labels = np.random.default_rng(seed).integers(0, len(LABEL_NAMES), n).tolist()
    return labels, [(label, 100 * seed + row, 0.7) for row, label in enumerate(labels)]


def tensors(cells: Sequence[dict[str, bytes]]) -> torch.Tensor:
    """The toy model's vectors of stored cells, as the torch tensor mteb's wrappers return."""
    return torch.from_numpy(np.stack([stored_vector(c) for c in cells]))


def labelled_cells(task: TaskDefinition, cells: Sequence[tuple[int, int, float]]) -> list[Any]:
    return [{part: CELLS[part][0](*cell) for part in task.sides.query} for cell in cells]


def differences(ours: dict[str, Any], reference: dict[str, Any], keys: Sequence[str]) -> float:
    """The largest absolute difference over the ``keys`` mteb reports a number for."""
    return max(
        abs(float(ours[key]) - float(reference[key]))
        for key in keys
        if reference.get(key) is not None and not np.isnan(reference[key])
    )


class TensorModel:
    """An mteb encoder returning the given tensors, call after call (a callable picks them by
    the inputs), with mteb's cosine similarity."""

    mteb_model_meta = None

    def __init__(self, *outputs: Any) -> None:
        self.outputs = list(outputs)

    def encode(self, inputs: Any, **_: Any) -> Any:
        output = self.outputs.pop(0)
        return output(inputs) if callable(output) else output

    def similarity(self, a: Any, b: Any) -> Any:
        return cos_sim(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return pairwise_cos_sim(a, b)


def placeholder_rows(columns: Sequence[str], labels: list[int], feature: Any) -> datasets.Dataset:
    """mteb's view of the split: the input columns (never read: mteb's dataloaders are
    replaced) and the labels."""
    cells: dict[str, list[Any]] = {name: ["-"] * len(labels) for name in columns}
    return datasets.Dataset.from_dict(
        {**cells, "label": labels},
        features=datasets.Features(
            {**dict.fromkeys(columns, datasets.Value("string")), "label": feature}
        ),
    )


def test_cross_validated_video_probe_equals_mteb_on_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BreakfastClassification's 5-fold cross-validation over its test split, fitted in float64
    as mteb fits the tensors of its video wrappers."""
    task = local("BreakfastClassification", tmp_path)
    labels, cells = noisy_rows(45, 1)
    write_split(
        tmp_path, "test", {"video": cells, "label": labels}, {"video": "video"}, CLASS_LABEL
    )
    ours = evaluate(task)
    import mteb.abstasks.classification as classification

    monkeypatch.setattr(classification, "create_dataloader", lambda *_, **__: None)
    reference = copy.deepcopy(mteb_task(task.name))
    reference.evaluator_model = reference.evaluator_model.set_params(random_state=reference.seed)
    data = datasets.DatasetDict({"test": placeholder_rows(["video"], labels, CLASS_LABEL)})
    expected = reference._evaluate_subset_cross_validation(
        TensorModel(tensors(labelled_cells(task, cells))),
        data,
        encode_kwargs={},
        hf_split="test",
        hf_subset="default",
        timer=TimingStack(),
    )
    assert differences(ours, dict(expected), CLASSIFICATION_METRICS) < 1e-6
    assert 0.4 < ours["accuracy"] < 0.98


def test_video_audio_clustering_equals_mteb_on_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MusicAVQACLSAudioVideoClustering: clip and audio track in one item, every row embedded,
    bootstrap samples clustered in float64 as mteb clusters its video wrappers' tensors."""
    task = local("MusicAVQACLSAudioVideoClustering", tmp_path)
    labels, cells = noisy_rows(60, 2)
    columns: dict[str, list[Any]] = {"video": cells, "audio": cells, "label": labels}
    write_split(tmp_path, "test", columns, {"video": "video", "audio": "audio"}, CLASS_LABEL)
    ours = evaluate(task)
    import mteb.abstasks.clustering as clustering

    monkeypatch.setattr(clustering, "create_dataloader", lambda *_, **__: None)
    reference = copy.deepcopy(mteb_task(task.name))
    with threadpool_limits(limits=1):
        expected = reference._evaluate_subset(
            TensorModel(tensors(labelled_cells(task, cells))),
            placeholder_rows(["video", "audio"], labels, CLASS_LABEL),
            encode_kwargs={},
            hf_split="test",
            hf_subset="default",
            timer=TimingStack(),
        )
    assert differences(ours, dict(expected), CLUSTERING_KEYS) < 1e-6
    assert 0.2 < ours["v_measure"] < 0.98


def test_video_audio_pairs_equal_mteb_on_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MusicAVQAVAPairClassification: each side a clip and its audio track (four columns)."""
    task = local("MusicAVQAVAPairClassification", tmp_path)
    first_labels, first = noisy_rows(40, 3)
    second_labels, second = noisy_rows(40, 4)
    labels = [int(a == b) for a, b in zip(first_labels, second_labels, strict=True)]
    sides = {"video1": first, "audio1": first, "video2": second, "audio2": second}
    kinds = {name: name[:-1] for name in sides}
    write_split(tmp_path, "test", {**sides, "label": labels}, kinds, datasets.Value("int64"))
    ours = evaluate(task)
    import mteb._evaluators.pair_classification_evaluator as evaluator

    monkeypatch.setattr(evaluator, "create_dataloader", lambda *_, **__: None)
    reference = copy.deepcopy(mteb_task(task.name))
    expected = reference._evaluate_subset(
        TensorModel(*(tensors(labelled_cells(task, side)) for side in (first, second))),
        placeholder_rows(list(sides), labels, datasets.Value("int64")),
        encode_kwargs={},
        hf_split="test",
        hf_subset="default",
        timer=TimingStack(),
    )
    assert differences(ours, dict(expected), PAIR_KEYS) < 1e-6
    assert 0.3 < ours["max_ap"] < 0.98


def test_video_audio_zero_shot_equals_mteb_on_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WorldSenseAudioVideoZeroShot: the label names as they are, scored by the model's
    similarity (mteb's path for modalities other than [image, text])."""
    task = local("WorldSenseAudioVideoZeroShot", tmp_path)
    labels, cells = noisy_rows(40, 5)
    columns: dict[str, list[Any]] = {"video": cells, "audio": cells, "domain": labels}
    write_split(tmp_path, "test", columns, {"video": "video", "audio": "audio"}, CLASS_LABEL)
    ours = evaluate(task)
    import mteb._evaluators.zeroshot_classification_evaluator as evaluator

    monkeypatch.setattr(evaluator, "create_dataloader", lambda *_, **__: None)
    monkeypatch.setattr(evaluator, "_create_dataloader_from_texts", lambda texts, **_: texts)
    reference = copy.deepcopy(mteb_task(task.name))
    stored = placeholder_rows(["video", "audio"], labels, CLASS_LABEL).rename_column(
        "label", "domain"
    )
    reference.dataset = datasets.DatasetDict({"test": stored})
    model = TensorModel(
        lambda texts: torch.from_numpy(np.stack([toy_vector({"text": t}) for t in texts])),
        tensors(labelled_cells(task, cells)),
    )
    expected = reference._evaluate_subset(
        model, stored, hf_split="test", hf_subset="default", encode_kwargs={}, timer=TimingStack()
    )
    assert differences(ours, dict(expected), CLASSIFICATION_METRICS) < 1e-6
    assert 0.4 < ours["accuracy"] < 0.98
