"""k-fold cross-validated k-shot samples, as mteb's ``AbsTaskClassification`` draws them when
``is_cross_validation`` is set (MAEB's audio classification tasks: 5 folds).

The rows are split by ``KFold(n_splits=folds, shuffle=True, random_state=seed)``. In each fold
the train rows are undersampled to ``samples_per_label`` rows per label: a permutation of
``range(len(first fold's train rows))`` is shuffled by a fresh ``RandomState(seed)`` (carried
over from fold to fold, each fold shuffling the previous fold's permutation) and walked in
order, keeping a row while its label has fewer than ``samples_per_label`` kept rows. The
permutation indexes each fold's own train rows, so (as in mteb) a fold with more train rows than
the first never samples its last ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    """One experiment: its sampled train rows (in the order the classifier sees them) and its
    evaluation rows, as row numbers of the whole split."""

    train: list[int]
    test: list[int]


def kfold_kshot_samples(
    labels: Sequence[Hashable], folds: int, samples_per_label: int, seed: int = 42
) -> list[Fold]:
    """The ``folds`` experiments of a cross-validated k-shot linear probe over ``labels``."""
    from sklearn.model_selection import KFold

    if not 2 <= folds <= len(labels):
        raise ValueError(f"cannot split {len(labels)} rows into {folds} folds")
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    order: list[int] | None = None
    experiments = []
    for train_rows, test_rows in splitter.split(np.arange(len(labels))):
        if order is None:
            order = list(range(len(train_rows)))
        np.random.RandomState(seed).shuffle(order)
        kept: Counter[Hashable] = Counter()
        sample = []
        for position in order:
            row = int(train_rows[position])
            if kept[labels[row]] < samples_per_label:
                sample.append(row)
                kept[labels[row]] += 1
        experiments.append(Fold(sample, [int(row) for row in test_rows]))
    return experiments
