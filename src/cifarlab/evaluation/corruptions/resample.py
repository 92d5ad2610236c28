"""Resampling whole batches as their originals do: scipy's zoom (as matrices), scipy's bilinear
map_coordinates, PIL's box resize."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image


@functools.lru_cache(maxsize=256)
def zoom_matrix(in_len: int, top: int, crop: int, zoom: float, size: int) -> np.ndarray:
    """(size, in_len) linear map along one axis of clipped_zoom: scipy.ndimage.zoom(order=1) of
    input[top:top+crop] by `zoom`, output trimmed centrally to `size`."""
    out_len = int(round(crop * zoom))
    trim = (out_len - size) // 2
    m = np.zeros((size, in_len), np.float64)
    scale = (crop - 1) / (out_len - 1) if out_len > 1 else 0.0
    for j in range(size):
        c = (j + trim) * scale
        i0 = int(np.floor(c))
        f = c - i0
        if i0 >= crop - 1:
            i0, f = crop - 1, 0.0
        m[j, top + i0] += 1 - f
        if f > 0:
            m[j, top + i0 + 1] += f
    m.setflags(write=False)
    return m


def clipped_zoom_matrix(size: int, zoom: float) -> np.ndarray:
    crop = int(np.ceil(size / zoom))
    return zoom_matrix(size, (size - crop) // 2, crop, zoom, size)


def apply_separable(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """m @ image @ m.T for every image (and channel) of a float32 batch (N, H, W[, C]).

    Stacked per-image products, so an image's result does not depend on the batch size.
    """
    m = m.astype(np.float32)
    n, rest = x.shape[0], x.shape[3:]
    y = np.matmul(m, x.reshape(n, x.shape[1], -1)).reshape(n, m.shape[0], x.shape[2], -1)
    z = np.matmul(m, y.transpose(0, 3, 2, 1))  # (N, C, size, size), rows and columns swapped
    return np.ascontiguousarray(z.transpose(0, 3, 2, 1)).reshape((n, m.shape[0], m.shape[0]) + rest)


def rows_matmul(a: np.ndarray, b: np.ndarray, block: int = 1536) -> np.ndarray:
    """a @ b in fixed blocks of rows (the last one zero-padded): BLAS sums in an order that can
    depend on the matrix shape, and fixed shapes keep each row's result independent of the
    batch size (a prefix of a batch gets the same bits). Blocks of 1536 rows (512 images) keep
    BLAS at full speed; small blocks are much slower with multithreaded BLAS on a busy machine."""
    out = np.empty((a.shape[0], b.shape[1]), np.float32)
    for lo in range(0, a.shape[0], block):
        part = a[lo:lo + block]
        if len(part) < block:
            part = np.concatenate([part, np.zeros((block - len(part), a.shape[1]), a.dtype)])
        out[lo:lo + block] = (part @ b)[:min(block, a.shape[0] - lo)]
    return out


def _reflect_index(i: np.ndarray, n: int) -> np.ndarray:
    i = np.mod(i, 2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


def bilinear_reflect(img: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """scipy map_coordinates(order=1, mode='reflect') at (yy, xx) per image, all channels."""
    n, h, w, c = img.shape
    planar = np.ascontiguousarray(np.moveaxis(img, 3, 0)).reshape(c, -1)
    y0f, x0f = np.floor(yy), np.floor(xx)
    fy, fx = yy - y0f, xx - x0f
    y0, x0 = y0f.astype(np.int64), x0f.astype(np.int64)
    ylo, xlo = int(y0.min()), int(x0.min())
    ytab = _reflect_index(np.arange(ylo, int(y0.max()) + 2), h)
    xtab = _reflect_index(np.arange(xlo, int(x0.max()) + 2), w)
    y0 -= ylo
    x0 -= xlo
    base = (np.arange(n) * h)[:, None, None]
    ra = (base + np.take(ytab, y0)) * w
    rb = (base + np.take(ytab, y0 + 1)) * w
    xa, xb = np.take(xtab, x0), np.take(xtab, x0 + 1)

    def at(index):
        return np.take(planar, index, axis=1)  # (c, n, h, w)

    top = at(ra + xa) * (1 - fx) + at(ra + xb) * fx
    bottom = at(rb + xa) * (1 - fx) + at(rb + xb) * fx
    return np.moveaxis(top * (1 - fy) + bottom * fy, 0, 3)


def pil_box_resize_axis(images: np.ndarray, new: int, axis: int) -> np.ndarray:
    """PIL BOX resize of every image of (N, H, W, 3) uint8 along one axis (1 rows, 2 columns).

    PIL resamples columns then rows, each pass to 8 bits; stacking the images so that only one
    direction changes reproduces each pass of a per-image PIL resize exactly.
    """
    n, h, w, _ = images.shape
    if axis == 2:  # horizontal pass: images stacked vertically
        tall = np.ascontiguousarray(images).reshape(n * h, w, 3)
        out = np.asarray(Image.fromarray(tall).resize((new, n * h), Image.Resampling.BOX))
        return out.reshape(n, h, new, 3)
    wide = np.ascontiguousarray(images.transpose(1, 0, 2, 3)).reshape(h, n * w, 3)
    out = np.asarray(Image.fromarray(wide).resize((n * w, new), Image.Resampling.BOX))
    return out.reshape(new, n, w, 3).transpose(1, 0, 2, 3)
