"""Write the demo retrieval datasets in the hub layout of MIEB's v2 retrieval datasets.

Each task is a folder ``<TaskName>/`` holding a README whose YAML front matter declares the
configs ``corpus``, ``queries`` and ``qrels``, each with one ``test`` parquet file. Corpus and
queries rows are ``id``, ``modality`` ("text" or "image"), ``text`` and ``image`` (PNG bytes);
qrels rows are ``query-id``, ``corpus-id`` and ``score``.

Usage: ``python -m harness.tasks.demo OUT_DIR`` (the committed copy is ``harness/tasks/demo/data``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

from harness.tasks.demo.shapes import GENERATOR_VERSION, Scene, render, sample_scenes

DATA_SEED = 1729
IMAGE_SIZE = 64
CONFIGS = ("corpus", "queries", "qrels")
ITEM_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "text": datasets.Value("string"),
        "image": datasets.Image(),
    }
)
QREL_FEATURES = datasets.Features(
    {
        "query-id": datasets.Value("string"),
        "corpus-id": datasets.Value("string"),
        "score": datasets.Value("int64"),
    }
)

Row = dict[str, object]


def shuffled(rows: list[Row], seed: tuple[int, ...]) -> list[Row]:
    """``rows`` in a fixed random order drawn from ``seed``."""
    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[k] for k in order]


def data_path(config: str, split: str) -> str:
    """Where a config's split lives in a dataset folder (``data/`` for the default config)."""
    folder = "data" if config == "default" else config
    return f"{folder}/{split}-00000-of-00001.parquet"


@dataclass(frozen=True)
class DemoTask:
    """One demo task: its scenes come from ``sample_scenes(n_scenes, (DATA_SEED, index))``."""

    name: str
    kind: str  # "t2i", "i2t" or "i2i"
    index: int
    n_scenes: int
    description: str


TASKS = (
    DemoTask(
        name="DemoShapesT2IRetrieval",
        kind="t2i",
        index=1,
        n_scenes=300,
        description="Caption queries, image corpus: retrieve the rendering that a caption "
        "describes. Captions are unique; each has one relevant image.",
    ),
    DemoTask(
        name="DemoShapesI2TRetrieval",
        kind="i2t",
        index=2,
        n_scenes=300,
        description="Image queries, caption corpus: retrieve the caption of a rendering. "
        "Captions are unique; each image has one relevant caption.",
    ),
    DemoTask(
        name="DemoShapesI2IRetrieval",
        kind="i2i",
        index=3,
        n_scenes=200,
        description="Image queries, image corpus: retrieve the 3 other renderings of the "
        "query's caption. Query renderings are not in the corpus.",
    ),
)
I2I_RENDERINGS = 3


def render_seed(task: DemoTask, scene_index: int, rendering: int) -> tuple[int, ...]:
    """The seed of one test rendering (training uses a seed stream of another shape and seed)."""
    return (DATA_SEED, task.index, scene_index, rendering)


def png_bytes(image: Image.Image) -> bytes:
    """Encode an image as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _text_row(row_id: str, text: str) -> Row:
    return {"id": row_id, "modality": "text", "text": text, "image": None}


def _image_row(row_id: str, scene: Scene, seed: tuple[int, ...]) -> Row:
    image = render(scene, size=IMAGE_SIZE, seed=seed)
    return {"id": row_id, "modality": "image", "text": None, "image": {"bytes": png_bytes(image)}}


def _scene_rows(task: DemoTask, i: int, scene: Scene) -> tuple[Row, list[Row]]:
    """The query row of scene ``i`` and the corpus rows relevant to it."""
    query_id, doc_id = f"q{i:04d}", f"d{i:04d}"
    if task.kind == "t2i":
        image = _image_row(doc_id, scene, render_seed(task, i, 0))
        return _text_row(query_id, scene.caption), [image]
    query = _image_row(query_id, scene, render_seed(task, i, 0))
    if task.kind == "i2t":
        return query, [_text_row(doc_id, scene.caption)]
    return query, [
        _image_row(f"{doc_id}-{j}", scene, render_seed(task, i, j))
        for j in range(1, I2I_RENDERINGS + 1)
    ]


def task_rows(task: DemoTask) -> tuple[list[Row], list[Row], list[Row]]:
    """(corpus, queries, qrels) rows of ``task``; the corpus is shuffled so ids carry no order."""
    scenes = sample_scenes(task.n_scenes, (DATA_SEED, task.index))
    corpus: list[Row] = []
    queries: list[Row] = []
    qrels: list[Row] = []
    for i, scene in enumerate(scenes):
        query, docs = _scene_rows(task, i, scene)
        queries.append(query)
        corpus.extend(docs)
        qrels.extend({"query-id": query["id"], "corpus-id": doc["id"], "score": 1} for doc in docs)
    order = np.random.default_rng((DATA_SEED, task.index, 0)).permutation(len(corpus))
    return [corpus[k] for k in order], queries, qrels


def _readme(task: DemoTask, counts: dict[str, int]) -> str:
    configs = "".join(
        f"- config_name: {config}\n"
        f"  data_files:\n"
        f"  - split: test\n"
        f"    path: {config}/test-00000-of-00001.parquet\n"
        for config in CONFIGS
    )
    sizes = ", ".join(f"{counts[c]} {c} rows" for c in CONFIGS)
    return (
        f"---\nlicense: apache-2.0\npretty_name: {task.name}\nconfigs:\n{configs}---\n\n"
        f"# {task.name}\n\n{task.description}\n\n"
        f"Synthetic scenes of two coloured shapes ({IMAGE_SIZE}x{IMAGE_SIZE} PNG), generated by "
        f"`harness/tasks/demo/shapes.py` (generator version {GENERATOR_VERSION}, "
        f"data seed {DATA_SEED}, "
        f"task index {task.index}). Test split only: {sizes}. "
        "See `../SOURCE.md` to reproduce.\n"
    )


def write_task(out_dir: Path, task: DemoTask) -> Path:
    """Write one task's folder (README and three parquet files) and return it."""
    folder = out_dir / task.name
    corpus, queries, qrels = task_rows(task)
    parts = {
        "corpus": (corpus, ITEM_FEATURES),
        "queries": (queries, ITEM_FEATURES),
        "qrels": (qrels, QREL_FEATURES),
    }
    for config, (rows, features) in parts.items():
        (folder / config).mkdir(parents=True, exist_ok=True)
        dataset = datasets.Dataset.from_list(rows, features=features)
        dataset.to_parquet(str(folder / config / "test-00000-of-00001.parquet"))
    counts = {config: len(rows) for config, (rows, _) in parts.items()}
    (folder / "README.md").write_text(_readme(task, counts), encoding="utf-8")
    return folder


def build_demo_datasets(out_dir: str | Path) -> list[Path]:
    """Write all demo tasks under ``out_dir`` and return their folders."""
    out = Path(out_dir)
    return [write_task(out, task) for task in TASKS]
