"""A pure, deterministic generator of short demo video clips and their captions.

A clip shows one coloured shape (the colours and shapes of :mod:`harness.tasks.demo.shapes`)
doing one thing over :data:`N_FRAMES` frames of :data:`SIZE` x :data:`SIZE` pixels at :data:`FPS`
frames a second: it moves left, right, up or down, grows, shrinks, or turns another colour. Each
:class:`Clip` has a caption ("a red circle moves to the left", "a blue square grows", "a green
triangle turns yellow") and a class label, its event (:data:`EVENTS`: "moves left", "moves right",
"moves up", "moves down", "grows", "shrinks", "changes colour").

A clip and its :meth:`Clip.reversed` twin ("moves left" and "moves right" of the same shape,
"grows" and "shrinks", "turns yellow" and "turns red") rendered with the same seed are the same
frames in reverse order: only the order of the frames tells them apart, so a model that pools
its frames cannot.

Public API:

- :func:`demo_clips(count, seed) <demo_clips>`: ``count`` clips drawn at random (with
  replacement from :func:`all_clips`) and rendered, each a :class:`DemoClip` with its
  ``caption``, ``label``, ``frames`` (uint8 ``(T, H, W, 3)`` RGB) and :meth:`DemoClip.mp4`
  (H.264 MP4 bytes). The same seed gives the same clips; the demo's test data use seeds
  ``(DATA_SEED, task index, ...)`` (see ``harness/tasks/demo/video.py``).
- :func:`sample_clips` draws distinct clip descriptions, :func:`render` renders one,
  :func:`encode` writes frames as MP4, :func:`vocabulary` lists every caption and label word.

Every random draw comes from ``numpy.random.default_rng(seed)``; rendering is numpy only, and
:func:`harness.core.video.encode_video` (PyAV, libx264, one thread) writes the same bytes for the
same frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from harness.core.video import encode_video
from harness.tasks.demo.shapes import COLOURS, SHAPES, Seed, shape_mask

GENERATOR_VERSION = "1"
SIZE = 64
N_FRAMES = 8
FPS = 8.0

MOVES = ("left", "right", "up", "down")
CHANGES_COLOUR = "changes colour"
EVENTS: tuple[str, ...] = (*(f"moves {d}" for d in MOVES), "grows", "shrinks", CHANGES_COLOUR)
# Each event whose clips are another event's frames in reverse order.
_REVERSED = {
    "moves left": "moves right",
    "moves right": "moves left",
    "moves up": "moves down",
    "moves down": "moves up",
    "grows": "shrinks",
    "shrinks": "grows",
}
# The event rendered for each event: its frames are drawn forward, then reversed when it differs.
_DRAWN = {"moves left": "moves right", "moves up": "moves down", "shrinks": "grows"}
_PHRASES = {
    "moves left": "moves to the left",
    "moves right": "moves to the right",
    "moves up": "moves up",
    "moves down": "moves down",
    "grows": "grows",
    "shrinks": "shrinks",
}


@dataclass(frozen=True)
class Clip:
    """One shape, its colour and its event; ``new_colour`` is the colour it turns (the event
    "changes colour") and None otherwise."""

    colour: str
    shape: str
    event: str
    new_colour: str | None = None

    def __post_init__(self) -> None:
        if self.colour not in COLOURS or self.shape not in SHAPES or self.event not in EVENTS:
            raise ValueError(f"unknown colour, shape or event in {self}")
        changes = self.event == CHANGES_COLOUR
        if changes != (self.new_colour in COLOURS) or self.new_colour == self.colour:
            raise ValueError(f"{self}: a new colour, other than the colour, iff it changes colour")

    @property
    def caption(self) -> str:
        """The caption, e.g. "a red circle moves to the left" or "a green triangle turns
        yellow"."""
        article = "an" if self.colour[0] in "aeiou" else "a"
        action = f"turns {self.new_colour}" if self.new_colour else _PHRASES[self.event]
        return f"{article} {self.colour} {self.shape} {action}"

    @property
    def label(self) -> str:
        """The class label: the event."""
        return self.event

    def reversed(self) -> Clip:
        """The clip whose frames are this clip's in reverse order (same seed)."""
        if self.new_colour is not None:
            return replace(self, colour=self.new_colour, new_colour=self.colour)
        return replace(self, event=_REVERSED[self.event])


def all_clips() -> list[Clip]:
    """Every clip description, in a fixed order (6 colours x 4 shapes x 11 actions)."""
    clips: list[Clip] = []
    for colour in COLOURS:
        for shape in SHAPES:
            clips.extend(Clip(colour, shape, event) for event in EVENTS[:-1])
            clips.extend(
                Clip(colour, shape, CHANGES_COLOUR, new) for new in COLOURS if new != colour
            )
    return clips


def vocabulary() -> list[str]:
    """Every word of a caption or a label, in order of first appearance."""
    texts = [clip.caption for clip in all_clips()] + list(EVENTS)
    return list(dict.fromkeys(word for text in texts for word in text.split()))


def sample_clips(n: int, seed: Seed) -> list[Clip]:
    """``n`` distinct clip descriptions, drawn without replacement."""
    clips = all_clips()
    if not 0 <= n <= len(clips):
        raise ValueError(f"n must be between 0 and {len(clips)}, got {n}")
    picks = np.random.default_rng(seed).choice(len(clips), size=n, replace=False)
    return [clips[i] for i in picks]


def _colour(name: str, rng: np.random.Generator) -> np.ndarray:
    base = np.array(COLOURS[name], dtype=np.int64)
    return np.clip(base + rng.integers(-15, 16, size=3), 0, 255).astype(np.uint8)


def render(clip: Clip, seed: Seed = 0) -> np.ndarray:
    """The clip's frames, uint8 RGB of shape ``(N_FRAMES, SIZE, SIZE, 3)``; ``seed`` jitters the
    background, position, size, travel and colours.

    A moving shape travels 0.35-0.5 of the frame at constant speed; a growing one doubles to
    triples its radius; a colour change happens halfway. The shape never leaves the frame.
    """
    rng = np.random.default_rng(seed)
    drawn = _DRAWN.get(clip.event, clip.event)
    # Colours are drawn in a fixed order, so that twins (red to yellow, yellow to red) share draws.
    pair = sorted({clip.colour, clip.new_colour or clip.colour}, key=list(COLOURS).index)
    background = np.clip(rng.integers(220, 256) + rng.integers(-8, 9, size=3), 0, 255)
    colours = [_colour(pair[0], rng), _colour(pair[-1], rng)]
    t = np.linspace(0.0, 1.0, N_FRAMES)
    if drawn == "grows":
        small = rng.uniform(0.08, 0.11) * SIZE
        radii = small + (rng.uniform(2.0, 3.0) * small - small) * t
    else:
        radii = np.full(N_FRAMES, rng.uniform(0.11, 0.15) * SIZE)
    margin = radii.max() + 1
    centre = rng.uniform(margin, SIZE - margin, size=2)
    xs = np.full(N_FRAMES, centre[0])
    ys = np.full(N_FRAMES, centre[1])
    if drawn.startswith("moves"):
        travel = rng.uniform(0.35, 0.5) * SIZE
        start = rng.uniform(margin, SIZE - margin - travel)
        if drawn == "moves right":
            xs = start + travel * t
        else:
            ys = start + travel * t
    grid_y, grid_x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    frames = np.empty((N_FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    frames[:] = background.astype(np.uint8)
    for k in range(N_FRAMES):
        mask = shape_mask(clip.shape, grid_x - xs[k], grid_y - ys[k], radii[k])
        frames[k][mask] = colours[int(k >= N_FRAMES // 2) if clip.new_colour else 0]
    reverse = drawn != clip.event or pair[0] != clip.colour
    return frames[::-1].copy() if reverse else frames


def encode(frames: np.ndarray) -> bytes:
    """``frames`` as H.264 MP4 bytes at :data:`FPS` (the same frames give the same bytes)."""
    return encode_video(frames, FPS)


@dataclass(frozen=True)
class DemoClip:
    """A rendered clip: its description, the seed it was rendered with, and its frames."""

    clip: Clip
    seed: tuple[int, ...]
    frames: np.ndarray

    @property
    def caption(self) -> str:
        """The clip's caption."""
        return self.clip.caption

    @property
    def label(self) -> str:
        """The clip's class label (its event)."""
        return self.clip.label

    def mp4(self) -> bytes:
        """The frames as H.264 MP4 bytes."""
        return encode(self.frames)


def rendered(clip: Clip, seed: Sequence[int]) -> DemoClip:
    """``clip`` rendered with ``seed``."""
    return DemoClip(clip, tuple(seed), render(clip, tuple(seed)))


def demo_clips(count: int, seed: int | Sequence[int]) -> list[DemoClip]:
    """``count`` clips drawn at random from :func:`all_clips` (with replacement) and rendered;
    clip ``k`` is rendered with seed ``(*seed, k, 1)``."""
    prefix = (seed,) if isinstance(seed, int) else tuple(seed)
    clips = all_clips()
    picks = np.random.default_rng(prefix).integers(len(clips), size=count)
    return [rendered(clips[i], (*prefix, k, 1)) for k, i in enumerate(picks)]
