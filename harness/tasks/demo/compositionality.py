"""Write the demo compositionality datasets in the hub layouts of MIEB's Compositionality tasks.

Every scene has two objects that differ in colour and in shape, so four swaps of its caption
"a red circle left of a blue square" describe other pictures with the same words or nearly:

- colour swap: "a blue circle left of a red square";
- shape swap: "a red square left of a blue circle";
- object swap: "a blue square left of a red circle" (the objects change places);
- relation flip: "a red circle right of a blue square" (the same picture as the object swap).

Tasks (task index ``t`` draws its scenes with seed ``(DATA_SEED, t)`` and renders image ``k`` of
sample ``i`` with seed ``(DATA_SEED, t, i, k)``):

- ``DemoShapesWinoground`` (6), Winoground's layout: ``id``, ``image_0``, ``image_1``,
  ``caption_0``, ``caption_1``, ``tag``; scene 1 is scene 0 after a colour, shape or object swap
  (in turn), so the captions hold the same words in another order.
- ``DemoShapesAttributeSwap`` (7), ARO-COCO-order's layout: ``images``, ``correct_caption`` and
  ``hard_text_1``..``hard_text_4`` (the four swaps, in the order above).
- ``DemoShapesImageCoDe`` (8), ImageCoDe's layout: configs ``corpus`` (split ``corpus``: ``id``,
  ``modality``, ``image``), ``query`` and ``qrels`` (split ``test``); each caption's candidates are
  its scene and the colour, shape and object swaps of it (score 1 for the scene itself).

Usage: ``python -m harness.tasks.demo OUT_DIR`` (the committed copy is
``harness/tasks/demo/data``).
"""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np

from harness.tasks.demo.build import DATA_SEED, IMAGE_SIZE, png_bytes
from harness.tasks.demo.shapes import GENERATOR_VERSION, Scene, all_layouts, render, scene_for

WINOGROUND, ATTRIBUTE_SWAP, IMAGECODE = (
    "DemoShapesWinoground",
    "DemoShapesAttributeSwap",
    "DemoShapesImageCoDe",
)
TASK_INDEX = {WINOGROUND: 6, ATTRIBUTE_SWAP: 7, IMAGECODE: 8}
SAMPLES = {WINOGROUND: 200, ATTRIBUTE_SWAP: 300, IMAGECODE: 150}
SWAPS = ("colour", "shape", "object", "relation")
_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

Row = dict[str, object]
IMAGE = datasets.Image()
TEXT = datasets.Value("string")


def swapped(scene: Scene, swap: str) -> Scene:
    """``scene`` after one of the swaps in SWAPS."""
    shapes, colours, relation = scene.shapes, scene.colours, scene.relation
    if swap in ("shape", "object"):
        shapes = shapes[::-1]
    if swap in ("colour", "object"):
        colours = colours[::-1]
    if swap == "relation":
        relation = _OPPOSITE[relation]
    return Scene(shapes=shapes, colours=colours, relation=relation)


def contrast_scenes(n: int, seed: tuple[int, ...]) -> list[Scene]:
    """``n`` scenes of distinct layouts whose two objects differ in colour and in shape."""
    layouts = [
        (first, second, axis)
        for first, second, axis in all_layouts()
        if first[0] != second[0] and first[1] != second[1]
    ]
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(layouts), size=n, replace=False)
    backward = rng.integers(0, 2, size=n)
    return [scene_for(layouts[i], bool(b)) for i, b in zip(picks, backward, strict=True)]


def _image(task: str, sample: int, k: int, scene: Scene) -> dict[str, bytes]:
    seed = (DATA_SEED, TASK_INDEX[task], sample, k)
    return {"bytes": png_bytes(render(scene, size=IMAGE_SIZE, seed=seed))}


def _scenes(task: str) -> list[Scene]:
    return contrast_scenes(SAMPLES[task], (DATA_SEED, TASK_INDEX[task]))


def winoground_rows() -> list[Row]:
    """Pairs of scenes whose captions differ by a colour, shape or object swap."""
    rows = []
    for i, scene in enumerate(_scenes(WINOGROUND)):
        swap = SWAPS[i % 3]
        other = swapped(scene, swap)
        rows.append(
            {
                "id": i,
                "image_0": _image(WINOGROUND, i, 0, scene),
                "image_1": _image(WINOGROUND, i, 1, other),
                "caption_0": scene.caption,
                "caption_1": other.caption,
                "tag": f"{swap} swap",
            }
        )
    return rows


def attribute_swap_rows() -> list[Row]:
    """One image, its caption, and the four swapped captions as hard negatives."""
    return [
        {
            "images": _image(ATTRIBUTE_SWAP, i, 0, scene),
            "correct_caption": scene.caption,
            **{f"hard_text_{k + 1}": swapped(scene, swap).caption for k, swap in enumerate(SWAPS)},
        }
        for i, scene in enumerate(_scenes(ATTRIBUTE_SWAP))
    ]


def imagecode_rows() -> tuple[list[Row], list[Row], list[Row]]:
    """(corpus, query, qrels): a caption's scene and 3 swapped scenes, ids in shuffled order."""
    rng = np.random.default_rng((DATA_SEED, TASK_INDEX[IMAGECODE], 0))
    corpus: list[Row] = []
    queries: list[Row] = []
    qrels: list[Row] = []
    for i, scene in enumerate(_scenes(IMAGECODE)):
        candidates = [scene, *(swapped(scene, swap) for swap in SWAPS[:3])]
        slots = rng.permutation(len(candidates))
        docs = []
        for k, candidate in enumerate(candidates):
            doc_id = f"d{i:04d}-{slots[k]}"
            docs.append((doc_id, int(k == 0)))
            corpus.append(
                {"id": doc_id, "modality": "image", "image": _image(IMAGECODE, i, k, candidate)}
            )
        queries.append({"id": f"q{i:04d}", "modality": "text", "text": scene.caption})
        qrels.extend(
            {"query-id": f"q{i:04d}", "corpus-id": doc_id, "score": score}
            for doc_id, score in sorted(docs)
        )
    corpus.sort(key=lambda row: str(row["id"]))
    return corpus, queries, qrels


# Per task: config -> (split, rows, features).
Parts = dict[str, tuple[str, list[Row], datasets.Features]]


def task_parts(task: str) -> Parts:
    """The configs of ``task`` with their split, rows and features."""
    if task == WINOGROUND:
        features = {"id": datasets.Value("int64"), "image_0": IMAGE, "image_1": IMAGE}
        features |= {"caption_0": TEXT, "caption_1": TEXT, "tag": TEXT}
        return {"default": ("test", winoground_rows(), datasets.Features(features))}
    if task == ATTRIBUTE_SWAP:
        features = {"images": IMAGE, "correct_caption": TEXT}
        features |= {f"hard_text_{k}": TEXT for k in range(1, 5)}
        return {"default": ("test", attribute_swap_rows(), datasets.Features(features))}
    corpus, queries, qrels = imagecode_rows()
    return {
        "corpus": (
            "corpus",
            corpus,
            datasets.Features({"id": TEXT, "modality": TEXT, "image": IMAGE}),
        ),
        "query": ("test", queries, datasets.Features({"id": TEXT, "modality": TEXT, "text": TEXT})),
        "qrels": (
            "test",
            qrels,
            datasets.Features(
                {"query-id": TEXT, "corpus-id": TEXT, "score": datasets.Value("int64")}
            ),
        ),
    }


DESCRIPTIONS = {
    WINOGROUND: "Winoground style: two renderings and their two captions, which hold the same "
    "words in another order (a colour, shape or object swap). Main score: accuracy (group).",
    ATTRIBUTE_SWAP: "ARO style: one rendering, its caption and four hard negatives (colour swap, "
    "shape swap, object swap, relation flip). Main score: text_acc.",
    IMAGECODE: "ImageCoDe style: one caption and four renderings (its scene, and the colour, "
    "shape and object swaps of it). Main score: image_acc.",
}


def _readme(task: str, parts: Parts) -> str:
    configs = "".join(
        f"- config_name: {config}\n  data_files:\n  - split: {split}\n"
        f"    path: {config}/{split}-00000-of-00001.parquet\n"
        for config, (split, _, _) in parts.items()
    )
    sizes = ", ".join(f"{len(rows)} {config} rows" for config, (_, rows, _) in parts.items())
    return (
        f"---\nlicense: apache-2.0\npretty_name: {task}\nconfigs:\n{configs}---\n\n"
        f"# {task}\n\n{DESCRIPTIONS[task]}\n\n"
        f"Synthetic scenes of two coloured shapes ({IMAGE_SIZE}x{IMAGE_SIZE} PNG), generated by "
        f"`harness/tasks/demo/shapes.py` (generator version {GENERATOR_VERSION}, "
        f"data seed {DATA_SEED}, "
        f"task index {TASK_INDEX[task]}): {sizes}. Rebuild with "
        "`python -m harness.tasks.demo OUT_DIR`.\n"
    )


def write_task(out_dir: Path, task: str) -> Path:
    """Write one task's folder (a README and one parquet file per config) and return it."""
    folder = out_dir / task
    parts = task_parts(task)
    for config, (split, rows, features) in parts.items():
        (folder / config).mkdir(parents=True, exist_ok=True)
        dataset = datasets.Dataset.from_list(rows, features=features)
        dataset.to_parquet(str(folder / config / f"{split}-00000-of-00001.parquet"))
    (folder / "README.md").write_text(_readme(task, parts), encoding="utf-8")
    return folder


def build_compositionality(out_dir: Path) -> None:
    """Write the three demo compositionality tasks under ``out_dir/<TaskName>/``."""
    for task in TASK_INDEX:
        write_task(Path(out_dir), task)
