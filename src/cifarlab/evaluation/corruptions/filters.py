"""Filtering whole batches with one OpenCV call: images padded one by one, stacked, filtered."""

from __future__ import annotations

import cv2
import numpy as np

_NP_PAD = {cv2.BORDER_REFLECT_101: "reflect", cv2.BORDER_REPLICATE: "edge",
           cv2.BORDER_REFLECT: "symmetric"}


def finish(y: np.ndarray) -> np.ndarray:
    """Float values on the 0..255 scale -> uint8, truncating like the original's np.uint8()."""
    return np.clip(y, 0, 255).astype(np.uint8)


def _stacked(x: np.ndarray, top: int, bottom: int, left: int, right: int, border: int):
    """Pad each image of (N, H, W[, C]) and stack them into one tall image for a single cv2 call."""
    pad = [(0, 0), (top, bottom), (left, right)] + [(0, 0)] * (x.ndim - 3)
    padded = np.pad(x, pad, mode=_NP_PAD[border])
    n, hp, wp = padded.shape[:3]
    return padded.reshape((n * hp, wp) + padded.shape[3:]), (n, hp, wp)


def _unstack(tall: np.ndarray, dims, top: int, left: int, h: int, w: int) -> np.ndarray:
    n, hp, wp = dims
    return tall.reshape((n, hp, wp) + tall.shape[2:])[:, top:top + h, left:left + w]


def filter_batch(x: np.ndarray, kernel: np.ndarray, border: int) -> np.ndarray:
    """cv2.filter2D (centred, odd kernel) of every image of a float32 batch, per-image borders."""
    kh, kw = kernel.shape
    ay, ax = kh // 2, kw // 2
    tall, dims = _stacked(x, ay, kh - 1 - ay, ax, kw - 1 - ax, border)
    out = cv2.filter2D(tall, -1, kernel.astype(np.float32), borderType=cv2.BORDER_CONSTANT)
    return _unstack(out, dims, ay, ax, x.shape[1], x.shape[2])


def _sep_filter(x: np.ndarray, kx: np.ndarray, ky: np.ndarray, border: int) -> np.ndarray:
    """Separable version of `filter_batch` (odd, centred 1-D kernels)."""
    ry, rx = len(ky) // 2, len(kx) // 2
    tall, dims = _stacked(x, ry, ry, rx, rx, border)
    out = cv2.sepFilter2D(tall, -1, kx.astype(np.float32), ky.astype(np.float32),
                          borderType=cv2.BORDER_CONSTANT)
    return _unstack(out, dims, ry, rx, x.shape[1], x.shape[2])


def _gauss_kernel(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian: radius int(truncate * sigma + 0.5), normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    if sigma <= 1e-15 or radius == 0:
        return np.ones(1)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * t * t / (sigma * sigma))
    return k / k.sum()


def gaussian(x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0):
    """skimage.filters.gaussian / scipy gaussian_filter over the two spatial axes of a batch."""
    k = _gauss_kernel(sigma, truncate)
    x = x.astype(np.float32, copy=False)
    if len(k) == 1:
        return x.copy()
    border = {"nearest": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT}[mode]
    return _sep_filter(x, k, k, border)
