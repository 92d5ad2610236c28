"""Weather: snow, frost, fog and brightness, and the extra spatter.

At other sizes than 32 (s = size/32): snow's flake zoom and its motion-blur radius and sigma,
frost's texture scale, spatter's blob blur (and its noise amplitude, so blobs keep their density),
its mud blur and its Canny distance cap scale by s. Fog draws its plasma fractal at the next power
of two >= size, as ImageNet-C does.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.corruptions.filters import finish, gaussian
from cifarlab.evaluation.corruptions.hsv import VALUE, hsv_adjust
from cifarlab.evaluation.corruptions.motion import imagemagick_motion_blur
from cifarlab.evaluation.corruptions.registry import corruption
from cifarlab.evaluation.corruptions.resample import apply_separable, zoom_matrix

FROST_DIR = Path(__file__).resolve().parent / "frost"
# The original picks one of its first five frost files; its frost3.png equals frost2.png.
_FROST_FILES = ("frost1.png", "frost2.png", "frost2.png", "frost4.png", "frost5.png")
_SPATTER_KERNEL = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)


def _gray(xf: np.ndarray) -> np.ndarray:
    """cv2.COLOR_RGB2GRAY on float: 0.299 R + 0.587 G + 0.114 B, keeping a channel axis."""
    return (xf[..., 0:1] * np.float32(0.299) + xf[..., 1:2] * np.float32(0.587)
            + xf[..., 2:3] * np.float32(0.114))


@corruption("snow", main=True, params=(
    (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
    (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
    (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
    (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
    (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
))
def snow(x, c, rng):
    """(mean, std, zoom, threshold, radius, sigma, keep): motion-blurred flakes on a paled image."""
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
    m = zoom_matrix(crop, 0, crop, zoom_s, size)
    layer = apply_separable(m, layers.astype(np.float32))
    layer[layer < threshold] = 0
    layer8 = (np.clip(layer, 0, 1) * 255).astype(np.uint8)
    flakes = imagemagick_motion_blur(layer8, radius * s, sigma * s,
                                     angles).astype(np.float32)[..., None] / 255
    xf = x.astype(np.float32) / 255
    xf = keep * xf + (1 - keep) * np.maximum(xf, _gray(xf) * 1.5 + 0.5)
    return finish((xf + flakes + flakes[:, ::-1, ::-1]) * 255)


@functools.lru_cache(maxsize=8)
def frost_textures(size: int) -> tuple[np.ndarray, ...]:
    """The five frost photos (RGB) the original picks from, scaled by size/32."""
    textures = []
    for name in _FROST_FILES:
        bgr = cv2.imread(str(FROST_DIR / name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CifarlabError(f"{FROST_DIR / name}: frost texture missing; reinstall cifarlab")
        if size != 32:
            k = size / 32
            bgr = cv2.resize(bgr, (0, 0), fx=k, fy=k,
                             interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        rgb.setflags(write=False)
        textures.append(rgb)
    return tuple(textures)


@corruption("frost", params=((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
            main=True)
def frost(x, c, rng):
    """image * c[0] + a random crop of a frost photo * c[1]."""
    n, size = x.shape[:2]
    textures = frost_textures(size)
    layer = np.empty(x.shape, np.uint8)
    for i in range(n):
        tex = textures[int(rng.integers(5))]
        top = int(rng.integers(0, tex.shape[0] - size))
        left = int(rng.integers(0, tex.shape[1] - size))
        layer[i] = tex[top:top + size, left:left + size]
    return finish(np.float32(c[0]) * x + np.float32(c[1]) * layer)


def plasma_draws(mapsize: int) -> int:
    """How many uniform draws one plasma fractal of mapsize x mapsize takes."""
    total, step = 0, mapsize
    while step >= 2:
        total += 3 * (mapsize // step) ** 2
        step //= 2
    return total


def plasma_fractal(u: np.ndarray, mapsize: int, decay: float) -> np.ndarray:
    """Diamond-square height maps in [0, 1] for a batch (the original's plasma_fractal);
    u (N, plasma_draws(mapsize)) are the uniform draws in the original's order."""
    maps = np.zeros((len(u), mapsize, mapsize))
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


@corruption("fog", params=((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)), main=True)
def fog(x, c, rng):
    """(strength, wibble decay) of a plasma fractal added to the image."""
    strength, decay = c
    n, size = x.shape[:2]
    mapsize = 1 << max(0, int(np.ceil(np.log2(size))))
    u = rng.random((n, plasma_draws(mapsize)))
    layer = plasma_fractal(u, mapsize, decay)[:, :size, :size, None].astype(np.float32)
    xf = x.astype(np.float32) / 255
    max_val = xf.max(axis=(1, 2, 3), keepdims=True)
    y = (xf + np.float32(strength) * layer) * max_val / (max_val + np.float32(strength))
    return finish(y * 255)


@corruption("brightness", params=(0.05, 0.1, 0.15, 0.2, 0.3), main=True)
def brightness(x, c, rng):
    """c added to the HSV value."""
    return hsv_adjust(x, VALUE, 1, c)


def _water_drops(xf: np.ndarray, layer: np.ndarray, strength: float, s: float) -> np.ndarray:
    n, size = layer.shape[:2]
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
    color = np.float32([175, 238, 238]) / 255  # pale turquoise
    return finish((xf + m[..., None] * color) * 255)


def _mud(xf: np.ndarray, layer: np.ndarray, threshold: float, strength: float,
         s: float) -> np.ndarray:
    wet = (layer > threshold).astype(np.float32)
    m = gaussian(wet, strength * s)
    m[m < 0.8] = 0
    m = m[..., None]
    color = np.float32([63, 42, 20]) / 255
    return finish((xf * (1 - m) + color * m) * 255)


@corruption("spatter", params=(
    (0.62, 0.1, 0.7, 0.7, 0.5, 0),
    (0.65, 0.1, 0.8, 0.7, 0.5, 0),
    (0.65, 0.3, 1, 0.69, 0.5, 0),
    (0.65, 0.1, 0.7, 0.69, 0.6, 1),
    (0.65, 0.1, 0.5, 0.68, 0.6, 1),
))
def spatter(x, c, rng):
    """(mean, std, blur, threshold, strength, mud): water drops (mud 0) or mud (mud 1)."""
    mean, std, blur, threshold, strength, mud = c
    n, size = x.shape[:2]
    s = size / 32
    # Noise amplitude scales with the blur so the blurred field keeps its spread at any size.
    layer = rng.normal(mean, std * s, (n, size, size))
    layer = gaussian(layer.astype(np.float32), blur * s)
    layer[layer < threshold] = 0
    xf = x.astype(np.float32) / 255
    if mud == 0:
        return _water_drops(xf, layer, strength, s)
    return _mud(xf, layer, threshold, strength, s)
