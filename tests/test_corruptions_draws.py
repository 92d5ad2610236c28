"""The corruptions with random draws agree with make_cifar_c.py's operations fed the same draws:
spatter, frost, fog (its plasma fractal), elastic transform; and the frost photos ship."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.corruption_refs import PUBLISHED, assert_close_uint8

from cifarlab.evaluation.corruptions import corrupt
from cifarlab.evaluation.corruptions.apply import seeded_rng
from cifarlab.evaluation.corruptions.resample import bilinear_reflect
from cifarlab.evaluation.corruptions.weather import (
    FROST_DIR,
    frost_textures,
    plasma_draws,
    plasma_fractal,
)



def orig_spatter(img: np.ndarray, c: tuple, liquid_layer: np.ndarray) -> np.ndarray:
    """make_cifar_c.py's spatter, with the normal draw passed in."""
    from skimage.filters import gaussian

    x = np.array(img, dtype=np.float32) / 255.
    liquid_layer = gaussian(liquid_layer, sigma=c[2])
    liquid_layer[liquid_layer < c[3]] = 0
    if c[5] == 0:
        liquid_layer = (liquid_layer * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid_layer, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)
        dist = cv2.filter2D(dist, cv2.CV_8U, ker)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = cv2.cvtColor(liquid_layer * dist, cv2.COLOR_GRAY2BGRA)
        m /= np.max(m, axis=(0, 1))
        m *= c[4]
        color = np.concatenate((175 / 255. * np.ones_like(m[..., :1]),
                                238 / 255. * np.ones_like(m[..., :1]),
                                238 / 255. * np.ones_like(m[..., :1])), axis=2)
        color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
        x = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
        return np.uint8(cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255)
    m = np.where(liquid_layer > c[3], 1, 0)
    m = gaussian(m.astype(np.float32), sigma=c[4])
    m[m < 0.8] = 0
    color = np.concatenate((63 / 255. * np.ones_like(x[..., :1]),
                            42 / 255. * np.ones_like(x[..., :1]),
                            20 / 255. * np.ones_like(x[..., :1])), axis=2)
    color *= m[..., np.newaxis]
    x *= (1 - m[..., np.newaxis])
    return np.uint8(np.clip(x + color, 0, 1) * 255)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_spatter_matches_the_original_with_the_same_draws(images, severity):
    c = PUBLISHED["spatter"][severity - 1]
    rng = seeded_rng(0, "spatter", severity)
    ref = np.stack([orig_spatter(img, c, rng.normal(size=(32, 32), loc=c[0], scale=c[1]))
                    for img in images])
    assert_close_uint8(corrupt(images, "spatter", severity), ref, 1, 0.95)


def test_frost_and_fog_match_the_original_with_the_same_draws(images):
    textures = frost_textures(32)
    for severity in (1, 5):
        a, b = PUBLISHED["frost"][severity - 1]
        rng = seeded_rng(0, "frost", severity)
        ref = []
        for img in images:
            tex = textures[int(rng.integers(5))]
            top, left = rng.integers(0, tex.shape[0] - 32), rng.integers(0, tex.shape[1] - 32)
            ref.append(np.uint8(np.clip(a * np.array(img) + b * tex[top:top + 32, left:left + 32],
                                        0, 255)))
        assert_close_uint8(corrupt(images, "frost", severity), np.stack(ref))

        strength, decay = PUBLISHED["fog"][severity - 1]
        u = seeded_rng(0, "fog", severity).random((len(images), plasma_draws(32)))
        ref = []
        for img, row in zip(images, u):
            used = 0

            def uniform(low, high, shape, row=row):
                nonlocal used
                k = int(np.prod(shape))
                draws = row[used:used + k].reshape(shape)
                used += k
                return low + (high - low) * draws

            x = np.array(img) / 255.
            max_val = x.max()
            x += strength * orig_plasma(32, decay, uniform)[:32, :32][..., np.newaxis]
            ref.append(np.uint8(np.clip(x * max_val / (max_val + strength), 0, 1) * 255))
        assert_close_uint8(corrupt(images, "fog", severity), np.stack(ref))


def test_bilinear_matches_scipy_map_coordinates():
    from scipy.ndimage import map_coordinates

    rng = np.random.default_rng(3)
    img = rng.random((3, 10, 10, 3)).astype(np.float32)
    yy = rng.uniform(-4, 14, (3, 10, 10)).astype(np.float32)
    xx = rng.uniform(-4, 14, (3, 10, 10)).astype(np.float32)
    ours = bilinear_reflect(img, yy, xx)
    for n in range(3):
        for ch in range(3):
            ref = map_coordinates(img[n, :, :, ch], [yy[n], xx[n]], order=1, mode="reflect")
            assert np.allclose(ours[n, :, :, ch], ref, atol=1e-5)


def test_elastic_transform_matches_the_original(images):
    from scipy.ndimage import map_coordinates
    from skimage.filters import gaussian

    x = images[:4]
    for severity in (1, 2, 5):
        alpha, sigma, affine = (v * 32 for v in PUBLISHED["elastic_transform"][severity - 1])
        u = seeded_rng(7, "elastic_transform", severity).random((4, 6 + 2 * 32 * 32))
        ref = []
        for i in range(4):
            image = np.array(x[i], dtype=np.float32) / 255.
            center, square = np.float32((32, 32)) // 2, 32 // 3
            pts1 = np.float32([center + square, [center[0] + square, center[1] - square],
                               center - square])
            pts2 = pts1 + (-affine + 2 * affine * u[i, :6].reshape(3, 2)).astype(np.float32)
            image = cv2.warpAffine(image, cv2.getAffineTransform(pts1, pts2), (32, 32),
                                   borderMode=cv2.BORDER_REFLECT_101)
            fields = u[i, 6:] * 2 - 1
            dx = (gaussian(fields[:1024].reshape(32, 32), sigma, mode="reflect", truncate=3)
                  * alpha).astype(np.float32)[..., None]
            dy = (gaussian(fields[1024:].reshape(32, 32), sigma, mode="reflect", truncate=3)
                  * alpha).astype(np.float32)[..., None]
            xg, yg, zg = np.meshgrid(np.arange(32), np.arange(32), np.arange(3))
            idx = (np.reshape(yg + dy, (-1, 1)), np.reshape(xg + dx, (-1, 1)),
                   np.reshape(zg, (-1, 1)))
            out = map_coordinates(image, idx, order=1, mode="reflect").reshape(image.shape)
            ref.append(np.uint8(np.clip(out, 0, 1) * 255))
        ours = corrupt(x, "elastic_transform", severity, seed=7)
        assert_close_uint8(ours, np.stack(ref), 1, 0.97)


def orig_plasma(mapsize: int, wibbledecay: float, uniform) -> np.ndarray:
    """make_cifar_c.py's plasma_fractal verbatim, with np.random.uniform passed in."""
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100

    def wibbledmean(array):
        return array / 4 + wibble * uniform(-wibble, wibble, array.shape)

    def fillsquares():
        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = \
            wibbledmean(squareaccum)

    def filldiamonds():
        drgrid = maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize]
        ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ltsum = drgrid + np.roll(drgrid, 1, axis=0) + ulgrid + np.roll(ulgrid, -1, axis=1)
        maparray[0:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(ltsum)
        ttsum = drgrid + np.roll(drgrid, 1, axis=1) + ulgrid + np.roll(ulgrid, -1, axis=0)
        maparray[stepsize // 2:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum)

    while stepsize >= 2:
        fillsquares()
        filldiamonds()
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def test_plasma_fractal_matches_the_original():
    u = np.random.default_rng(4).random((3, plasma_draws(32)))
    ours = plasma_fractal(u, 32, 2.5)
    for n in range(3):
        used = 0

        def uniform(low, high, shape, row=u[n]):
            nonlocal used
            k = int(np.prod(shape))
            draws = row[used:used + k].reshape(shape)
            used += k
            return low + (high - low) * draws

        assert np.allclose(ours[n], orig_plasma(32, 2.5, uniform), atol=1e-9)


def test_frost_textures_ship_with_the_package():
    files = sorted(FROST_DIR.glob("*.png"))
    assert len(files) == 4 and sum(f.stat().st_size for f in files) < 300_000
    assert (FROST_DIR / "README.md").is_file()
    textures = frost_textures(32)
    assert len(textures) == 5 and all(t.shape[0] > 32 and t.shape[1] > 32 for t in textures)
    # the output is image * a + texture crop * b: where the image is black only frost remains
    x = np.zeros((4, 32, 32, 3), np.uint8)
    y = corrupt(x, "frost", 5)
    assert y.max() > 0 and y.max() <= int(0.45 * 255) + 1

