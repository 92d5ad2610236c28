"""CIFAR-10-C corruptions (Hendrycks & Dietterich, ICLR 2019) on batches of uint8 RGB images.

The 15 benchmark corruptions and the 4 extras of `make_cifar_c.py` (hendrycks/robustness,
ImageNet-C/create_c) with its 32x32 severity table, re-implemented on NumPy, OpenCV, SciPy and
Pillow and vectorised over the batch. No Wand/ImageMagick is needed: its motion blur, which is used
by motion_blur and snow, is rebuilt from ImageMagick's definition: a one-sided half-Gaussian line of
2*ceil(radius)+1 taps, edge pixels repeated, 16-bit rounding then 8-bit truncation (it agrees
with ImageMagick 6.9 Q16 `convert -motion-blur` in all but ~2 values in 100,000). Frost uses
the original frost photos (shipped in cifarlab/data/frost, downscaled x0.2 as the original does).

`corrupt(images, name, severity, seed)` is deterministic. Its one random generator is seeded from
(seed, name, severity), and each image's random draws come from it in image order, so the first k
images of a batch come out the same as a batch of just those k.

Other image sizes than 32: with s = size/32, the parameters that are lengths in pixels scale by s:
defocus_blur disk radius and alias blur, gaussian_blur and glass_blur sigmas, glass_blur max
delta (round(s), at least 1), motion_blur radius and sigma, snow flake zoom and its motion-blur
radius and sigma, frost texture scale, spatter blob blur (and its noise amplitude, so blobs keep
their density) and mud blur, and the Canny distance cap. elastic_transform's table is a fraction
of the size already. Fog draws its plasma fractal at the next power of two >= size, as ImageNet-C
does. Pixelate's shrink factor, zoom_blur's zoom factors and the noise, colour and JPEG settings
need no scaling.

Agreement with make_cifar_c.py (tests/test_corruptions.py runs transcriptions of it on the same
random draws): brightness, saturate, pixelate and glass blur's pixel shuffle match bit for
bit; the rest match to within one grey level in a few % of values. The original truncates
float64 results to uint8, so where the exact value is a whole number its last bit decides, and
the float32 used here can land on the other side. The random numbers come from NumPy's Generator,
not the legacy global RandomState, so the noise differs from the official files while its
distribution is the same. The original's quirks are kept on purpose: glass blur's "swap" of
NumPy views is really a copy; zoom_blur uses np.arange's float factors (7, 12, 16, 21, 26 of
them); frost picks from the first five textures only; spatter's cast to uint8 wraps values
above 1.0.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from cifarlab.errors import CifarlabError

CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def _zoom_factors(stop: float) -> tuple[float, ...]:
    # The original's np.arange(1, stop, 0.01), float steps and all: 1.06 and 1.11 come out
    # inclusive (7 and 12 factors), 1.16, 1.21, 1.26 exclusive (16, 21, 26), and values such as
    # 1.2500000000000002 change scipy's rounded zoom sizes, so they are kept as they are.
    return tuple(float(v) for v in np.arange(1, stop, 0.01))


# corruption -> parameters for severity 1..5: the 32x32 table of make_cifar_c.py.
PARAMETERS: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # sigma on [0, 1]
    "shot_noise": (500, 250, 100, 75, 50),  # poisson(x * lam) / lam
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),  # salt & pepper amount
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),  # radius, alias
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),  # radius, sigma
    "zoom_blur": tuple(_zoom_factors(stop) for stop in (1.06, 1.11, 1.16, 1.21, 1.26)),
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),  # image, frost weight
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),  # strength, wibble decay
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to HSV value
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # scale about the per-image, per-channel mean
    # (alpha, sigma, affine), each times the image size
    "elastic_transform": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                          (0.1, 0.03, 0.03)),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),  # box shrink factor
    "jpeg_compression": (80, 65, 58, 50, 40),  # quality
    "speckle_noise": (0.06, 0.10, 0.12, 0.16, 0.20),  # x + x * N(0, sigma)
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1),  # sigma
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),  # HSV saturation *a + b
}

CHUNK = 1024  # images processed at a time (bounds the float32 temporaries to a few tens of MB)
MIN_SIZE = 8
_GROUPS = {"all": ALL_CORRUPTIONS, "main": CORRUPTIONS, "extra": EXTRA_CORRUPTIONS}
_FROST_DIR = Path(__file__).resolve().parent / "frost"
# The original picks one of its first five frost files; its frost3.png equals frost2.png.
_FROST_FILES = ("frost1.png", "frost2.png", "frost2.png", "frost4.png", "frost5.png")


# ------------------------------------------------------------------------------------------
# Parsing and validation
# ------------------------------------------------------------------------------------------

def _unknown(word: str, choices: Iterable[str], what: str) -> CifarlabError:
    choices = list(choices)
    key = word.strip().lower().replace("-", "_")
    close = [c for c in choices if key and c.startswith(key)] \
        or [c for c in choices if len(key) >= 3 and key in c] \
        or difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return CifarlabError(f"unknown {what} '{word}'{hint} (choose from: {', '.join(choices)})")


def _check_name(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    if key not in PARAMETERS:
        raise _unknown(str(name), ALL_CORRUPTIONS, "corruption")
    return key


def parse_corruptions(text: str) -> list[str]:
    """'all' (19), 'main' (the 15), 'extra' (4) or a comma list of names and groups, in order."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise CifarlabError("no corruption given; pass 'all', 'main' or a comma list such as "
                            "'gaussian_noise,contrast'")
    out: list[str] = []
    for item in items:
        key = item.lower().replace("-", "_")
        if key in _GROUPS:
            names = list(_GROUPS[key])
        elif key in PARAMETERS:
            names = [key]
        else:
            raise _unknown(item, list(_GROUPS) + list(ALL_CORRUPTIONS), "corruption")
        out.extend(n for n in names if n not in out)
    return out


def parse_severities(text: str) -> list[int]:
    """'1-5', '3', '1,3,5' (or a mix, e.g. '1-2,5') -> sorted severities, each in 1..5."""
    found: set[int] = set()
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise CifarlabError("no severity given; pass e.g. '1-5', '3' or '1,3,5'")
    for item in items:
        lo_text, sep, hi_text = item.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if sep else lo
        except ValueError:
            raise CifarlabError(f"bad severity '{item}': use numbers 1-5, e.g. '1-5', '3' or "
                                "'1,3,5'") from None
        if lo > hi:
            raise CifarlabError(f"bad severity range '{item}': write it low-high, e.g. '{hi}-{lo}'")
        if lo < 1 or hi > 5:
            raise CifarlabError(f"severity '{item}' is out of range: severities are 1 to 5")
        found.update(range(lo, hi + 1))
    return sorted(found)


def _check_severity(severity: int) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or not 1 <= int(severity) <= 5:
        raise CifarlabError(f"severity must be an integer from 1 to 5, got {severity!r}")
    return int(severity)


def _check_images(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
        raise CifarlabError(f"corruptions need (N, H, W, 3) uint8 RGB images, got {x.dtype} "
                            f"{tuple(x.shape)}; convert them with np.uint8 and stack them")
    if x.shape[1] != x.shape[2] or x.shape[1] < MIN_SIZE:
        raise CifarlabError(f"corruptions need square images of at least {MIN_SIZE}x{MIN_SIZE} "
                            f"pixels, got {x.shape[1]}x{x.shape[2]}; resize them first")
    return x


def _rng(seed: int | None, name: str, severity: int) -> np.random.Generator:
    base = 0 if seed is None else int(seed) % (1 << 64)
    return np.random.default_rng([base, zlib.crc32(name.encode()), severity])


# ------------------------------------------------------------------------------------------
# Helpers: filtering whole batches with OpenCV, sampling, zoom operators
# ------------------------------------------------------------------------------------------

_NP_PAD = {cv2.BORDER_REFLECT_101: "reflect", cv2.BORDER_REPLICATE: "edge",
           cv2.BORDER_REFLECT: "symmetric"}


def _finish(y: np.ndarray) -> np.ndarray:
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


def _filter(x: np.ndarray, kernel: np.ndarray, border: int) -> np.ndarray:
    """cv2.filter2D (centred, odd kernel) of every image of a float32 batch, per-image borders."""
    kh, kw = kernel.shape
    ay, ax = kh // 2, kw // 2
    tall, dims = _stacked(x, ay, kh - 1 - ay, ax, kw - 1 - ax, border)
    out = cv2.filter2D(tall, -1, kernel.astype(np.float32), borderType=cv2.BORDER_CONSTANT)
    return _unstack(out, dims, ay, ax, x.shape[1], x.shape[2])


def _sep_filter(x: np.ndarray, kx: np.ndarray, ky: np.ndarray, border: int) -> np.ndarray:
    """Separable version of `_filter` (odd, centred 1-D kernels)."""
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


def _gaussian(x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0):
    """skimage.filters.gaussian / scipy gaussian_filter over the two spatial axes of a batch."""
    k = _gauss_kernel(sigma, truncate)
    x = x.astype(np.float32, copy=False)
    if len(k) == 1:
        return x.copy()
    border = {"nearest": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT}[mode]
    return _sep_filter(x, k, k, border)


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


def _motion_blur(x: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    """ImageMagick 6 (Q16) motion blur of a uint8 batch, as Wand gave it to the original: sums
    on 16-bit values (p * 257), rounds to 16 bits, and its 8-bit PNG truncates. Agrees with
    `convert -motion-blur RxS+A` in all but ~2 values in 100,000 (one level off): it sums in
    double, float32 here is 2-3x faster."""
    w, dx, dy = _motion_taps(radius, sigma, angles)
    q16 = _shift_sum(x.astype(np.float32) * np.float32(257), w, dx, dy,
                     np.argsort(angles, kind="stable"))
    return np.clip(np.floor(np.floor(q16 + np.float32(0.5)) / np.float32(257)), 0, 255
                   ).astype(np.uint8)


@functools.lru_cache(maxsize=256)
def _zoom_matrix(in_len: int, top: int, crop: int, zoom: float, size: int) -> np.ndarray:
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


def _clipped_zoom_matrix(size: int, zoom: float) -> np.ndarray:
    crop = int(np.ceil(size / zoom))
    return _zoom_matrix(size, (size - crop) // 2, crop, zoom, size)


def _apply_separable(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """m @ image @ m.T for every image (and channel) of a float32 batch (N, H, W[, C]).

    Stacked per-image products, so an image's result does not depend on the batch size.
    """
    m = m.astype(np.float32)
    n, rest = x.shape[0], x.shape[3:]
    y = np.matmul(m, x.reshape(n, x.shape[1], -1)).reshape(n, m.shape[0], x.shape[2], -1)
    z = np.matmul(m, y.transpose(0, 3, 2, 1))  # (N, C, size, size), rows and columns swapped
    return np.ascontiguousarray(z.transpose(0, 3, 2, 1)).reshape((n, m.shape[0], m.shape[0]) + rest)


def _rows_matmul(a: np.ndarray, b: np.ndarray, block: int = 1536) -> np.ndarray:
    """a @ b in fixed blocks of rows (the last one zero-padded): BLAS sums in an order that can
    depend on the matrix shape, and fixed shapes keep each row's result independent of the
    batch size (a prefix of a batch gets the same bits). 1536 rows (512 images) run at full
    speed; small blocks are several times slower with multithreaded BLAS on a busy machine."""
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


def _bilinear_reflect(img: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
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


# ------------------------------------------------------------------------------------------
# The corruptions: each takes a uint8 batch (N, S, S, 3), its severity's parameters and the
# generator, and returns uint8. Random draws are made in image order.
# ------------------------------------------------------------------------------------------

def _gaussian_noise(x, c, rng):
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    return _finish(x + noise * np.float32(c * 255))


@functools.lru_cache(maxsize=8)
def _poisson_tables(lam: float):
    """Inverse-CDF tables of Poisson(k * lam / 255) for the 256 grey levels k, and guide tables.

    Supports end 12 standard deviations + 24 above the largest mean (tail mass < 1e-30).
    """
    from scipy.special import gammaln

    means = np.arange(256) * (lam / 255)
    length = int(np.ceil(means[-1] + 12 * np.sqrt(means[-1]) + 24))
    j = np.arange(length)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = j[None, :] * np.log(means[:, None]) - means[:, None] - gammaln(j + 1)[None, :]
    pmf = np.exp(logp)
    pmf[0] = 0
    pmf[0, 0] = 1  # mean 0: always 0
    cdf = np.cumsum(pmf, axis=1)
    cdf[:, -1] = 1.0
    bins = length
    steps = np.arange(bins) / bins
    guide = np.stack([np.searchsorted(row, steps, side="right") for row in cdf]).astype(np.int64)
    return cdf.ravel(), guide.ravel(), length, bins


def _poisson_levels(x: np.ndarray, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson(x * lam / 255) for uint8 x, exactly, by inverse CDF with a guide table: one
    uniform per value in order, ~5x faster than Generator.poisson on large means."""
    cdf, guide, length, bins = _poisson_tables(float(lam))
    level = x.reshape(-1).astype(np.intp)
    u = rng.random(level.size)
    counts = np.take(guide, level * bins + (u * bins).astype(np.intp))
    offset = level * length
    active = np.flatnonzero(np.take(cdf, offset + counts) <= u)
    while active.size:
        counts[active] += 1
        active = active[np.take(cdf, offset[active] + counts[active]) <= u[active]]
    return counts.reshape(x.shape)


def _shot_noise(x, c, rng):
    return _finish(_poisson_levels(x, c, rng) * np.float32(255.0 / c))


def _impulse_noise(x, c, rng):
    u = rng.random(x.shape, dtype=np.float32)
    out = x.copy()
    out[u < c / 2] = 0  # pepper and salt, half each (skimage random_noise 's&p', per channel)
    out[(u >= c / 2) & (u < c)] = 255
    return out


def _speckle_noise(x, c, rng):
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    xf = x.astype(np.float32)
    return _finish(xf + xf * noise * np.float32(c))


def _gaussian_blur(x, c, rng):
    s = x.shape[1] / 32
    return _finish(_gaussian(x.astype(np.float32), c * s))


def _glass_offsets(size: int, delta: int) -> np.ndarray:
    """Positions (h, w) the original visits, in its order: h, w from size-delta down to delta+1."""
    r = np.arange(size - delta, delta, -1)
    hh, ww = np.meshgrid(r, r, indexing="ij")
    return np.stack([hh.ravel(), ww.ravel()], axis=1)


def _glass_shuffle(img: np.ndarray, delta: int, shifts: np.ndarray) -> np.ndarray:
    """The original's pixel "swap" loop for one iteration; shifts (N, P, 2) are its (dx, dy).

    `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on NumPy views copies x[h', w'] into x[h, w] and
    leaves x[h', w'] as it was, so each visited pixel takes the value its neighbour has at
    that moment. With delta 1 (32x32) every neighbour is above or left, not yet visited, so
    one gather does the whole pass; larger deltas follow the visiting order exactly.
    """
    n, size = img.shape[:2]
    pos = _glass_offsets(size, delta)
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


def _glass_blur(x, c, rng):
    sigma, max_delta, iterations = c
    size = x.shape[1]
    s = size / 32
    delta = max(1, int(round(max_delta * s)))
    positions = len(_glass_offsets(size, delta))
    # randint(-delta, delta) per visited pixel and iteration: (dx, dy) in [-delta, delta - 1]
    u = rng.random((len(x), iterations, positions, 2))
    shifts = (np.floor(u * (2 * delta)) - delta).astype(np.int64)
    img = _finish(_gaussian(x.astype(np.float32), sigma * s))
    for it in range(iterations):
        img = _glass_shuffle(img, delta, shifts[:, it])
    return _finish(_gaussian(img.astype(np.float32), sigma * s))


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


def _defocus_blur(x, c, rng):
    s = x.shape[1] / 32
    kernel = _disk(c[0] * s, c[1] * s)
    return _finish(_filter(x.astype(np.float32), kernel, cv2.BORDER_REFLECT_101))


def _motion_blur_op(x, c, rng):
    s = x.shape[1] / 32
    angles = rng.uniform(-45, 45, len(x))
    return _motion_blur(x, c[0] * s, c[1] * s, angles)


@functools.lru_cache(maxsize=16)
def _zoom_blur_operator(size: int, factors: tuple[float, ...]) -> np.ndarray:
    """(size^2, size^2) float32 map: image + sum of clipped zooms, over the (y, x) pixels."""
    op = np.eye(size * size)
    for z in factors:
        m = _clipped_zoom_matrix(size, z)
        op += np.kron(m, m)
    op = np.ascontiguousarray(op.T, dtype=np.float32)
    op.setflags(write=False)
    return op


def _zoom_blur(x, c, rng):
    n, size = x.shape[:2]
    xf = x.astype(np.float32)
    if size <= 40:
        flat = np.ascontiguousarray(xf.transpose(0, 3, 1, 2)).reshape(n * 3, size * size)
        total = _rows_matmul(flat, _zoom_blur_operator(size, c)).reshape(n, 3, size, size)
        total = total.transpose(0, 2, 3, 1)
    else:
        total = xf.copy()
        for z in c:
            total += _apply_separable(_clipped_zoom_matrix(size, z), xf)
    return _finish(total / np.float32(len(c) + 1))


def _gray(xf: np.ndarray) -> np.ndarray:
    """cv2.COLOR_RGB2GRAY on float: 0.299 R + 0.587 G + 0.114 B, keeping a channel axis."""
    return (xf[..., 0:1] * np.float32(0.299) + xf[..., 1:2] * np.float32(0.587)
            + xf[..., 2:3] * np.float32(0.114))


def _snow(x, c, rng):
    mean, std, zoom, threshold, radius, sigma, keep = c
    n, size = x.shape[:2]
    s = size / 32
    zoom_s = zoom * s
    # The original draws a size x size layer and zooms its central ceil(size/zoom) square;
    # the same i.i.d. noise is drawn here at that square's size directly (zoom < 1 works too).
    crop = int(np.ceil(size / zoom_s))
    layers = np.empty((n, crop, crop), np.float64)
    angles = np.empty(n)
    for i in range(n):
        layers[i] = rng.normal(mean, std, (crop, crop))
        angles[i] = rng.uniform(-135, -45)
    m = _zoom_matrix(crop, 0, crop, zoom_s, size)
    layer = _apply_separable(m, layers.astype(np.float32))
    layer[layer < threshold] = 0
    layer8 = (np.clip(layer, 0, 1) * 255).astype(np.uint8)
    flakes = _motion_blur(layer8, radius * s, sigma * s, angles).astype(np.float32)[..., None] / 255
    xf = x.astype(np.float32) / 255
    xf = keep * xf + (1 - keep) * np.maximum(xf, _gray(xf) * 1.5 + 0.5)
    return _finish((xf + flakes + flakes[:, ::-1, ::-1]) * 255)


@functools.lru_cache(maxsize=8)
def _frost_textures(size: int) -> tuple[np.ndarray, ...]:
    textures = []
    for name in _FROST_FILES:
        bgr = cv2.imread(str(_FROST_DIR / name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CifarlabError(f"{_FROST_DIR / name}: frost texture missing; reinstall cifarlab")
        if size != 32:
            k = size / 32
            bgr = cv2.resize(bgr, (0, 0), fx=k, fy=k,
                             interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        rgb.setflags(write=False)
        textures.append(rgb)
    return tuple(textures)


def _frost(x, c, rng):
    n, size = x.shape[:2]
    textures = _frost_textures(size)
    frost = np.empty(x.shape, np.uint8)
    for i in range(n):
        tex = textures[int(rng.integers(5))]
        top = int(rng.integers(0, tex.shape[0] - size))
        left = int(rng.integers(0, tex.shape[1] - size))
        frost[i] = tex[top:top + size, left:left + size]
    return _finish(np.float32(c[0]) * x + np.float32(c[1]) * frost)


def _plasma_draws(mapsize: int) -> int:
    total, step = 0, mapsize
    while step >= 2:
        total += 3 * (mapsize // step) ** 2
        step //= 2
    return total


def _plasma_fractal(u: np.ndarray, mapsize: int, decay: float) -> np.ndarray:
    """Diamond-square height maps in [0, 1] for a batch (the original's plasma_fractal);
    u (N, _plasma_draws(mapsize)) are the uniform draws in the original's order."""
    n = len(u)
    maps = np.zeros((n, mapsize, mapsize))
    used = 0
    step, wibble = mapsize, 100.0

    def wibbled(array):
        nonlocal used
        k = array.shape[1] * array.shape[2]
        draws = u[:, used:used + k].reshape(array.shape)
        used += k
        return array / 4 + wibble * (-wibble + 2 * wibble * draws)

    while step >= 2:
        half = step // 2
        corner = maps[:, 0:mapsize:step, 0:mapsize:step]
        square = corner + np.roll(corner, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        maps[:, half:mapsize:step, half:mapsize:step] = wibbled(square)
        dr = maps[:, half:mapsize:step, half:mapsize:step]
        ul = maps[:, 0:mapsize:step, 0:mapsize:step]
        lt = dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=2)
        maps[:, 0:mapsize:step, half:mapsize:step] = wibbled(lt)
        tt = dr + np.roll(dr, 1, axis=2) + ul + np.roll(ul, -1, axis=1)
        maps[:, half:mapsize:step, 0:mapsize:step] = wibbled(tt)
        step //= 2
        wibble /= decay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def _fog(x, c, rng):
    strength, decay = c
    n, size = x.shape[:2]
    mapsize = 1 << max(0, int(np.ceil(np.log2(size))))
    u = rng.random((n, _plasma_draws(mapsize)))
    fog = _plasma_fractal(u, mapsize, decay)[:, :size, :size, None].astype(np.float32)
    xf = x.astype(np.float32) / 255
    max_val = xf.max(axis=(1, 2, 3), keepdims=True)
    y = (xf + np.float32(strength) * fog) * max_val / (max_val + np.float32(strength))
    return _finish(y * 255)


# hsv2rgb's sectors 0..5 -> (r, g, b) taken from (v, p, q, t):
# (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
_HSV_PICK = np.array([[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]], np.intp)


def _hsv_adjust(x: np.ndarray, channel: int, a: float, b: float) -> np.ndarray:
    """The original's rgb2hsv -> channel * a + b (clipped to [0, 1]) -> hsv2rgb -> uint8.

    skimage's float64 arithmetic, operation for operation, so the truncation to uint8 agrees
    bit for bit (a closed form in float32 differs by one grey level in up to 10% of values,
    wherever the exact result is a whole number); np.where and one gather stand in for its
    masks and np.choose, which are 6x slower.
    """
    r, g, bl = (x[..., i] / 255.0 for i in range(3))  # contiguous planes: much faster
    v = np.maximum(np.maximum(r, g), bl)
    delta = v - np.minimum(np.minimum(r, g), bl)
    flat = delta == 0.0
    safe = np.where(flat, 1.0, delta)
    s = np.where(flat, 0.0, delta / np.where(v == 0, 1.0, v))
    h = np.where(bl == v, 4.0 + (r - g) / safe,
                 np.where(g == v, 2.0 + (bl - r) / safe, (g - bl) / safe))
    h = h / 6.0  # in [-1/6, 5/6]: "% 1.0" is fmod (exact here) then + 1.0 for negatives
    h = np.where(flat, 0.0, np.where(h < 0, h + 1.0, h))
    if channel == 1:
        s = np.clip(s * a + b, 0, 1)
    else:
        v = np.clip(v * a + b, 0, 1)
    hi = np.floor(h * 6)
    f = h * 6 - hi
    sector = hi.astype(np.uint8) % 6
    cand = np.concatenate([v.ravel(), (v * (1 - s)).ravel(), (v * (1 - f * s)).ravel(),
                           (v * (1 - (1 - f) * s)).ravel()])  # v, p, q, t
    size = v.size
    pick = _HSV_PICK[sector.ravel()] * size + np.arange(size)[:, None]
    out = np.take(cand, pick).reshape(x.shape)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def _brightness(x, c, rng):
    return _hsv_adjust(x, 2, 1, c)


def _saturate(x, c, rng):
    return _hsv_adjust(x, 1, c[0], c[1])


def _contrast(x, c, rng):
    xf = x.astype(np.float32)
    means = xf.mean(axis=(1, 2), keepdims=True)
    return _finish((xf - means) * np.float32(c) + means)


def _elastic_transform(x, c, rng):
    n, size = x.shape[:2]
    alpha, sigma, affine = (v * size for v in c)
    u = rng.random((n, 6 + 2 * size * size))
    center = np.float32((size, size)) // 2
    square = size // 3
    pts1 = np.float32([center + square, [center[0] + square, center[1] - square],
                       center - square])
    pts2 = pts1[None] + (-affine + 2 * affine * u[:, :6].reshape(n, 3, 2)).astype(np.float32)
    xf = x.astype(np.float32)
    warped = np.empty_like(xf)
    for i in range(n):
        m = cv2.getAffineTransform(pts1, pts2[i])
        warped[i] = cv2.warpAffine(xf[i], m, (size, size), borderMode=cv2.BORDER_REFLECT_101)
    if alpha == 0:  # no displacement: sampling at the pixel centres returns the warped image
        return _finish(warped)
    fields = (u[:, 6:] * 2 - 1).reshape(n * 2, size, size)
    fields = (_gaussian(fields, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dx, dy = fields[0::2], fields[1::2]
    grid = np.arange(size, dtype=np.float32)
    yy = grid[None, :, None] + dy
    xx = grid[None, None, :] + dx
    return _finish(_bilinear_reflect(warped, yy, xx))


def _pil_resize_axis(images: np.ndarray, new: int, axis: int) -> np.ndarray:
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


def _pixelate(x, c, rng):
    size = x.shape[1]
    small = max(1, int(size * c))
    y = _pil_resize_axis(_pil_resize_axis(x, small, 2), small, 1)
    return np.ascontiguousarray(_pil_resize_axis(_pil_resize_axis(y, size, 2), size, 1))


def _jpeg_compression(x, c, rng):
    # cv2 and Pillow both wrap libjpeg-turbo with the same defaults (4:2:0, islow DCT, fancy
    # upsampling): identical bytes out, at a fifth of Pillow's per-image cost.
    out = np.empty_like(x)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(c)]
    for i, img in enumerate(x):
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], params)
        if not ok:
            raise CifarlabError("JPEG encoding failed; check that OpenCV has JPEG support")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return out


_SPATTER_KERNEL = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)


def _spatter(x, c, rng):
    mean, std, blur, threshold, strength, mud = c
    n, size = x.shape[:2]
    s = size / 32
    # Noise amplitude scales with the blur so the blurred field keeps its spread at any size.
    layer = rng.normal(mean, std * s, (n, size, size))
    layer = _gaussian(layer.astype(np.float32), blur * s)
    layer[layer < threshold] = 0
    xf = x.astype(np.float32) / 255
    if mud == 0:  # water drops, pale turquoise
        # As the original's float -> uint8 cast: values past 1.0 (dense drops, mostly severity 3)
        # wrap around (257 -> 1) instead of saturating; done through int64 to be well defined.
        liquid = (layer * 255).astype(np.int64).astype(np.uint8)
        m = np.empty((n, size, size), np.float32)
        cap = 20 * s
        for i in range(n):
            dist = 255 - cv2.Canny(liquid[i], 50, 150)
            dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
            _, dist = cv2.threshold(dist, cap, cap, cv2.THRESH_TRUNC)
            dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
            dist = cv2.equalizeHist(dist)
            dist = cv2.filter2D(dist, cv2.CV_8U, _SPATTER_KERNEL)
            dist = cv2.blur(dist, (3, 3)).astype(np.float32)
            m[i] = liquid[i] * dist
        peak = m.max(axis=(1, 2), keepdims=True)
        # The original divides by zero (NaN) when nothing is wet; no spatter is drawn here.
        m = np.where(peak > 0, m / np.where(peak > 0, peak, 1), 0) * np.float32(strength)
        color = np.float32([175, 238, 238]) / 255
        return _finish((xf + m[..., None] * color) * 255)
    wet = (layer > threshold).astype(np.float32)
    m = _gaussian(wet, strength * s)
    m[m < 0.8] = 0
    m = m[..., None]
    color = np.float32([63, 42, 20]) / 255
    return _finish((xf * (1 - m) + color * m) * 255)


_OPS = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur_op,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
    "speckle_noise": _speckle_noise,
    "gaussian_blur": _gaussian_blur,
    "spatter": _spatter,
    "saturate": _saturate,
}


# ------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------

def corrupt(images: np.ndarray, name: str, severity: int, seed: int | None = None) -> np.ndarray:
    """Corrupt a batch of (N, H, W, 3) uint8 RGB square images; returns a new uint8 batch.

    Deterministic: the generator is seeded from (seed, name, severity) (seed None means 0), and
    each image's draws come from it in order, so a prefix of a batch gets the same result.
    """
    key = _check_name(name)
    severity = _check_severity(severity)
    x = _check_images(images)
    out = np.empty(x.shape, np.uint8)  # a plain array even for a memory-mapped input
    if len(x) == 0:
        return out
    rng = _rng(seed, key, severity)
    params = PARAMETERS[key][severity - 1]
    op = _OPS[key]
    for start in range(0, len(x), CHUNK):
        out[start:start + CHUNK] = op(np.ascontiguousarray(x[start:start + CHUNK]), params, rng)
    return out


def iter_corrupted(images: np.ndarray, labels: np.ndarray, names: Iterable[str],
                   severities: Iterable[int], seed: int = 0
                   ) -> Iterator[tuple[str, int, np.ndarray]]:
    """Yield (name, severity, corrupted images) for every name and severity; the labels stay
    those given (checked to match the images in number)."""
    names = [_check_name(n) for n in names]
    severities = [_check_severity(s) for s in severities]
    if len(labels) != len(images):
        raise CifarlabError(f"{len(images)} images but {len(labels)} labels; pass one label "
                            "per image")
    for name in names:
        for severity in severities:
            yield name, severity, corrupt(images, name, severity, seed)


_OFFICIAL_HINT = ("expected the extracted CIFAR-10-C.tar (Zenodo record 2535967): "
                  "<corruption>.npy files of (N*5, 32, 32, 3) uint8 and labels.npy")


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CifarlabError(f"{path.parent}: has no {path.name}; {_OFFICIAL_HINT}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CifarlabError(f"{path}: not a readable .npy array ({reason}); re-extract it from "
                            "CIFAR-10-C.tar") from None


def load_official(folder: Path, names: Iterable[str] | None = None
                  ) -> tuple[dict[tuple[str, int], np.ndarray], np.ndarray]:
    """Read the official CIFAR-10-C arrays: ({(name, severity): images}, labels).

    Each <name>.npy holds severity 1's images first, then 2..5; the arrays are memory-mapped
    (slices of the files, read when used). labels.npy may hold one label per image (N) or the
    five repeated copies the official file has (5N); the N labels are returned as int64.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CifarlabError(f"{folder}: no such folder; {_OFFICIAL_HINT}")
    names = list(ALL_CORRUPTIONS) if names is None else [_check_name(n) for n in names]
    if not names:
        raise CifarlabError("no corruption to load; name at least one")
    labels = _load_npy(folder / "labels.npy")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise CifarlabError(f"{folder / 'labels.npy'}: expected a 1-D integer array, got "
                            f"{labels.dtype} {tuple(labels.shape)}; {_OFFICIAL_HINT}")
    out: dict[tuple[str, int], np.ndarray] = {}
    count = None
    for name in names:
        path = folder / f"{name}.npy"
        arr = _load_npy(path)
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[3] != 3 \
                or arr.shape[1] != arr.shape[2]:
            raise CifarlabError(f"{path}: expected (N*5, H, H, 3) uint8 images, got {arr.dtype} "
                                f"{tuple(arr.shape)}; {_OFFICIAL_HINT}")
        if arr.shape[0] == 0 or arr.shape[0] % 5:
            raise CifarlabError(f"{path}: {arr.shape[0]} images is not 5 severities of equal "
                                f"size; {_OFFICIAL_HINT}")
        n = arr.shape[0] // 5
        if count is not None and n != count:
            raise CifarlabError(f"{path}: {n} images per severity, but the other files have "
                                f"{count}; re-extract CIFAR-10-C.tar")
        count = n
        for severity in SEVERITIES:
            out[(name, severity)] = arr[(severity - 1) * n:severity * n]
    if len(labels) == 5 * count:
        blocks = np.asarray(labels).reshape(5, count)
        if not (blocks == blocks[0]).all():
            raise CifarlabError(f"{folder / 'labels.npy'}: its 5 severity blocks differ; "
                                "re-extract CIFAR-10-C.tar")
        labels = blocks[0]
    elif len(labels) != count:
        raise CifarlabError(f"{folder / 'labels.npy'}: {len(labels)} labels for {count} images "
                            f"per severity (need {count} or {5 * count}); {_OFFICIAL_HINT}")
    return out, np.asarray(labels, dtype=np.int64)
