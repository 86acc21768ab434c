"""Zero-shot classification end to end: hub layout, custom YAML, agreement with mteb, bad input."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
from PIL import Image

from harness.core.adapter import Role
from harness.core.errors import HarnessError
from harness.engine.encoding import BatchEncoder
from harness.scoring.classification import CLASSIFICATION_METRICS as METRIC_KEYS
from harness.scoring.zero_shot import ensemble_label_vectors, label_scores
from harness.tasks.registry import load_task_file
from harness.tasks.zero_shot import ZeroShotClassification
from tests.dataset_fixtures import (
    RGB,
    fake_meta,
    png_bytes,
    result_files,
    run_cli,
    task_file,
    write_labelled_dataset,
)

NAMES = ("cat", "dog", "bird", "fish", "horse")  # words the tiny CLIP's tokenizer knows
COLOUR_OF = dict(zip(NAMES, ("red", "green", "blue", "yellow", "purple"), strict=True))
# The colour each name's prompts map to: "horse" is confused with "bird", so accuracy is below 1.
PROMPT_COLOUR_OF = {**COLOUR_OF, "horse": "blue"}
DIM = 8


def colour_rows(labels: Sequence[int], names: Sequence[str], seed: int) -> list[tuple[bytes, int]]:
    """One noisy swatch per label, coloured after the label's name."""
    return [
        (png_bytes(RGB[COLOUR_OF[names[label]]], size=16, seed=seed + i), label)
        for i, label in enumerate(labels)
    ]


def animal_dataset(root: Path, image_column: str = "img", split: str = "test") -> Path:
    rng = np.random.default_rng(0)
    splits = {
        "train": colour_rows(rng.integers(0, 5, 10).tolist(), NAMES, 0),
        split: colour_rows(rng.integers(0, 5, 30).tolist(), NAMES, 100),
    }
    return write_labelled_dataset(
        root, splits, datasets.ClassLabel(names=list(NAMES)), image_column
    )


def entry(name: str, data: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "zero_shot_classification",
        "dataset": {"path": str(data), "columns": {"image": "img"}},
        "category": "i2t",
        "protocol": {"template": "a photo of a {label}."},
        **overrides,
    }


def content_vector(item: dict[str, Any]) -> np.ndarray:
    """A vector that depends only on content.

    An image maps from its mean colour; a text from the colour of the label name it contains
    (``PROMPT_COLOUR_OF``), plus noise drawn from its hash.
    """
    if "image" in item:
        pixels = np.asarray(item["image"].convert("RGB"), dtype=np.float64)
        return colour_vector(pixels.reshape(-1, 3).mean(axis=0))
    text = item["text"]
    named = [name for name in NAMES if name in text]
    colour = np.array(
        RGB[PROMPT_COLOUR_OF[named[0]]] if named else (128, 128, 128), dtype=np.float64
    )
    digest = hashlib.sha256(text.encode()).digest()
    noise = np.random.default_rng(list(digest[:8])).normal(scale=0.3, size=DIM)
    return (colour_vector(colour) + noise).astype(np.float32)


def colour_vector(rgb: np.ndarray) -> np.ndarray:
    colour = rgb / 255.0
    return np.concatenate([colour - 0.5, np.sin(colour * 7.0), colour[:2] ** 2]).astype(np.float32)


class ContentAdapter:
    """A model whose vectors are ``content_vector``; it records every call."""

    def __init__(self) -> None:
        self.meta = fake_meta("content")
        self.calls: list[tuple[Role, str | None, list[dict[str, Any]]]] = []

    def encode(
        self, items: Sequence[dict[str, Any]], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        self.calls.append((role, instruction, list(items)))
        return np.stack([content_vector(item) for item in items])


class MtebContentModel:
    """The same model for mteb: it reads mteb's own dataloaders."""

    mteb_model_meta = None

    def encode(self, inputs: Any, **kwargs: Any) -> np.ndarray:
        vectors = []
        for batch in inputs:
            key = "image" if "image" in batch else "text"
            vectors += [content_vector({key: value}) for value in batch[key]]
        return np.stack(vectors)

    def similarity(self, a: Any, b: Any) -> Any:
        from mteb.similarity_functions import cos_sim

        return cos_sim(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        raise NotImplementedError


def evaluate(task_path: Path, adapter: Any | None = None, **kwargs: Any) -> dict[str, Any]:
    [task] = load_task_file(task_path)
    encoder = BatchEncoder(adapter or ContentAdapter(), batch_size=64, show_progress=False)
    outcome = ZeroShotClassification().evaluate(task, encoder, split="test", **kwargs)
    return outcome.subsets[0]


def test_cli_run_writes_zero_shot_results(tiny_clip_dir: Path, tmp_path: Path) -> None:
    data = animal_dataset(tmp_path / "animals")
    binary = write_labelled_dataset(
        tmp_path / "binary",
        {"test": colour_rows([0, 1] * 6, NAMES, 7)},
        datasets.ClassLabel(names=["cat", "dog"]),
    )
    tasks = task_file(
        tmp_path / "tasks.yaml",
        [
            entry("AnimalZeroShot", data),
            entry("BinaryZeroShot", binary, protocol={"label_scoring": "softmax"}),
        ],
    )
    assert run_cli(tiny_clip_dir, tasks, tmp_path) == 0
    files = {
        name: json.loads(path.read_text())
        for name, path in result_files(tmp_path, "*ZeroShot").items()
    }
    assert set(files) == {"AnimalZeroShot", "BinaryZeroShot"}
    for name, result in files.items():
        [scores] = result["scores"]["test"]
        assert set(METRIC_KEYS) <= set(scores)
        assert scores["main_score"] == scores["accuracy"]
        assert result["harness"]["task"]["protocol"]["template"] == "a photo of a {label}."
        binary_task = name == "BinaryZeroShot"
        for key in METRIC_KEYS:
            if key.startswith("ap") and not binary_task:
                assert scores[key] is None
            else:
                assert math.isfinite(scores[key]) and 0.0 <= scores[key] <= 1.0, key
    assert files["BinaryZeroShot"]["harness"]["task"]["protocol"]["label_scoring"] == "softmax"


@pytest.mark.parametrize(
    ("mteb_task", "image_column", "split", "template", "scoring"),
    [
        ("CIFAR10ZeroShot", "img", "test", "a photo of a {label}.", "similarity"),
        ("STL10ZeroShot", "image", "test", "a photo of a {label}.", "softmax"),
        (
            "Food101ZeroShot",
            "image",
            "validation",
            "a photo of {label}, a type of food.",
            "similarity",
        ),
    ],
)
def test_same_scores_as_mteb_on_the_same_dataset(
    mteb_task: str, image_column: str, split: str, template: str, scoring: str, tmp_path: Path
) -> None:
    """Prompts from the ClassLabel names, label order, data order: all as mteb has them."""
    mteb = pytest.importorskip("mteb")
    from mteb.timing import TimingStack

    data = animal_dataset(tmp_path / "data", image_column=image_column, split=split)
    reference_task = mteb.get_task(mteb_task)
    reference_data = datasets.load_dataset(str(data), split=split)
    reference_task.dataset = {split: reference_data}
    reference = reference_task._evaluate_subset(
        MtebContentModel(),
        reference_data,
        hf_split=split,
        hf_subset="default",
        encode_kwargs={"batch_size": 7},
        timer=TimingStack(),
    )

    overrides = {
        "dataset": {"path": str(data), "columns": {"image": image_column}},
        "eval_splits": [split],
        "protocol": {"template": template, "label_scoring": scoring},
    }
    [task] = load_task_file(task_file(tmp_path / "t.yaml", [entry("Mine", data, **overrides)]))
    encoder = BatchEncoder(ContentAdapter(), batch_size=4, show_progress=False)
    mine = ZeroShotClassification().evaluate(task, encoder, split=split).subsets[0]
    assert 0.0 < mine["accuracy"] < 1.0
    assert mine["accuracy"] == reference["accuracy"]
    for key in METRIC_KEYS:
        expected = None if reference[key] is None else pytest.approx(reference[key], abs=1e-6)
        assert mine[key] == expected, key


def test_prompts_and_inputs_are_encoded_once_each_without_a_role(tmp_path: Path) -> None:
    data = animal_dataset(tmp_path / "data")
    adapter = ContentAdapter()
    evaluate(task_file(tmp_path / "t.yaml", [entry("T", data)]), adapter)
    assert len(adapter.calls) == 2  # one batch of prompts, one batch of images
    (prompt_role, _, prompts), (image_role, _, images) = adapter.calls
    assert prompt_role is image_role is None
    assert sorted(item["text"] for item in prompts) == sorted(f"a photo of a {n}." for n in NAMES)
    assert len(images) == 30 and all(set(item) == {"image"} for item in images)


def test_prompt_ensemble_averages_normalised_template_vectors(tmp_path: Path) -> None:
    data = animal_dataset(tmp_path / "data")
    templates = ["a photo of a {label}.", "a drawing of a {label}.", "{label}"]
    adapter = ContentAdapter()
    path = task_file(
        tmp_path / "t.yaml", [entry("T", data, protocol={"ensemble_templates": templates})]
    )
    result = evaluate(path, adapter)
    (_, _, prompts), (_, _, images) = adapter.calls
    assert len(prompts) == len(templates) * len(NAMES)  # all prompts in one call

    vectors = np.stack(
        [[content_vector({"text": t.replace("{label}", n)}) for n in NAMES] for t in templates]
    )
    image_vectors = np.stack([content_vector(item) for item in images])
    labels = load_task_labels(data)
    expected = label_scores(image_vectors, ensemble_label_vectors(vectors)).argmax(axis=1)
    assert result["accuracy"] == pytest.approx(np.mean(expected == labels))
    single = evaluate(task_file(tmp_path / "s.yaml", [entry("S", data)]))
    assert single["accuracy"] != result["accuracy"]  # the ensemble changes the predictions


def load_task_labels(data: Path) -> np.ndarray:
    return np.array(datasets.load_dataset(str(data), split="test")["label"])


def test_limit_caps_the_inputs(tmp_path: Path) -> None:
    data = animal_dataset(tmp_path / "data")
    adapter = ContentAdapter()
    evaluate(task_file(tmp_path / "t.yaml", [entry("T", data)]), adapter, limit=4)
    assert [len(items) for _, _, items in adapter.calls] == [len(NAMES), 4]


def test_explicit_label_names_and_string_labels(tmp_path: Path) -> None:
    """Labels stored as strings match a label name (or, as in mteb, a full prompt)."""
    rows = [(image, NAMES[label]) for image, label in colour_rows([0, 1, 2, 1], NAMES, 0)]
    rows[1] = (rows[1][0], "a photo of a dog.")
    data = write_labelled_dataset(tmp_path / "data", {"test": rows}, datasets.Value("string"))
    protocol = {"label_names": list(NAMES[:3]), "template": "a photo of a {label}."}
    result = evaluate(task_file(tmp_path / "t.yaml", [entry("T", data, protocol=protocol)]))
    assert 0.0 <= result["accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        ({"template": "a photo of a cat."}, "no {label} placeholder"),
        ({"ensemble_templates": ["{label}", "a {name}"]}, "no {label} placeholder"),
        ({"label_names": []}, "label_names is empty"),
        ({"label_scoring": "logits"}, "label_scoring"),
    ],
)
def test_bad_protocols_are_refused_when_the_file_loads(
    protocol: dict[str, Any], message: str, tmp_path: Path
) -> None:
    path = task_file(tmp_path / "t.yaml", [entry("Bad", tmp_path, protocol=protocol)])
    with pytest.raises(HarnessError, match=message):
        load_task_file(path)


def test_category_must_classify_into_text_labels(tmp_path: Path) -> None:
    path = task_file(tmp_path / "t.yaml", [entry("Bad", tmp_path, category="t2i")])
    with pytest.raises(HarnessError, match="must be i2t, t2t or a2t"):
        load_task_file(path)


def bad_dataset(tmp_path: Path, labels: list[Any], feature: Any) -> Path:
    rows = [(png_bytes(RGB["red"], size=8, seed=i), label) for i, label in enumerate(labels)]
    return write_labelled_dataset(tmp_path / "data", {"test": rows}, feature)


@pytest.mark.parametrize(
    ("labels", "feature", "protocol", "message"),
    [
        (
            [0, 1, 7],
            datasets.Value("int64"),
            {"label_names": ["cat", "dog"]},
            r"label 7 \(split 'test', row 2, column 'label'\) has no label name",
        ),
        (
            ["cat", "cow"],
            datasets.Value("string"),
            {"label_names": ["cat", "dog"]},
            "label 'cow'.*has no label name or prompt",
        ),
        ([0, 1], datasets.Value("int64"), {}, "is not a ClassLabel.*protocol.label_names"),
        ([None, None], datasets.Value("int64"), {"label_names": ["cat"]}, "is empty"),
    ],
)
def test_bad_labels_get_a_clear_error(
    labels: list[Any], feature: Any, protocol: dict[str, Any], message: str, tmp_path: Path
) -> None:
    data = bad_dataset(tmp_path, labels, feature)
    path = task_file(tmp_path / "t.yaml", [entry("Bad", data, protocol=protocol)])
    with pytest.raises(HarnessError, match=message):
        evaluate(path)


def test_missing_label_column_names_the_mapping(tmp_path: Path) -> None:
    data = animal_dataset(tmp_path / "data")
    bad = entry(
        "Bad", data, dataset={"path": str(data), "columns": {"image": "img", "label": "cls"}}
    )
    with pytest.raises(HarnessError, match=r"lacks the column.*cls.*dataset\.columns"):
        evaluate(task_file(tmp_path / "t.yaml", [bad]))


def test_image_fixture_is_what_the_adapter_sees(tmp_path: Path) -> None:
    """The swatches decode to their label's colour, so the fixture's classes are separable."""
    data = animal_dataset(tmp_path / "data")
    row = datasets.load_dataset(str(data), split="test")[0]
    assert isinstance(row["img"], Image.Image)
    mean = np.asarray(row["img"]).reshape(-1, 3).mean(axis=0)
    assert np.abs(mean - RGB[COLOUR_OF[NAMES[row["label"]]]]).max() < 10
