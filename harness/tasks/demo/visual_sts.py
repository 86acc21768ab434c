"""Write the demo visual STS dataset, in the hub layout of MIEB's rendered-STS datasets.

``DemoShapesVisualSTS``: pairs of scene captions rendered as 64x64 text images (black on
white, Pillow's built-in bitmap font, word-wrapped), with a gold score from 0 to 5: the number
of attributes the two pictures share among the colour and shape of the left (or top) object,
the colour and shape of the other object, and the axis (horizontal or vertical). A pair scored
5 is a paraphrase ("a red circle left of a blue square" / "a blue square right of a red
circle"). One config ``default``, split ``test``, columns ``sentence1``, ``sentence2`` (PNG
images) and ``score``.

Seeds (``DATA_SEED`` 1729, task index 10): scenes ``sample_scenes(n, (1729, 10, 1))``, edits
and wordings ``(1729, 10, 2)``. The bitmap font (not the FreeType default) keeps the pixels
independent of the FreeType version.

Usage: ``python -m harness.tasks.demo OUT_DIR`` (the committed copy is ``harness/tasks/demo/data``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import datasets
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from harness.tasks.demo.build import DATA_SEED, png_bytes
from harness.tasks.demo.multiple_choice import write_configs
from harness.tasks.demo.shapes import (
    COLOURS,
    GENERATOR_VERSION,
    SHAPES,
    Layout,
    Scene,
    sample_scenes,
    scene_for,
)

TASK_INDEX = 10
TASK_NAME = "DemoShapesVisualSTS"
N_PAIRS = 200
TEXT_IMAGE_SIZE = 64
LINE_CHARACTERS = 10  # the bitmap font is 6 pixels wide per character
LINE_HEIGHT = 11
STS_FEATURES = datasets.Features(
    {
        "sentence1": datasets.Image(),
        "sentence2": datasets.Image(),
        "score": datasets.Value("float64"),
    }
)

Attributes = tuple[str, str, str, str, str]  # colour, shape, other colour, other shape, axis


def build_visual_sts(out_dir: Path) -> None:
    """Write the demo visual STS task under ``out_dir``."""
    rows = [
        {
            "sentence1": {"bytes": png_bytes(render_text(first))},
            "sentence2": {"bytes": png_bytes(render_text(second))},
            "score": score,
        }
        for first, second, score in caption_pairs()
    ]
    write_configs(out_dir / TASK_NAME, {"default": (rows, STS_FEATURES)}, _card())


def caption_pairs() -> list[tuple[str, str, float]]:
    """``N_PAIRS`` (caption, caption, shared attributes) triples; scores 0 to 5 equally likely."""
    rng = np.random.default_rng((DATA_SEED, TASK_INDEX, 2))
    pairs = []
    for scene in sample_scenes(N_PAIRS, (DATA_SEED, TASK_INDEX, 1)):
        changes = int(rng.integers(0, 6))
        edited = _edit(attributes(scene.layout), changes, rng)
        backward = bool(rng.integers(0, 2))
        second_backward = not backward if changes == 0 else bool(rng.integers(0, 2))
        second = scene_for(_layout(edited), second_backward)
        score = shared_attributes(scene, second)
        assert score == 5 - changes
        pairs.append((scene_for(scene.layout, backward).caption, second.caption, float(score)))
    return pairs


def attributes(layout: Layout) -> Attributes:
    """The five attributes of a picture."""
    (colour, shape), (other_colour, other_shape), axis = layout
    return colour, shape, other_colour, other_shape, axis


def shared_attributes(first: Scene, second: Scene) -> int:
    """How many of the five attributes the pictures of two scenes share."""
    pairs = zip(attributes(first.layout), attributes(second.layout), strict=True)
    return sum(a == b for a, b in pairs)


def _edit(values: Attributes, changes: int, rng: np.random.Generator) -> Attributes:
    """Change ``changes`` attributes at random, keeping the two objects distinct."""
    while True:
        edited = list(values)
        for slot in rng.choice(5, size=changes, replace=False):
            edited[slot] = str(rng.choice([v for v in _choices(int(slot)) if v != values[slot]]))
        if edited[:2] != edited[2:4]:
            return (edited[0], edited[1], edited[2], edited[3], edited[4])


def _choices(slot: int) -> list[str]:
    if slot == 4:
        return ["horizontal", "vertical"]
    return list(COLOURS) if slot % 2 == 0 else list(SHAPES)


def _layout(values: Attributes) -> Layout:
    return (values[0], values[1]), (values[2], values[3]), values[4]


def render_text(text: str) -> Image.Image:
    """Black text on white, word-wrapped and centred in a square image."""
    lines = textwrap.wrap(text, LINE_CHARACTERS)
    if len(lines) * LINE_HEIGHT > TEXT_IMAGE_SIZE:
        raise ValueError(f"{text!r} does not fit a {TEXT_IMAGE_SIZE}px image")
    image = Image.new("RGB", (TEXT_IMAGE_SIZE, TEXT_IMAGE_SIZE), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default_imagefont()
    top = (TEXT_IMAGE_SIZE - len(lines) * LINE_HEIGHT) // 2
    for k, line in enumerate(lines):
        width = draw.textlength(line, font=font)
        draw.text(((TEXT_IMAGE_SIZE - width) // 2, top + k * LINE_HEIGHT), line, (0, 0, 0), font)
    return image


def _card() -> str:
    return (
        f"Demo visual STS in the layout of MIEB's rendered-STS datasets: {N_PAIRS} pairs of "
        f"scene captions rendered as {TEXT_IMAGE_SIZE}x{TEXT_IMAGE_SIZE} PNG text images, gold "
        "score 0-5 = attributes shared by the two pictures. Generated by "
        f"`harness/tasks/demo/visual_sts.py` (shapes generator version {GENERATOR_VERSION}, "
        "data seed "
        f"{DATA_SEED}, task index {TASK_INDEX}). Test split only."
    )
