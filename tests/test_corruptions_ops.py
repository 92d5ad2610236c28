"""The corruptions without random draws (and snow's flakes) agree with make_cifar_c.py's
operations: skimage's HSV, scipy's zoom, PIL, ImageMagick's motion blur, the glass-blur loop."""

from __future__ import annotations

import io
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from helpers.corruption_refs import (
    PUBLISHED,
    assert_close_uint8,
    im_motion_blur,
    natural_images,
    orig_clipped_zoom,
)
from PIL import Image

from cifarlab.evaluation.corruptions import corrupt
from cifarlab.evaluation.corruptions.apply import seeded_rng
from cifarlab.evaluation.corruptions.blur import glass_offsets, glass_shuffle
from cifarlab.evaluation.corruptions.motion import imagemagick_motion_blur
from cifarlab.evaluation.corruptions.resample import clipped_zoom_matrix



def orig_hsv(x: np.ndarray, channel: int, a: float, b: float) -> np.ndarray:
    import skimage as sk

    out = []
    for img in x:
        hsv = sk.color.rgb2hsv(img / 255.)
        hsv[:, :, channel] = np.clip(hsv[:, :, channel] * a + b, 0, 1)
        out.append(np.uint8(np.clip(sk.color.hsv2rgb(hsv), 0, 1) * 255))
    return np.stack(out)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_brightness_and_saturate_match_skimage_hsv_exactly(images, severity):
    x = np.concatenate([images, np.random.default_rng(severity).integers(0, 256, (4, 32, 32, 3),
                                                                         dtype=np.uint8)])
    x[-1, :16, :16] = np.repeat(np.arange(256, dtype=np.uint8), 3).reshape(16, 16, 3)  # greys
    c = PUBLISHED["brightness"][severity - 1]
    assert np.array_equal(corrupt(x, "brightness", severity), orig_hsv(x, 2, 1, c))
    a, b = PUBLISHED["saturate"][severity - 1]
    assert np.array_equal(corrupt(x, "saturate", severity), orig_hsv(x, 1, a, b))


@pytest.mark.parametrize("severity", [1, 5])
def test_blurs_and_contrast_match_the_original(images, severity):
    from skimage.filters import gaussian

    sigma = PUBLISHED["gaussian_blur"][severity - 1]
    ref = np.stack([np.uint8(np.clip(gaussian(i / 255., sigma=sigma, channel_axis=-1), 0, 1) * 255)
                    for i in images])
    assert_close_uint8(corrupt(images, "gaussian_blur", severity), ref)

    radius, alias = PUBLISHED["defocus_blur"][severity - 1]
    grid = np.arange(-8, 9)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    kernel = cv2.GaussianBlur(disk / disk.sum(), ksize=(3, 3), sigmaX=alias)
    ref = np.stack([np.uint8(np.clip(np.stack([cv2.filter2D(i[:, :, d] / 255., -1, kernel)
                                               for d in range(3)], -1), 0, 1) * 255)
                    for i in images])
    assert_close_uint8(corrupt(images, "defocus_blur", severity), ref)

    c = PUBLISHED["contrast"][severity - 1]
    x = images / 255.
    means = x.mean(axis=(1, 2), keepdims=True)
    assert_close_uint8(corrupt(images, "contrast", severity),
                       np.uint8(np.clip((x - means) * c + means, 0, 1) * 255))


@pytest.mark.parametrize("severity", [1, 5])
def test_zoom_blur_matches_scipy_zoom(images, severity):
    ref = []
    for img in images[:6]:
        x = (img / 255.).astype(np.float32)
        out = np.zeros_like(x)
        for z in np.arange(1, (1.06, 1.11, 1.16, 1.21, 1.26)[severity - 1], 0.01):
            out += orig_clipped_zoom(x, z)
        ref.append(np.uint8(np.clip((x + out) / (len(PUBLISHED["zoom_blur"][severity - 1]) + 1),
                                    0, 1) * 255))
    assert_close_uint8(corrupt(images[:6], "zoom_blur", severity), np.stack(ref))


@pytest.mark.parametrize("size,zoom", [(32, 1.25), (32, 1.07), (48, 1.75), (20, 2.25)])
def test_zoom_matrix_matches_scipy(size, zoom):
    x = np.random.default_rng(1).random((size, size, 1))
    m = clipped_zoom_matrix(size, zoom)
    assert np.allclose(m @ x[:, :, 0] @ m.T, orig_clipped_zoom(x, zoom)[:, :, 0], atol=1e-9)


def test_pixelate_matches_pil_exactly(images):
    for severity, c in enumerate(PUBLISHED["pixelate"], 1):
        ref = np.stack([np.asarray(Image.fromarray(i).resize((int(32 * c),) * 2, Image.BOX)
                                   .resize((32, 32), Image.BOX)) for i in images])
        assert np.array_equal(corrupt(images, "pixelate", severity), ref)


def test_jpeg_matches_pil(images):
    for severity, quality in enumerate(PUBLISHED["jpeg_compression"], 1):
        ref = []
        for i in images:
            buf = io.BytesIO()
            Image.fromarray(i).save(buf, "JPEG", quality=quality)
            ref.append(np.asarray(Image.open(buf)))
        assert_close_uint8(corrupt(images, "jpeg_compression", severity), np.stack(ref), 2, 0.98)


def orig_glass_loop(x: np.ndarray, delta: int, shifts: np.ndarray) -> np.ndarray:
    """make_cifar_c.py's loop verbatim (NumPy view semantics included), draws given."""
    x = x.copy()
    size = x.shape[0]
    p = 0
    for h in range(size - delta, delta, -1):
        for w in range(size - delta, delta, -1):
            dx, dy = shifts[p]
            p += 1
            h_prime, w_prime = h + dy, w + dx
            x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
    return x


@pytest.mark.parametrize("size,delta", [(32, 1), (16, 2), (12, 3)])
def test_glass_shuffle_matches_the_original_loop(size, delta):
    rng = np.random.default_rng(size)
    x = rng.integers(0, 256, (4, size, size, 3), dtype=np.uint8)
    positions = len(glass_offsets(size, delta))
    shifts = rng.integers(-delta, delta, (4, positions, 2))
    ours = glass_shuffle(x, delta, shifts)
    for i in range(4):
        assert np.array_equal(ours[i], orig_glass_loop(x[i], delta, shifts[i]))


def test_motion_blur_follows_imagemagick_definition():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8)
    x[:, 5:12, 3:9] = 200  # flat patches: whole-number results
    angles = rng.uniform(-135, 45, 6)
    for radius, sigma in [(6, 2), (14, 12)]:
        ours = imagemagick_motion_blur(x, radius, sigma, angles)
        ref = np.stack([im_motion_blur(x[n], radius, sigma, angles[n]) for n in range(6)])
        assert_close_uint8(ours, ref, 1, 0.999)  # float32 sums: ~2 values in 100,000 differ


@pytest.mark.skipif(shutil.which("convert") is None, reason="ImageMagick's convert is absent")
def test_motion_blur_matches_imagemagick(tmp_path):
    rng = np.random.default_rng(5)
    x = natural_images(4, 32, seed=9)
    angles = [float(a) for a in rng.uniform(-135, 45, 4)]
    ours = np.concatenate([imagemagick_motion_blur(x, 9, 2.5, np.array(angles)),
                           imagemagick_motion_blur(x, 14, 12, np.array(angles))])
    ref = []
    for radius, sigma in [(9, 2.5), (14, 12)]:
        for img, angle in zip(x, angles):
            cv2.imwrite(str(tmp_path / "in.png"), img[..., ::-1])
            subprocess.run(["convert", str(tmp_path / "in.png"), "-motion-blur",
                            f"{radius}x{sigma}+{angle!r}", str(tmp_path / "out.png")], check=True)
            out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
            ref.append(out[..., ::-1] if out.ndim == 3 else np.repeat(out[..., None], 3, -1))
    # ImageMagick 6.9 Q16 agrees value for value; other builds (HDRI, 7.x) may round differently
    assert_close_uint8(ours, np.stack(ref), 1, 0.999)


def test_snow_matches_the_original_with_the_same_draws(images):
    x = images[:5]
    for severity in (1, 2, 5):
        mean, std, zoom, threshold, radius, sigma, keep = PUBLISHED["snow"][severity - 1]
        rng = seeded_rng(0, "snow", severity)
        ref = []
        for img in x:
            xf = np.array(img, dtype=np.float32) / 255.
            crop = int(np.ceil(32 / zoom))  # the original draws 32x32 and zooms the centre crop
            layer = np.zeros((32, 32))
            top = (32 - crop) // 2
            layer[top:top + crop, top:top + crop] = rng.normal(size=(crop, crop), loc=mean,
                                                               scale=std)
            angle = rng.uniform(-135, -45)
            layer = orig_clipped_zoom(layer[..., None], zoom)
            layer[layer < threshold] = 0
            layer = (np.clip(layer.squeeze(), 0, 1) * 255).astype(np.uint8)
            flakes = (im_motion_blur(layer, radius, sigma, angle) / 255.)[..., None]
            gray = cv2.cvtColor(xf, cv2.COLOR_RGB2GRAY).reshape(32, 32, 1)
            xf = keep * xf + (1 - keep) * np.maximum(xf, gray * 1.5 + 0.5)
            ref.append(np.uint8(np.clip(xf + flakes + np.rot90(flakes, k=2), 0, 1) * 255))
        assert_close_uint8(corrupt(x, "snow", severity), np.stack(ref))

