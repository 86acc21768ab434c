"""The compositionality task type: hub layouts, agreement with mteb's pipeline, errors, demo."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import datasets
import mteb
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from mteb._evaluators import ImageTextPairClassificationEvaluator
from mteb.results import TaskResult
from mteb.timing import TimingStack
from PIL import Image

from harness.core.adapter import AdapterMeta, Role
from harness.core.errors import HarnessError
from harness.engine.encoding import BatchEncoder
from harness.tasks.base import SplitOutcome
from harness.tasks.compositionality import Compositionality
from harness.tasks.definition import TaskDefinition
from harness.tasks.demo.compositionality import TASK_INDEX, build_compositionality
from harness.tasks.registry import builtin_tasks, load_task_file
from tests.dataset_fixtures import (
    COLOURS,
    DEMO_DATA,
    RGB,
    decoded_rows,
    png_bytes,
    run_cli,
    task_file,
    write_hub_dataset,
)

# MIEB's compositionality tasks as declarative entries (no main score: the style gives it).
REAL_TASKS = yaml.safe_load(
    """
- name: Winoground
  dataset: {path: facebook/winoground, revision: b400e173549071916ad1b3d449293bc8d8b4b763}
  category: i2t
  protocol: {image_columns: [image_0, image_1], text_columns: [caption_0, caption_1]}
- name: AROCocoOrder
  dataset: {path: mteb/ARO-COCO-order, revision: 53c20afc02a87fed8c0245dde2e00f054da4b861}
  category: i2t
  protocol:
    image_columns: [images]
    text_columns: [correct_caption, hard_text_1, hard_text_2, hard_text_3, hard_text_4]
- name: AROFlickrOrder
  dataset: {path: mteb/ARO-Flickr-Order, revision: e5d7f3502345b2c398a6645b4d09b44e650287bf}
  category: i2t
  protocol:
    image_columns: [images]
    text_columns: [correct_caption, hard_text_1, hard_text_2, hard_text_3, hard_text_4]
- name: AROVisualAttribution
  dataset:
    path: mteb/ARO-Visual-Attribution
    revision: 25fe9b460426ff67cdb0608a737c94f8f49a901e
  category: i2t
  protocol: {image_columns: [image], text_columns: [true_caption, false_caption]}
- name: AROVisualRelation
  dataset: {path: mteb/ARO-Visual-Relation, revision: 53c1115ab5871ab33b09d5bb8856236d46bdaf2d}
  category: i2t
  protocol: {image_columns: [image], text_columns: [true_caption, false_caption]}
- name: SugarCrepe
  dataset:
    path: mteb/SUGARCREPE_fmt
    revision: e9e0e3ce40c94023c819d3413edb5d090ec9f0d8
    splits: {default: train}
  category: i2t
  protocol: {image_columns: [images], text_columns: [caption, negative_caption]}
- name: ImageCoDe
  dataset:
    path: mteb/imagecode-multi
    revision: 0a27b28e13841897d490a40fb88a003f04d7e314
    splits: {corpus: corpus}
  category: it2i
  protocol: {source: qrels}
"""
)
DIM = 6
IMAGE = datasets.Image()
TEXT = datasets.Value("string")


def definition(name: str, root: Path | None = None, **protocol: Any) -> TaskDefinition:
    """The real task entry ``name``, pointed at a local copy and with protocol overrides."""
    entry = next(e for e in REAL_TASKS if e["name"] == name)
    dataset = (
        {**entry["dataset"], "path": str(root), "revision": None} if root else entry["dataset"]
    )
    return TaskDefinition.model_validate(
        {
            **entry,
            "type": "compositionality",
            "dataset": dataset,
            "protocol": {**entry["protocol"], **protocol},
        }
    )


# --- data in the hub layouts of the real datasets -------------------------------------------


def png(k: int, colour: int | None = None) -> dict[str, bytes]:
    """A noisy swatch of colour ``k`` (or ``colour``), unique per ``k``; caption(k) names it."""
    name = COLOURS[(k if colour is None else colour) % len(COLOURS)]
    return {"bytes": png_bytes(RGB[name], size=8, seed=k)}


def caption(k: int) -> str:
    words = ("cat", "dog", "bird", "car", "tree", "house", "boat", "fish")
    return f"a {COLOURS[k % 8]} {words[k // 8 % 8]} on the {words[k % 5]}"


def winoground_rows(n: int = 12) -> list[dict[str, Any]]:
    rows = [
        {
            "id": i,
            "image_0": png(2 * i),
            "image_1": png(2 * i + 1),
            "caption_0": caption(2 * i),
            "caption_1": caption(2 * i + 1),
            "tag": "Object",
            "num_main_preds": 1,
        }
        for i in range(n)
    ]
    rows[3]["image_1"] = rows[3]["image_0"]  # equal images: the image score ties
    rows[5]["caption_1"] = rows[5]["caption_0"]  # equal captions: the text score ties
    return rows


def aro_rows(n: int = 12, negatives: int = 4) -> list[dict[str, Any]]:
    rows = [
        {
            "images": png(100 + i),
            "correct_caption": caption(100 + i),
            **{f"hard_text_{k}": caption(100 + i + k) for k in range(1, negatives + 1)},
        }
        for i in range(n)
    ]
    rows[2]["hard_text_3"] = rows[2]["correct_caption"]  # a tie, won by the true caption
    rows[9]["images"] = rows[0]["images"]  # a shared image, encoded once
    return rows


def sugarcrepe_rows(n: int = 10) -> list[dict[str, Any]]:
    return [
        {"images": png(200 + i), "caption": caption(200 + i), "negative_caption": caption(201 + i)}
        for i in range(n)
    ]


def write_rows(root: Path, rows: list[dict[str, Any]], split: str = "test") -> Path:
    """A single-config dataset (config ``default``) with a dataset card."""
    features = datasets.Features(
        {
            name: IMAGE
            if name.startswith("image")
            else datasets.Value("int64")
            if isinstance(value, int)
            else TEXT
            for name, value in rows[0].items()
        }
    )
    return write_hub_dataset(root, {"default": (rows, features)}, split=split)


def write_imagecode(root: Path, queries: int = 6, pools: dict[int, int] | None = None) -> Path:
    """ImageCoDe's layout: configs corpus (split corpus), query and qrels (split test).

    Query i has ``pools.get(i, 10)`` candidates listed in qrels, its true image (of the
    caption's colour) in the middle and the others of other colours. In a longer pool the true
    image is paler and candidate 10, beyond mteb's 9 distractors, has the caption's colour.
    Query 1 shares a candidate with query 0.
    """
    pools = pools or {}
    corpus, query, qrels = [], [], []
    for i in range(queries):
        query.append({"id": f"q{i}", "modality": "text", "text": caption(3 * i)})
        docs = [f"c{i}-{k}" for k in range(pools.get(i, 10))]
        if i == 1:
            docs[4] = "c0-7"
        true = len(docs) // 2
        for k, doc in enumerate(docs):
            qrels.append({"query-id": f"q{i}", "corpus-id": doc, "score": int(k == true)})
            colour = 3 * i if k in (true, 10) else 3 * i + 1 + k % 7
            image = png(300 + 16 * i + k, colour)
            if k == true and len(docs) > 10:  # paler than the true colour of candidate 10
                rgb = tuple((value + 128) // 2 for value in RGB[COLOURS[colour % 8]])
                image = {"bytes": png_bytes(rgb, size=8, seed=300 + 16 * i + k)}
            if doc.startswith(f"c{i}-"):
                corpus.append({"id": doc, "modality": "image", "image": image})
    corpus_features = datasets.Features({"id": TEXT, "modality": TEXT, "image": IMAGE})
    query_features = datasets.Features({"id": TEXT, "modality": TEXT, "text": TEXT})
    qrel_features = datasets.Features(
        {"query-id": TEXT, "corpus-id": TEXT, "score": datasets.Value("int64")}
    )
    write_hub_dataset(root, {"corpus": (corpus, corpus_features)}, split="corpus", card=False)
    parts = {"query": (query, query_features), "qrels": (qrels, qrel_features)}
    write_hub_dataset(root, parts, split="test", card=False)
    splits = {"corpus": "corpus", "query": "test", "qrels": "test"}
    card = ["---", "configs:"]
    for config, split in splits.items():
        card += [f"- config_name: {config}", "  data_files:", f"  - split: {split}"]
        card += [f"    path: {config}/{split}-*.parquet"]
    (root / "README.md").write_text("\n".join([*card, "---", ""]))
    return root


@pytest.fixture(scope="module")
def hub_copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Local copies of four real layouts: Winoground, ARO-COCO-order, SugarCrepe, ImageCoDe."""
    root = tmp_path_factory.mktemp("compositionality")
    return {
        "Winoground": write_rows(root / "winoground", winoground_rows()),
        "AROCocoOrder": write_rows(root / "aro", aro_rows()),
        "SugarCrepe": write_rows(root / "sugarcrepe", sugarcrepe_rows(), split="train"),
        "ImageCoDe": write_imagecode(root / "imagecode", pools={3: 12, 4: 11, 5: 12}),
    }


# --- models with known vectors --------------------------------------------------------------


def content_vector(text: str | None = None, image: Image.Image | None = None) -> np.ndarray:
    """The colour an item shows or names (3 dimensions), then noise drawn from its content.

    An image's colour is its mean RGB; a caption's is the RGB of its colour word. Matching
    colours make the true pairs likely but not certain winners.
    """
    if text is not None:
        data = text.encode()
        rgb = np.array(next(RGB[word] for word in text.split() if word in RGB), np.float64)
    else:
        pixels = np.asarray(image.convert("RGB"), np.float64)
        data, rgb = pixels.tobytes(), pixels.reshape(-1, 3).mean(axis=0)
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
    noise = np.random.default_rng(seed).standard_normal(DIM - 3) * 0.2
    return np.concatenate([rgb / 255 - 0.5, noise]).astype(np.float32)


class ContentAdapter:
    """A harness adapter whose vectors depend on content only (or are all equal)."""

    def __init__(self, constant: bool = False) -> None:
        self.constant = constant
        self.meta = AdapterMeta(
            name=f"content-{constant}",
            revision="1",
            family="test",
            similarity="cosine",
            modalities=("image", "text"),
            dtype="float32",
            embed_dim=DIM,
        )

    def encode(
        self, items: Sequence[dict], *, role: Role = None, instruction: str | None = None
    ) -> np.ndarray:
        if self.constant:
            return np.ones((len(items), DIM), np.float32)
        return np.stack([content_vector(item.get("text"), item.get("image")) for item in items])


class MtebContentModel:
    """The same vectors on mteb's side, from the batches its evaluator builds."""

    def encode(self, inputs: Iterable[dict[str, list[Any]]], **_: Any) -> np.ndarray:
        rows = []
        for batch in inputs:
            if "text" in batch:
                rows += [content_vector(text=text) for text in batch["text"]]
            else:
                rows += [content_vector(image=image) for image in batch["image"]]
        return np.stack(rows)


def mteb_reference(name: str, root: Path) -> dict[str, float]:
    """mteb's own task class, loader, evaluator and metrics on a local copy of the layout."""
    task = mteb.get_task(name)
    if name == "ImageCoDe":  # mteb builds ImageCoDe's rows from corpus, query and qrels
        task.metadata = task.metadata.model_copy(
            update={"dataset": {"path": str(root), "revision": None}}
        )
        task.load_data()
        data = task.dataset["test"]
    else:  # SugarCrepe keeps its rows in a train split, which mteb renames to test
        split = "train" if name == "SugarCrepe" else "test"
        data = datasets.load_dataset(str(root), split=split)
    n_images, n_texts = len(task.images_column_names), len(task.texts_column_names)
    evaluator = ImageTextPairClassificationEvaluator(
        data,
        images_column_names=task.images_column_names,
        texts_column_names=task.texts_column_names,
        num_images_per_sample=n_images,
        num_texts_per_sample=n_texts,
        task_metadata=task.metadata,
        hf_split="test",
        hf_subset="default",
        timer=TimingStack(),
    )
    similarities = evaluator(MtebContentModel(), encode_kwargs={"batch_size": 8})
    return dict(task._compute_metrics(similarities, n_images, n_texts))


def evaluate(
    task: TaskDefinition, adapter: Any = None, limit: int | None = None, **settings: Any
) -> tuple[SplitOutcome, BatchEncoder]:
    encoder = BatchEncoder(adapter or ContentAdapter(), show_progress=False, **settings)
    return Compositionality().evaluate(task, encoder, split="test", limit=limit), encoder


def metrics(outcome: SplitOutcome) -> dict[str, float]:
    return {k: outcome.subsets[0][k] for k in ("image_acc", "text_acc", "accuracy")}


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [e["name"] for e in REAL_TASKS])
def test_real_task_entries_match_mteb(name: str) -> None:
    """Dataset, revision, columns and (derived) main score of each MIEB task, as in mteb."""
    task, reference = definition(name), mteb.get_task(name)
    assert task.dataset.path == reference.metadata.dataset["path"]
    assert task.dataset.revision == reference.metadata.dataset["revision"]
    assert task.category == reference.metadata.category
    assert Compositionality().main_score(task) == reference.metadata.main_score
    protocol = Compositionality().settings(task)
    if name == "ImageCoDe":
        assert protocol.candidates == len(reference.images_column_names)
        assert len(reference.texts_column_names) == 1
    else:
        assert protocol.image_columns == tuple(reference.images_column_names)
        assert protocol.text_columns == tuple(reference.texts_column_names)


@pytest.mark.parametrize("name", ["Winoground", "AROCocoOrder", "SugarCrepe", "ImageCoDe"])
def test_scores_equal_mteb_pipeline(name: str, hub_copies: dict[str, Path]) -> None:
    """The same vectors per content give exactly mteb's scores, through loading and scoring."""
    outcome, _ = evaluate(definition(name, hub_copies[name]))
    assert metrics(outcome) == mteb_reference(name, hub_copies[name])


def test_cli_end_to_end(tiny_clip_dir: Path, hub_copies: dict[str, Path], tmp_path: Path) -> None:
    names = ["Winoground", "AROCocoOrder", "SugarCrepe", "ImageCoDe"]
    entries = [definition(n, hub_copies[n]).model_dump(mode="json") for n in names]
    assert run_cli(tiny_clip_dir, task_file(tmp_path / "tasks.yaml", entries), tmp_path) == 0
    expected_main = {
        "Winoground": "accuracy",
        "AROCocoOrder": "text_acc",
        "SugarCrepe": "text_acc",
        "ImageCoDe": "image_acc",
    }
    for name, main_metric in expected_main.items():
        path = next((tmp_path / "out").glob(f"*/*/{name}.json"))
        entry = json.loads(path.read_text())["scores"]["test"][0]
        assert {"image_acc", "text_acc", "accuracy"} <= set(entry)
        assert entry["main_score"] == entry[main_metric]
        assert all(math.isfinite(entry[k]) for k in ("image_acc", "text_acc", "accuracy"))
        assert TaskResult.from_disk(path).task_name == name
        harness_block = json.loads(path.read_text())["harness"]
        assert harness_block["task"]["protocol"]["strict_ties"] is False


def test_all_images_in_one_call_each_decoded_once(hub_copies: dict[str, Path]) -> None:
    task = definition("AROCocoOrder", hub_copies["AROCocoOrder"])
    _, encoder = evaluate(task, batch_size=1000)
    rows = aro_rows()
    unique_images = {row["images"]["bytes"] for row in rows}
    unique_texts = {row[k] for row in rows for k in row if k != "images"}
    assert encoder.stats.model_calls == 2  # mteb makes one call per image
    assert encoder.stats.parts_decoded == len(unique_images) == len(rows) - 1
    assert encoder.stats.items_encoded == len(unique_images) + len(unique_texts)


def test_ties_and_strict_ties(hub_copies: dict[str, Path]) -> None:
    """All-equal vectors: mteb's argmax gives the true caption every tie; strict gives none."""
    constant = ContentAdapter(constant=True)
    aro = hub_copies["AROCocoOrder"]
    outcome, _ = evaluate(definition("AROCocoOrder", aro), constant)
    assert metrics(outcome) == {"image_acc": 0.0, "text_acc": 1.0, "accuracy": 0.0}
    strict, _ = evaluate(definition("AROCocoOrder", aro, strict_ties=True), constant)
    assert metrics(strict)["text_acc"] == 0.0


def test_limit_takes_the_first_rows(hub_copies: dict[str, Path], tmp_path: Path) -> None:
    limited, encoder = evaluate(definition("AROCocoOrder", hub_copies["AROCocoOrder"]), limit=5)
    first_rows = write_rows(tmp_path / "first", aro_rows()[:5])
    assert metrics(limited) == metrics(evaluate(definition("AROCocoOrder", first_rows))[0])
    assert encoder.stats.parts_decoded == 5


def test_list_cells_are_spread_in_place(tmp_path: Path) -> None:
    rows = winoground_rows()
    listed = [
        {"id": r["id"], "images": [r["image_0"], r["image_1"]], "captions": [r["caption_0"]]}
        for r in rows
    ]
    for row, source in zip(listed, rows, strict=True):
        row["captions"].append(source["caption_1"])
    features = datasets.Features(
        {"id": datasets.Value("int64"), "images": datasets.List(IMAGE), "captions": [TEXT]}
    )
    root = write_hub_dataset(tmp_path / "listed", {"default": (listed, features)})
    task = definition(
        "Winoground", root, image_columns=["images"], text_columns=["captions"], style="pairs"
    )
    columns = definition("Winoground", write_rows(tmp_path / "columns", rows))
    assert metrics(evaluate(task)[0]) == metrics(evaluate(columns)[0])


def test_skipped_bad_image_drops_its_row(tmp_path: Path) -> None:
    rows = aro_rows()
    rows[6]["images"] = {"bytes": b"not a png"}
    outcome, _ = evaluate(
        definition("AROCocoOrder", write_rows(tmp_path / "bad", rows)), skip_bad_inputs=True
    )
    assert outcome.skipped_inputs == ["6/images"]
    good = write_rows(tmp_path / "good", rows[:6] + rows[7:])
    assert metrics(outcome) == metrics(evaluate(definition("AROCocoOrder", good))[0])


def _aro_with(change: dict[str, Any], row: int) -> list[dict[str, Any]]:
    rows = aro_rows()
    rows[row] = {**rows[row], **change}
    return rows


@pytest.mark.parametrize(
    ("rows", "fragments"),
    [
        (_aro_with({"hard_text_2": None}, 3), ["'3/hard_text_2'", "'hard_text_2'", "empty"]),
        (_aro_with({"images": None}, 1), ["'1/images'", "'images'", "empty"]),
    ],
    ids=["none-caption", "missing-image"],
)
def test_bad_cells_name_task_row_and_column(
    rows: list[dict[str, Any]], fragments: list[str], tmp_path: Path
) -> None:
    task = definition("AROCocoOrder", write_rows(tmp_path / "data", rows))
    with pytest.raises(HarnessError) as error:
        evaluate(task)
    assert all(f in str(error.value) for f in ["AROCocoOrder", *fragments])


@pytest.mark.parametrize(
    ("lengths", "fragments"),
    [
        ([3, 3, 2, 3], ["row 2", "2 caption(s)", "every row needs the same"]),
        ([1, 1, 1, 1], ["row 0", "1 caption(s)", "one_image task needs 1 image and at least 2"]),
    ],
    ids=["ragged", "too-few"],
)
def test_list_of_wrong_length(lengths: list[int], fragments: list[str], tmp_path: Path) -> None:
    rows = [
        {"image": png(i), "captions": [caption(4 * i + k) for k in range(n)]}
        for i, n in enumerate(lengths)
    ]
    features = datasets.Features({"image": IMAGE, "captions": datasets.List(TEXT)})
    root = write_hub_dataset(tmp_path / "data", {"default": (rows, features)})
    task = definition("AROVisualRelation", root, text_columns=["captions"], style="one_image")
    with pytest.raises(HarnessError) as error:
        evaluate(task)
    assert all(f in str(error.value) for f in ["AROVisualRelation", "captions", *fragments])


@pytest.mark.parametrize(
    ("pools", "protocol", "fragments"),
    [
        ({2: 7}, {}, ["'q2'", "7 candidate images", "candidates"]),
        ({}, {"candidates": 12}, ["'q0'", "10 candidate images"]),
    ],
    ids=["short-pool", "more-than-the-pool"],
)
def test_imagecode_pools_must_fill_the_candidates(
    pools: dict[int, int], protocol: dict[str, Any], fragments: list[str], tmp_path: Path
) -> None:
    task = definition("ImageCoDe", write_imagecode(tmp_path / "data", 4, pools), **protocol)
    with pytest.raises(HarnessError) as error:
        evaluate(task)
    assert all(f in str(error.value) for f in ["ImageCoDe", *fragments])


def test_imagecode_query_without_true_image(tmp_path: Path) -> None:
    root = write_imagecode(tmp_path / "data", 3)
    qrels = datasets.load_dataset(str(root), "qrels", split="test").to_list()
    qrels = [{**q, "score": 0} if q["query-id"] == "q1" else q for q in qrels]
    datasets.Dataset.from_list(qrels).to_parquet(
        str(root / "qrels" / "test-00000-of-00001.parquet")
    )
    with pytest.raises(HarnessError, match=r"ImageCoDe: query 'q1' .* no qrels row with score 1"):
        evaluate(definition("ImageCoDe", root))


@pytest.mark.parametrize(
    ("protocol", "fragment"),
    [
        ({"image_columns": ["a", "b"], "text_columns": ["c", "d", "e"]}, "fit no style"),
        ({"image_columns": ["a"], "text_columns": ["b"]}, "Declare `style:`"),
        ({"source": "qrels", "style": "pairs"}, "one_text"),
    ],
)
def test_protocols_fitting_no_style_fail_when_loaded(
    protocol: dict[str, Any], fragment: str, tmp_path: Path
) -> None:
    entry = {"name": "Bad", "type": "compositionality", "category": "i2t"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**entry, "dataset": {"path": "x"}, "protocol": protocol}))
    with pytest.raises(HarnessError, match="task Bad: invalid protocol settings") as error:
        load_task_file(path)
    assert fragment in str(error.value)


# --- the demo tasks -------------------------------------------------------------------------


def test_demo_data_is_rebuilt_identically(tmp_path: Path) -> None:
    build_compositionality(tmp_path)
    for task in TASK_INDEX:
        committed = sorted(p.relative_to(DEMO_DATA) for p in (DEMO_DATA / task).rglob("*.*"))
        rebuilt = sorted(p.relative_to(tmp_path) for p in (tmp_path / task).rglob("*.*"))
        assert committed == rebuilt
        for relative in committed:
            if relative.suffix == ".parquet":
                assert decoded_rows(DEMO_DATA / relative) == decoded_rows(tmp_path / relative)
            else:
                assert (DEMO_DATA / relative).read_text() == (tmp_path / relative).read_text()


def test_demo_tasks_are_what_they_claim() -> None:
    tasks = builtin_tasks()
    assert {name: Compositionality().main_score(tasks[name]) for name in TASK_INDEX} == {
        "DemoShapesWinoground": "accuracy",
        "DemoShapesAttributeSwap": "text_acc",
        "DemoShapesImageCoDe": "image_acc",
    }
    pairs = decoded_rows(DEMO_DATA / "DemoShapesWinoground/default/test-00000-of-00001.parquet")
    for row in pairs:  # Winoground's captions: the same words in another order
        assert row["caption_0"] != row["caption_1"]
        assert sorted(row["caption_0"].split()) == sorted(row["caption_1"].split())
        assert row["image_0"] != row["image_1"]
    aro = decoded_rows(DEMO_DATA / "DemoShapesAttributeSwap/default/test-00000-of-00001.parquet")
    assert all(len({v for k, v in row.items() if k != "images"}) == 5 for row in aro)
    qrels = pq.read_table(DEMO_DATA / "DemoShapesImageCoDe/qrels/test-00000-of-00001.parquet")
    by_query: dict[str, list[int]] = {}
    for row in qrels.to_pylist():
        by_query.setdefault(row["query-id"], []).append(row["score"])
    assert all(sorted(scores) == [0, 0, 0, 1] for scores in by_query.values())
