"""A pure, deterministic generator of two-shape scenes and their captions.

A scene is two coloured shapes and the spatial relation of the first to the second, captioned
like "a red circle left of an orange square". Every random draw comes from
``numpy.random.default_rng(seed)``; no global random state is touched, and rendering is done in
numpy (no rasteriser whose output could change between Pillow versions).

"a red circle left of a blue square" and "a blue square right of a red circle" describe the
same picture. Both name one *layout* (the left or top object, the other one, and the axis), and
``sample_scenes`` never returns two scenes with the same layout, so no two captions of a sample
describe the same picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

GENERATOR_VERSION = "1"

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 205, 30),
    "purple": (140, 60, 180),
    "orange": (245, 130, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")

# Relations whose subject is the left or top object of the layout.
_FORWARD = {"left of": "horizontal", "above": "vertical"}
_BACKWARD = {"right of": "horizontal", "below": "vertical"}
_RELATION_FOR = {
    ("horizontal", False): "left of",
    ("horizontal", True): "right of",
    ("vertical", False): "above",
    ("vertical", True): "below",
}

Seed = int | Sequence[int]
Obj = tuple[str, str]  # (colour, shape)
Layout = tuple[Obj, Obj, str]  # (left or top object, other object, axis)


@dataclass(frozen=True)
class Scene:
    """Two shapes, their colours, and the relation of the first shape to the second."""

    shapes: tuple[str, str]
    colours: tuple[str, str]
    relation: str

    @property
    def caption(self) -> str:
        """The caption, e.g. "a red circle left of a blue square"."""
        (c0, c1), (s0, s1) = self.colours, self.shapes
        return f"{_article(c0)} {c0} {s0} {self.relation} {_article(c1)} {c1} {s1}"

    @property
    def layout(self) -> Layout:
        """The picture the caption describes: (left or top object, other object, axis)."""
        first: Obj = (self.colours[0], self.shapes[0])
        second: Obj = (self.colours[1], self.shapes[1])
        if self.relation in _FORWARD:
            return first, second, _FORWARD[self.relation]
        return second, first, _BACKWARD[self.relation]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def vocabulary() -> list[str]:
    """Every word a caption can contain, in a fixed order."""
    words = ["a", "an", *COLOURS, *SHAPES]
    for relation in RELATIONS:
        words.extend(w for w in relation.split() if w not in words)
    return words


def all_layouts() -> list[Layout]:
    """Every layout of two distinct objects, in a fixed order."""
    objects = [(colour, shape) for colour in COLOURS for shape in SHAPES]
    return [
        (a, b, axis)
        for a in objects
        for b in objects
        if a != b
        for axis in ("horizontal", "vertical")
    ]


def scene_for(layout: Layout, backward: bool) -> Scene:
    """The scene that captions ``layout`` from its first object (or, if backward, its second)."""
    first, second, axis = layout
    subject, obj = (second, first) if backward else (first, second)
    return Scene(
        shapes=(subject[1], obj[1]),
        colours=(subject[0], obj[0]),
        relation=_RELATION_FOR[(axis, backward)],
    )


def sample_scenes(n: int, seed: Seed) -> list[Scene]:
    """``n`` scenes with pairwise distinct layouts, drawn without replacement."""
    layouts = all_layouts()
    if not 0 <= n <= len(layouts):
        raise ValueError(f"n must be between 0 and {len(layouts)}, got {n}")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(layouts), size=n, replace=False)
    backward = rng.integers(0, 2, size=n)
    return [scene_for(layouts[i], bool(b)) for i, b in zip(picks, backward, strict=True)]


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Pixels (offsets from the shape's centre) covered by a shape of radius ``r``."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return np.maximum(ax, ay) <= 0.85 * r
    if shape == "triangle":  # apex up, base at 0.75 r below the centre
        return (dy <= 0.75 * r) & (1.75 * ax <= 0.95 * (dy + r))
    if shape == "cross":
        return ((ax <= 0.3 * r) & (ay <= r)) | ((ay <= 0.3 * r) & (ax <= r))
    raise ValueError(f"unknown shape {shape!r}")


def _jittered_colour(name: str, rng: np.random.Generator) -> np.ndarray:
    base = np.array(COLOURS[name], dtype=np.int64)
    return np.clip(base + rng.integers(-15, 16, size=3), 0, 255).astype(np.uint8)


def render(scene: Scene, size: int = 64, seed: Seed = 0) -> Image.Image:
    """Render ``scene`` as an RGB image; ``seed`` jitters background, positions, sizes, colours.

    The two shapes are at least 0.38 * size apart along the relation's axis and at most
    0.12 * size apart across it, and never overlap or leave the canvas.
    """
    rng = np.random.default_rng(seed)
    first, second, axis = scene.layout
    background = np.clip(rng.integers(220, 256) + rng.integers(-8, 9, size=3), 0, 255)
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = background.astype(np.uint8)

    separation = rng.uniform(0.38, 0.5) * size
    centre_along = size / 2 + rng.uniform(-0.06, 0.06) * size
    centre_across = size / 2 + rng.uniform(-0.2, 0.2) * size
    across = centre_across + rng.uniform(-0.06, 0.06, size=2) * size
    along = centre_along + np.array([-separation / 2, separation / 2])
    radii = rng.uniform(0.11, 0.16, size=2) * size

    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    for k, (colour, shape) in enumerate((first, second)):
        cx, cy = (along[k], across[k]) if axis == "horizontal" else (across[k], along[k])
        mask = shape_mask(shape, xs - cx, ys - cy, radii[k])
        canvas[mask] = _jittered_colour(colour, rng)
    return Image.fromarray(canvas)
