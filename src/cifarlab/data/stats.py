"""Dataset statistics."""

from __future__ import annotations

import numpy as np


def channel_stats(images) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images on the 0..255 scale.

    Read in chunks of rows, so neither a float copy nor (for a memory map or `Split.rows`) the
    whole array is ever in memory."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for start in range(0, len(images), 4096):
        chunk = images[start : start + 4096].reshape(-1, 3).astype(np.float64)
        total += chunk.sum(0)
        total_sq += np.square(chunk).sum(0)
    n = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / n
    return mean.astype(np.float32), np.sqrt(np.maximum(total_sq / n - mean**2, 1e-6)).astype(np.float32)
