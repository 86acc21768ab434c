"""Write the demo multiple-choice datasets, in the hub layouts of MIEB's VisionCentricQA tasks.

- ``DemoShapesRelationChoice`` (it2t, CV-Bench layout): one config ``default`` whose rows hold
  a scene's ``image``, a ``question`` ("where is the red circle relative to the blue square"),
  four ``choices`` (the scene's caption with each of the four relations) and the ``answer``
  as ``(A)``... The ``task`` column is ``Relation``, as in CV-Bench.
- ``DemoShapesColourChoice`` (i2t, BLINK layout): configs ``corpus`` (caption texts, one row
  per distinct caption), ``queries`` (scene images) and ``qrels`` listing each query's three
  candidates: its caption (score 1) and two with the colours swapped or replaced (score 0).

Every candidate caption but the answer describes another picture. Seeds (``DATA_SEED`` 1729,
task index 9, sub-task k = 1 or 2): scenes ``sample_scenes(n, (1729, 9, k))``, renderings
``(1729, 9, k, 1, i + 1)``, choice order and distractors ``(1729, 9, k, 2)``. No seed ends in
0: numpy's SeedSequence gives ``(a, b)`` and ``(a, b, 0)`` the same stream.

Usage: ``python -m harness.tasks.demo OUT_DIR`` (the committed copy is
``harness/tasks/demo/data``).
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np

from harness.tasks.demo.build import DATA_SEED, IMAGE_SIZE, ITEM_FEATURES, QREL_FEATURES, png_bytes
from harness.tasks.demo.shapes import (
    COLOURS,
    GENERATOR_VERSION,
    RELATIONS,
    Scene,
    render,
    sample_scenes,
)

TASK_INDEX = 9
RELATION_TASK = "DemoShapesRelationChoice"
COLOUR_TASK = "DemoShapesColourChoice"
N_QUESTIONS = 200
COLOUR_CANDIDATES = 3
CHOICE_FEATURES = datasets.Features(
    {
        "idx": datasets.Value("int64"),
        "type": datasets.Value("string"),
        "task": datasets.Value("string"),
        "image": datasets.Image(),
        "question": datasets.Value("string"),
        "choices": datasets.Sequence(datasets.Value("string")),
        "answer": datasets.Value("string"),
    }
)

Row = dict[str, object]
Parts = dict[str, tuple[list[Row], datasets.Features]]


def build_multiple_choice(out_dir: Path) -> None:
    """Write both demo multiple-choice tasks under ``out_dir``."""
    write_configs(out_dir / RELATION_TASK, relation_parts(), _card(RELATION_TASK, 1))
    write_configs(out_dir / COLOUR_TASK, colour_parts(), _card(COLOUR_TASK, 2))


def write_configs(folder: Path, parts: Parts, description: str, split: str = "test") -> None:
    """Write each config as ``<config>/<split>-00000-of-00001.parquet`` and a dataset card."""
    configs = ""
    for config, (rows, features) in parts.items():
        (folder / config).mkdir(parents=True, exist_ok=True)
        path = f"{config}/{split}-00000-of-00001.parquet"
        datasets.Dataset.from_list(rows, features=features).to_parquet(str(folder / path))
        configs += f"- config_name: {config}\n  data_files:\n  - split: {split}\n    path: {path}\n"
    card = f"---\nlicense: apache-2.0\npretty_name: {folder.name}\nconfigs:\n{configs}---\n\n"
    (folder / "README.md").write_text(f"{card}# {folder.name}\n\n{description}\n", encoding="utf-8")


def _seed(subtask: int, *rest: int) -> tuple[int, ...]:
    return (DATA_SEED, TASK_INDEX, subtask, *rest)


def _image(scene: Scene, subtask: int, index: int) -> dict[str, bytes]:
    picture = render(scene, size=IMAGE_SIZE, seed=_seed(subtask, 1, index + 1))
    return {"bytes": png_bytes(picture)}


def relation_parts() -> Parts:
    """The CV-Bench-style config: which of the four relations does the picture show?"""
    scenes = sample_scenes(N_QUESTIONS, _seed(1))
    rng = np.random.default_rng(_seed(1, 2))
    rows: list[Row] = []
    for i, scene in enumerate(scenes):
        order = [RELATIONS[k] for k in rng.permutation(len(RELATIONS))]
        choices = [Scene(scene.shapes, scene.colours, relation).caption for relation in order]
        (c0, c1), (s0, s1) = scene.colours, scene.shapes
        rows.append(
            {
                "idx": i,
                "type": "2D",
                "task": "Relation",
                "image": _image(scene, 1, i),
                "question": f"where is the {c0} {s0} relative to the {c1} {s1}",
                "choices": choices,
                "answer": f"({'ABCD'[order.index(scene.relation)]})",
            }
        )
    return {"default": (rows, CHOICE_FEATURES)}


def colour_parts() -> Parts:
    """The BLINK-style configs: the caption with the right colours among three."""
    scenes = sample_scenes(N_QUESTIONS, _seed(2))
    rng = np.random.default_rng(_seed(2, 2))
    doc_ids: dict[str, str] = {}
    queries: list[Row] = []
    qrels: list[Row] = []
    for i, scene in enumerate(scenes):
        query_id = f"q{i:04d}"
        queries.append(
            {"id": query_id, "modality": "image", "text": None, "image": _image(scene, 2, i)}
        )
        wrong = _colour_distractors(scene, rng)[: COLOUR_CANDIDATES - 1]
        candidates = [scene.caption, *wrong]
        for k in rng.permutation(len(candidates)):
            doc_id = doc_ids.setdefault(candidates[k], f"d{len(doc_ids):04d}")
            qrels.append({"query-id": query_id, "corpus-id": doc_id, "score": int(k == 0)})
    corpus: list[Row] = [
        {"id": doc_id, "modality": "text", "text": text, "image": None}
        for text, doc_id in doc_ids.items()
    ]
    return {
        "corpus": (corpus, ITEM_FEATURES),
        "queries": (queries, ITEM_FEATURES),
        "qrels": (qrels, QREL_FEATURES),
    }


def _colour_distractors(scene: Scene, rng: np.random.Generator) -> list[str]:
    """Captions of the same shapes and relation with other colours, in a random order."""
    (c0, c1), palette = scene.colours, list(COLOURS)
    options = [(c1, c0)]
    options.append((str(rng.choice([c for c in palette if c not in (c0, c1)])), c1))
    options.append((c0, str(rng.choice([c for c in palette if c not in (c0, c1)]))))
    captions = {Scene(scene.shapes, colours, scene.relation).caption for colours in options}
    captions.discard(scene.caption)
    ordered = sorted(captions)
    return [ordered[k] for k in rng.permutation(len(ordered))]


def _card(name: str, subtask: int) -> str:
    kind = "CV-Bench" if name == RELATION_TASK else "BLINK"
    return (
        f"Demo multiple choice in the {kind} layout of MIEB's VisionCentricQA tasks: "
        f"{N_QUESTIONS} questions on synthetic scenes of two coloured shapes "
        f"({IMAGE_SIZE}x{IMAGE_SIZE} PNG), generated by `harness/tasks/demo/multiple_choice.py` "
        f"(generator version {GENERATOR_VERSION}, data seed {DATA_SEED}, task index "
        f"{TASK_INDEX}, sub-task {subtask}). Test split only."
    )
