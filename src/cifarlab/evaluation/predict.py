"""The class probabilities of a split, batch by batch, optionally with test-time augmentation."""

from __future__ import annotations

import sys

import numpy as np

from cifarlab.evaluation.tta import predict_tta


def predict_probabilities(classifier, images: np.ndarray, batch_size: int, tta: bool,
                          progress: bool) -> np.ndarray:
    from tqdm import tqdm

    out = []
    with tqdm(total=len(images), desc="predicting" + (" (x6 test-time augmentation)" if tta else ""), unit="img",
              disable=not progress, file=sys.stderr, leave=False) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            out.append(predict_tta(classifier.predict, batch) if tta
                       else np.asarray(classifier.predict(batch), dtype=np.float64))
            bar.update(len(batch))
    return np.concatenate(out)
