"""Test-time augmentation as airbench does it: average over the image, its mirror, and both again
shifted by one pixel up-left and down-right (reflect padding). Six forward passes; what they add
to each recipe's accuracy: docs/results.md, Accuracy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def mirror(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images[:, :, ::-1])


def tta_views(images: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """(weight, batch) pairs summing to weight 1: the unshifted pair weighs half, as in airbench."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    shifted = [np.ascontiguousarray(padded[:, :-2, :-2]), np.ascontiguousarray(padded[:, 2:, 2:])]
    return [(0.25, images), (0.25, mirror(images))] + [(0.125, view) for s in shifted for view in (s, mirror(s))]


def predict_tta(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
    """Weighted mean of the probabilities `predict` gives for each view of `images`."""
    return sum(weight * np.asarray(predict(view), dtype=np.float64) for weight, view in tta_views(images))
