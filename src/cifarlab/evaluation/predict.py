"""The class probabilities of a split and, for a model with the open-set output, its
out-of-distribution scores, batch by batch, optionally with test-time augmentation."""

from __future__ import annotations

import sys

import numpy as np

from cifarlab.evaluation.tta import predict_tta


def predict_tta_scored(classifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The views' mean probabilities, and the score of the plain view only (the images as they
    are, as `predict` and `live` score them): a score averaged over views would need a threshold
    of its own."""
    plain: list[np.ndarray | None] = []

    def predict(view: np.ndarray) -> np.ndarray:
        probs, scores = classifier.predict_scored(view)
        if view is images:
            plain.append(scores)
        return probs

    return predict_tta(predict, images), plain[0]


def predict_batch(classifier, images: np.ndarray, tta: bool) -> tuple[np.ndarray, np.ndarray | None]:
    if tta:
        return predict_tta_scored(classifier, images)
    probs, scores = classifier.predict_scored(images)
    return np.asarray(probs, dtype=np.float64), scores


def predict_scored_split(classifier, images: np.ndarray, batch_size: int, tta: bool,
                         progress: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities (N, classes) float64, scores (N,) float64 or None without the open-set output)."""
    from tqdm import tqdm

    probs, scores = [], []
    with tqdm(total=len(images), desc="predicting" + (" (x6 test-time augmentation)" if tta else ""), unit="img",
              disable=not progress, file=sys.stderr, leave=False) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            batch_probs, batch_scores = predict_batch(classifier, batch, tta)
            probs.append(batch_probs)
            scores.append(batch_scores)
            bar.update(len(batch))
    if any(s is None for s in scores):
        return np.concatenate(probs), None
    return np.concatenate(probs), np.concatenate(scores).astype(np.float64)
