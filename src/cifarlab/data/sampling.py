"""The one seeded draw behind every subset: validation shares, folder splits, evaluation samples."""

from __future__ import annotations

import numpy as np


def seeded_sample(items: int | np.ndarray, size: int | float, seed: int,
                  labels: np.ndarray | None = None, sort: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(drawn, rest): `size` of `items` (a count, or a fraction between 0 and 1, rounded up), drawn
    with `seed`, in the classes' proportions when `labels` (one per item) are given.

    items: the indices to draw from, or n for 0..n-1. Both parts come sorted; with sort=False they
    keep the order drawn (a second draw from `rest` then depends on that order, as
    `folder.draw_splits` does). scikit-learn's `train_test_split` draws (`drawn` is its test part),
    so the same items, size, seed and labels give the same parts; a draw it cannot make (e.g. fewer
    items of a class than the strata need) raises its ValueError.
    """
    from sklearn.model_selection import train_test_split  # slow import: only when needed

    items = np.arange(items) if isinstance(items, (int, np.integer)) else np.asarray(items)
    rest, drawn = train_test_split(items, test_size=size, random_state=seed, stratify=labels)
    if sort:
        return np.sort(drawn), np.sort(rest)
    return drawn, rest
