"""Image-text pair classification (mteb's "Compositionality" type) scored as mteb scores it.

A sample holds ``I`` images and ``T`` captions, and image ``i`` belongs with caption ``i``:
Winoground has 2 images and 2 captions, ARO and SugarCrepe one image and its true caption
(caption 0) followed by negatives, ImageCoDe one caption and its true image (image 0) followed
by distractors. Similarities are cosines (``harness.core.similarity``: vectors normalised like
``torch``'s ``F.normalize``), computed in float32 as mteb computes them.

The three metrics, under mteb's key names:

- ``text_acc``: every image's best caption is its own (Winoground's *text score*);
- ``image_acc``: every caption's best image is its own (Winoground's *image score*);
- ``accuracy``: both at once (Winoground's *group score*).

"Best" is mteb's ``argmax``: among tied maxima the lowest index wins, so a tie counts as
correct for the image or caption at index 0 and as wrong for the others (and a NaN similarity
counts as the maximum, as in ``torch.argmax``). With one image per sample, ``image_acc`` and
``accuracy`` are always 0 (the single image cannot be the best match of captions 1..T-1);
with one caption per sample, ``text_acc`` and ``accuracy`` are always 0. Each mean is taken in
float32, as mteb's ``torch.Tensor(...).float().mean()``.
"""

from __future__ import annotations

import numpy as np

from harness.core import similarity as sim


def cosine_similarities(image_vectors: np.ndarray, text_vectors: np.ndarray) -> np.ndarray:
    """Per-sample cosine similarities: ``(n, I, d)`` and ``(n, T, d)`` give ``(n, I, T)``."""
    images, texts = np.asarray(image_vectors), np.asarray(text_vectors)
    if images.ndim != 3 or texts.ndim != 3 or images.shape[0::2] != texts.shape[0::2]:
        raise ValueError(
            f"expected (n, I, d) images and (n, T, d) texts, got {images.shape} and {texts.shape}"
        )
    return sim.matrix(images, texts, sim.COSINE)


def correct_matches(similarities: np.ndarray, axis: int, strict_ties: bool = False) -> np.ndarray:
    """Per sample: whether each entry's best match along ``axis`` is the entry of equal index.

    ``axis`` 2 asks, for each image, whether its best caption is its own (the text score);
    ``axis`` 1 asks it for each caption (the image score). With ``strict_ties`` a correct
    match must beat every other candidate strictly (the Winoground paper's rule) instead of
    winning ties by the lowest index (mteb's ``argmax``).
    """
    best = np.argmax(similarities, axis=axis)
    own = np.arange(best.shape[-1])
    correct = best == own
    if strict_ties:
        top = np.max(similarities, axis=axis, keepdims=True)
        correct &= np.sum(similarities == top, axis=axis) == 1
    return np.all(correct, axis=-1)


def pair_classification_flags(
    similarities: np.ndarray, *, strict_ties: bool = False
) -> dict[str, np.ndarray]:
    """Per sample of ``(n, I, T)`` similarities: whether it counts for ``image_acc``,
    ``text_acc`` and ``accuracy`` (both)."""
    similarities = np.asarray(similarities)
    if similarities.ndim != 3 or similarities.shape[0] == 0:
        raise ValueError(f"expected (n, I, T) similarities with n > 0, got {similarities.shape}")
    text_correct = correct_matches(similarities, axis=2, strict_ties=strict_ties)
    image_correct = correct_matches(similarities, axis=1, strict_ties=strict_ties)
    return {
        "image_acc": image_correct,
        "text_acc": text_correct,
        "accuracy": image_correct & text_correct,
    }


def pair_classification_scores(
    similarities: np.ndarray, *, strict_ties: bool = False
) -> dict[str, float]:
    """``image_acc``, ``text_acc`` and ``accuracy`` of ``(n, I, T)`` similarities, as mteb."""
    flags = pair_classification_flags(similarities, strict_ties=strict_ties)
    return {name: _float32_mean(values) for name, values in flags.items()}


def _float32_mean(flags: np.ndarray) -> float:
    """The share of true flags, rounded to float32 like mteb's float tensor mean."""
    return float(np.float32(np.count_nonzero(flags)) / np.float32(flags.size))
