"""References for the corruption tests: make_cifar_c.py's published 32x32 table, sample images,
and transcriptions of the original operations that more than one test file compares with."""

from __future__ import annotations

import cv2
import numpy as np

# make_cifar_c.py, 32x32 (elastic_transform's entries are multiplied by the image size there).
PUBLISHED = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": tuple(tuple(np.arange(1, stop, 0.01)) for stop in (1.06, 1.11, 1.16, 1.21, 1.26)),
    "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
             (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
             (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "elastic_transform": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                          (0.1, 0.03, 0.03)),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "speckle_noise": (0.06, 0.1, 0.12, 0.16, 0.2),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1),
    "spatter": ((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0),
                (0.65, 0.3, 1, 0.69, 0.5, 0), (0.65, 0.1, 0.7, 0.69, 0.6, 1),
                (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
}


def natural_images(n: int = 20, size: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth colour fields with a bright shape and some texture: blurs and noise both show."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 4, 4, 3)).astype(np.float32)
    images = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in coarse])
    images = np.clip(images * 200 + 20 + rng.normal(0, 8, images.shape), 0, 255).astype(np.uint8)
    for img in images:
        centre = tuple(int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, centre, int(rng.integers(size // 8, size // 3)), colour, -1)
    images[0, :4] = 0  # some black and white pixels for the HSV edge cases
    images[0, -4:] = 255
    return images


def assert_close_uint8(ours: np.ndarray, ref: np.ndarray, max_diff: int = 1, share: float = 0.95):
    """Equal up to one grey level in a few % of values: the original truncates float64 results
    to uint8, and where the exact value is a whole number (a flat region blurred, a channel
    scaled back to an integer) float64 lands just below it and float32 often on or above."""
    diff = np.abs(ours.astype(np.int16) - ref)
    assert diff.max() <= max_diff, diff.max()
    assert (diff == 0).mean() >= share, (diff == 0).mean()


def orig_clipped_zoom(img: np.ndarray, zoom: float) -> np.ndarray:
    from scipy.ndimage import zoom as scizoom

    h = img.shape[0]
    ch = int(np.ceil(h / zoom))
    top = (h - ch) // 2
    img = scizoom(img[top:top + ch, top:top + ch], (zoom, zoom, 1), order=1)
    trim = (img.shape[0] - h) // 2
    return img[trim:trim + h, trim:trim + h]


def im_motion_blur(img: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick 6 Q16 MotionBlurImage by its definition, pixel by pixel: double sums of 16-bit
    values, rounded to 16 bits, truncated to 8 bits when written as PNG."""
    width = int(2 * np.ceil(radius) + 1)
    k = np.exp(-np.arange(width) ** 2 / (2.0 * sigma * sigma))
    k /= k.sum()
    a = np.deg2rad(angle)
    h, w = img.shape[:2]
    out = np.zeros(img.shape)
    for i in range(width):
        ox, oy = int(np.ceil(i * np.cos(a) - 0.5)), int(np.ceil(i * np.sin(a) - 0.5))
        ys = np.clip(np.arange(h) + oy, 0, h - 1)
        xs = np.clip(np.arange(w) + ox, 0, w - 1)
        out += k[i] * (img[ys][:, xs] * 257.0)
    return np.clip(np.floor(np.floor(out + 0.5) / 257), 0, 255).astype(np.uint8)

