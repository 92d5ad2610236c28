"""Blur: defocus, glass, motion and zoom blur, and the extra gaussian blur.

At other sizes than 32 (s = size/32), the lengths in pixels scale by s: the defocus disk radius
and alias blur, the gaussian and glass blur sigmas, glass blur's max delta (round(s), at least
1), the motion blur radius and sigma. zoom_blur's zoom factors need no scaling.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from cifarlab.evaluation.corruptions.filters import filter_batch, finish, gaussian
from cifarlab.evaluation.corruptions.motion import imagemagick_motion_blur
from cifarlab.evaluation.corruptions.registry import corruption
from cifarlab.evaluation.corruptions.resample import (
    apply_separable,
    clipped_zoom_matrix,
    rows_matmul,
)


def _zoom_factors(stop: float) -> tuple[float, ...]:
    # The original's np.arange(1, stop, 0.01), float steps and all: 1.06 and 1.11 come out
    # inclusive (7 and 12 factors), 1.16, 1.21, 1.26 exclusive (16, 21, 26), and values such as
    # 1.2500000000000002 change scipy's rounded zoom sizes, so they are kept as they are.
    return tuple(float(v) for v in np.arange(1, stop, 0.01))


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """The original's anti-aliased disk kernel, cropped to its non-zero support."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        r = int(np.ceil(radius))
        grid, ksize = np.arange(-r, r + 1), (5, 5)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    disk /= np.sum(disk)
    kernel = cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)
    centre = len(grid) // 2
    nz = np.argwhere(kernel != 0)
    r = int(np.abs(nz - centre).max()) if len(nz) else 0
    return kernel[centre - r:centre + r + 1, centre - r:centre + r + 1]


@corruption("defocus_blur", params=((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
            main=True)
def defocus_blur(x, c, rng):
    """An anti-aliased disk of radius c[0], alias blur c[1]."""
    s = x.shape[1] / 32
    kernel = _disk(c[0] * s, c[1] * s)
    return finish(filter_batch(x.astype(np.float32), kernel, cv2.BORDER_REFLECT_101))


def glass_offsets(size: int, delta: int) -> np.ndarray:
    """Positions (h, w) the original visits, in its order: h, w from size-delta down to delta+1."""
    r = np.arange(size - delta, delta, -1)
    hh, ww = np.meshgrid(r, r, indexing="ij")
    return np.stack([hh.ravel(), ww.ravel()], axis=1)


def glass_shuffle(img: np.ndarray, delta: int, shifts: np.ndarray) -> np.ndarray:
    """The original's pixel "swap" loop for one iteration; shifts (N, P, 2) are its (dx, dy).

    `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on NumPy views copies x[h', w'] into x[h, w] and
    leaves x[h', w'] as it was, so each visited pixel takes the value its neighbour has at
    that moment. With delta 1 (32x32) every neighbour is above or left, not yet visited, so
    one gather does the whole pass; larger deltas follow the visiting order exactly.
    """
    n, size = img.shape[:2]
    pos = glass_offsets(size, delta)
    hs = pos[:, 0][None, :] + shifts[..., 1]
    ws = pos[:, 1][None, :] + shifts[..., 0]
    if delta == 1:  # one gather: every pixel's source, itself where not visited
        base = (np.arange(n) * size * size)[:, None]
        source = base + np.arange(size * size)[None, :]
        source[:, pos[:, 0] * size + pos[:, 1]] = base + hs * size + ws
        return np.take(img.reshape(-1, img.shape[3]), source, axis=0).reshape(img.shape)
    out = img.copy()
    rows = np.arange(n)
    for p in range(len(pos)):
        out[rows, pos[p, 0], pos[p, 1]] = out[rows, hs[:, p], ws[:, p]]
    return out


@corruption("glass_blur", params=((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2),
                                  (0.4, 1, 2)), main=True)
def glass_blur(x, c, rng):
    """(sigma, max delta, iterations): blur, shuffle pixels locally `iterations` times, blur."""
    sigma, max_delta, iterations = c
    size = x.shape[1]
    s = size / 32
    delta = max(1, int(round(max_delta * s)))
    positions = len(glass_offsets(size, delta))
    # randint(-delta, delta) per visited pixel and iteration: (dx, dy) in [-delta, delta - 1]
    u = rng.random((len(x), iterations, positions, 2))
    shifts = (np.floor(u * (2 * delta)) - delta).astype(np.int64)
    img = finish(gaussian(x.astype(np.float32), sigma * s))
    for it in range(iterations):
        img = glass_shuffle(img, delta, shifts[:, it])
    return finish(gaussian(img.astype(np.float32), sigma * s))


@corruption("motion_blur", params=((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)), main=True)
def motion_blur(x, c, rng):
    """(radius, sigma) of ImageMagick's motion blur, at an angle drawn per image."""
    s = x.shape[1] / 32
    angles = rng.uniform(-45, 45, len(x))
    return imagemagick_motion_blur(x, c[0] * s, c[1] * s, angles)


@functools.lru_cache(maxsize=16)
def _zoom_blur_operator(size: int, factors: tuple[float, ...]) -> np.ndarray:
    """(size^2, size^2) float32 map: image + sum of clipped zooms, over the (y, x) pixels."""
    op = np.eye(size * size)
    for z in factors:
        m = clipped_zoom_matrix(size, z)
        op += np.kron(m, m)
    op = np.ascontiguousarray(op.T, dtype=np.float32)
    op.setflags(write=False)
    return op


@corruption("zoom_blur", params=tuple(_zoom_factors(stop)
                                     for stop in (1.06, 1.11, 1.16, 1.21, 1.26)), main=True)
def zoom_blur(x, c, rng):
    """The mean of the image and its central zooms by each factor of c."""
    n, size = x.shape[:2]
    xf = x.astype(np.float32)
    if size <= 40:
        flat = np.ascontiguousarray(xf.transpose(0, 3, 1, 2)).reshape(n * 3, size * size)
        total = rows_matmul(flat, _zoom_blur_operator(size, c)).reshape(n, 3, size, size)
        total = total.transpose(0, 2, 3, 1)
    else:
        total = xf.copy()
        for z in c:
            total += apply_separable(clipped_zoom_matrix(size, z), xf)
    return finish(total / np.float32(len(c) + 1))


@corruption("gaussian_blur", params=(0.4, 0.6, 0.7, 0.8, 1))
def gaussian_blur(x, c, rng):
    """A gaussian of sigma c."""
    s = x.shape[1] / 32
    return finish(gaussian(x.astype(np.float32), c * s))
