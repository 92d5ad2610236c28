"""ImageMagick 6 (Q16) motion blur, as Wand gave it to make_cifar_c.py (motion_blur and snow).

A one-sided half-Gaussian line of 2*ceil(radius)+1 taps, edge pixels repeated, sums on 16-bit
values (p * 257) rounded to 16 bits, then the 8-bit PNG's truncation. It sums in double, float32
here, so a rare value lands one level off (tests/test_corruptions_ops.py compares it with its
definition, and with `convert -motion-blur` where ImageMagick is installed).
"""

from __future__ import annotations

import itertools

import numpy as np


def _motion_taps(radius: float, sigma: float, angles: np.ndarray):
    """ImageMagick MotionBlurImage: weights and integer (dx, dy) offsets of each tap per angle.

    width = 2*ceil(radius)+1 taps; weight_i ~ exp(-i^2 / (2 sigma^2)); tap i samples the pixel
    at (x + round(i cos a), y + round(i sin a)). Taps below 1e-7 of the total weight are
    dropped (they move a 16-bit result by under 0.007).
    """
    width = int(2 * np.ceil(radius) + 1)
    i = np.arange(width, dtype=np.float64)
    s = max(float(sigma), 1e-12)
    w = np.exp(-(i * i) / (2 * s * s))
    w /= w.sum()
    i, w = i[w >= 1e-7], w[w >= 1e-7]
    a = np.deg2rad(np.asarray(angles, np.float64))[:, None]
    dx = np.ceil(i * np.cos(a) - 0.5).astype(np.int64)
    dy = np.ceil(i * np.sin(a) - 0.5).astype(np.int64)
    return w, dx, dy


def _shift_sum(x: np.ndarray, w: np.ndarray, dx: np.ndarray, dy: np.ndarray,
               order: np.ndarray) -> np.ndarray:
    """out[n, y, x] = sum_t w[t] * x[n, y + dy[n, t], x + dx[n, t]], edge pixels repeated.

    The images are sorted by `order` (the blur angle), so that, tap by tap, images with the same
    offset are contiguous: each run is one slice operation. Blocks of ~512 KB keep it in cache.
    Sums in x's float dtype, tap after tap.
    """
    n, h, wd = x.shape[:3]
    r = int(max(np.abs(dx).max(), np.abs(dy).max(), 0))
    pad = [(0, 0), (r, r), (r, r)] + [(0, 0)] * (x.ndim - 3)
    padded = np.pad(x[order], pad, mode="edge")
    dxs, dys = dx[order], dy[order]
    out = np.empty(x.shape, x.dtype)
    block = max(8, (1 << 19) // (int(np.prod(x.shape[1:])) * x.itemsize))
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        acc = np.zeros((hi - lo,) + x.shape[1:], x.dtype)
        src = padded[lo:hi]
        for t in range(len(w)):
            wt, tx, ty = x.dtype.type(w[t]), dxs[lo:hi, t], dys[lo:hi, t]
            bounds = np.concatenate([[0], np.flatnonzero((tx[1:] != tx[:-1])
                                                         | (ty[1:] != ty[:-1])) + 1, [hi - lo]])
            for a, b in itertools.pairwise(bounds):
                oy, ox = r + ty[a], r + tx[a]
                acc[a:b] += wt * src[a:b, oy:oy + h, ox:ox + wd]
        out[order[lo:hi]] = acc
    return out


def imagemagick_motion_blur(x: np.ndarray, radius: float, sigma: float,
                            angles: np.ndarray) -> np.ndarray:
    """`convert -motion-blur {radius}x{sigma}+{angle}` of each image of a uint8 batch."""
    w, dx, dy = _motion_taps(radius, sigma, angles)
    q16 = _shift_sum(x.astype(np.float32) * np.float32(257), w, dx, dy,
                     np.argsort(angles, kind="stable"))
    return np.clip(np.floor(np.floor(q16 + np.float32(0.5)) / np.float32(257)), 0, 255
                   ).astype(np.uint8)
