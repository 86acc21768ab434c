"""Shared test helpers: small datasets written in the hub's exact layouts (read back through
``datasets``), task files, and running the CLI and reading its results."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.parquet as pq
import yaml
from PIL import Image

from harness.app.cli import main
from harness.core.adapter import AdapterMeta
from harness.tasks.demo.build import ITEM_FEATURES, QREL_FEATURES  # the MIEB retrieval layout

DEMO_DATA = Path(__file__).resolve().parent.parent / "harness" / "tasks" / "demo" / "data"

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
RGB = {
    "red": (220, 30, 30),
    "green": (30, 180, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 20),
    "purple": (140, 30, 160),
    "orange": (240, 140, 20),
    "white": (250, 250, 250),
    "black": (5, 5, 5),
}


def png_bytes(colour: tuple[int, int, int], size: int = 32, seed: int = 0) -> bytes:
    """A PNG of a solid colour with a little seeded noise."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-10, 10, (size, size, 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def item_row(
    item_id: str, *, text: str | None = None, image: bytes | None = None
) -> dict[str, Any]:
    """A corpus/queries row with the ``modality`` column MIEB datasets carry."""
    modality = ",".join(name for name, value in (("image", image), ("text", text)) if value)
    return {
        "id": item_id,
        "modality": modality,
        "text": text,
        "image": {"bytes": image, "path": None} if image is not None else None,
    }


def write_hub_dataset(
    root: Path,
    parts: dict[str, tuple[Sequence[dict[str, Any]], datasets.Features]],
    split: str = "test",
    card: bool = True,
) -> Path:
    """Write configs as ``<config>/<split>-00000-of-00001.parquet``, with a dataset card."""
    root.mkdir(parents=True, exist_ok=True)
    for config, (rows, features) in parts.items():
        folder = root / config
        folder.mkdir(exist_ok=True)
        columns = {name: [row[name] for row in rows] for name in features}
        dataset = datasets.Dataset.from_dict(columns, features=features)
        dataset.to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    if card:
        lines = ["---", "configs:"]
        for config in parts:
            lines += [
                f"- config_name: {config}",
                "  data_files:",
                f"  - split: {split}",
                f"    path: {config}/{split}-*.parquet",
            ]
        (root / "README.md").write_text("\n".join([*lines, "---", ""]))
    return root


def colour_retrieval(root: Path, category: str = "t2i", n: int = 8, **kwargs: Any) -> Path:
    """A tiny t2i / i2t / i2i task: colour names and colour swatches, one relevant each."""
    names = COLOURS[:n]
    images = {name: png_bytes(RGB[name], seed=i) for i, name in enumerate(names)}
    query_is_text, doc_is_text = category[0] == "t", category[-1] == "t"
    queries = [
        item_row(f"q{i}", text=f"a {name} square")
        if query_is_text
        else item_row(f"q{i}", image=png_bytes(RGB[name], seed=100 + i))
        for i, name in enumerate(names)
    ]
    corpus = [
        item_row(f"d{i}", text=f"{name}") if doc_is_text else item_row(f"d{i}", image=images[name])
        for i, name in enumerate(names)
    ]
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(len(names))]
    parts = {
        "corpus": (corpus, ITEM_FEATURES),
        "queries": (queries, ITEM_FEATURES),
        "qrels": (qrels, QREL_FEATURES),
    }
    return write_hub_dataset(root, parts, **kwargs)


def retrieval_task_yaml(
    path: Path, name: str, data_dir: Path, category: str = "t2i", **extra: Any
) -> Path:
    """A custom task file pointing at a local dataset folder."""
    entry = {
        "name": name,
        "type": "retrieval",
        "category": category,
        "dataset": {"path": str(data_dir)},
        "eval_splits": ["test"],
        **extra,
    }
    path.write_text(yaml.safe_dump(entry))
    return path


def write_labelled_dataset(
    root: Path,
    splits: dict[str, list[tuple[bytes, Any]]],
    label_feature: datasets.features.features.FeatureType,
    image_column: str = "img",
    label_column: str = "label",
) -> Path:
    """MIEB's classification layout (mteb/cifar10): config ``default``, ``data/<split>-*.parquet``.

    The card declares the config and, as hub cards do, the features (a ``ClassLabel`` keeps its
    names there and in the parquet schema).
    """
    features = datasets.Features({image_column: datasets.Image(), label_column: label_feature})
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        columns = {
            image_column: [{"bytes": image, "path": None} for image, _ in rows],
            label_column: [label for _, label in rows],
        }
        dataset = datasets.Dataset.from_dict(columns, features=features)
        dataset.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    card = {
        "dataset_info": {"features": features._to_yaml_list()},
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": split, "path": f"data/{split}-*.parquet"} for split in splits
                ],
            }
        ],
    }
    (root / "README.md").write_text(f"---\n{yaml.safe_dump(card, sort_keys=False)}---\n")
    return root


def task_file(path: Path, entries: list[dict[str, Any]]) -> Path:
    """A custom task file holding several task entries under ``tasks``."""
    path.write_text(yaml.safe_dump({"tasks": entries}, sort_keys=False))
    return path


def run_cli(model: str | Path, tasks: str | Path, workdir: Path, *extra_args: str) -> int:
    """``harness run`` in-process, quiet and single-process; results go to ``workdir / "out"``."""
    return main(
        [
            "run",
            "--model",
            str(model),
            "--tasks",
            str(tasks),
            "--output",
            str(workdir / "out"),
            "--cache-dir",
            str(workdir / "cache"),
            "--quiet",
            "--num-workers",
            "0",
            *extra_args,
        ]
    )


def result_files(workdir: Path, pattern: str = "*") -> dict[str, Path]:
    """The result files ``run_cli`` wrote whose task name matches ``pattern``, by task name."""
    return {path.stem: path for path in (workdir / "out").rglob(f"{pattern}.json")}


def read_result_json(workdir: Path, task_name: str) -> dict[str, Any]:
    """The one result file ``run_cli`` wrote for ``task_name``, parsed."""
    [path] = (workdir / "out").rglob(f"{task_name}.json")
    return json.loads(path.read_text())


def decoded_rows(path: Path) -> list[dict[str, Any]]:
    """A parquet file's rows with every image replaced by its decoded pixels."""

    def decode(value: Any) -> Any:
        if isinstance(value, dict) and "bytes" in value:
            return Image.open(io.BytesIO(value["bytes"])).convert("RGB").tobytes()
        return value

    return [{k: decode(v) for k, v in row.items()} for row in pq.read_table(path).to_pylist()]


def fake_meta(name: str, **fields: Any) -> AdapterMeta:
    """The metadata of a test adapter: a cosine image-and-text model, unless ``fields`` say."""
    defaults: dict[str, Any] = {
        "revision": "1",
        "family": "test",
        "similarity": "cosine",
        "modalities": ("image", "text"),
        "dtype": "float32",
    }
    return AdapterMeta(name=name, **{**defaults, **fields})
