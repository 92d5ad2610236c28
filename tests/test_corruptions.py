"""CIFAR-10-C corruptions: the published parameters, the image contract, determinism, other
sizes, severity ordering, agreement with the original operations, parsing and the official files.

The references below transcribe make_cifar_c.py's operations (skimage, scipy, PIL, cv2) on a few
images; the library's vectorised versions must agree with them.
"""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from PIL import Image

from cifarlab.data import corruptions as C
from cifarlab.data.corruptions import (
    ALL_CORRUPTIONS,
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    PARAMETERS,
    corrupt,
    iter_corrupted,
    load_official,
    parse_corruptions,
    parse_severities,
)
from cifarlab.errors import CifarlabError

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
# Corruptions without any randomness.
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate",
                 "jpeg_compression", "gaussian_blur", "saturate"}


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


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return natural_images()


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


# ------------------------------------------------------------------------------------------
# Names and parameters
# ------------------------------------------------------------------------------------------

def test_names_in_published_order():
    assert CORRUPTIONS == (
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
        "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
        "elastic_transform", "pixelate", "jpeg_compression")
    assert EXTRA_CORRUPTIONS == ("speckle_noise", "gaussian_blur", "spatter", "saturate")
    assert ALL_CORRUPTIONS == CORRUPTIONS + EXTRA_CORRUPTIONS
    assert set(PARAMETERS) == set(ALL_CORRUPTIONS)


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_parameters_are_the_published_table(name):
    assert len(PARAMETERS[name]) == 5
    assert PARAMETERS[name] == PUBLISHED[name]


def test_zoom_factors_are_numpys_arange():
    # np.arange(1, stop, 0.01) makes 7, 12, 16, 21 and 26 factors: 1.06 and 1.11 are included.
    rounded = [[round(f, 2) for f in fs] for fs in PARAMETERS["zoom_blur"]]
    assert [len(fs) for fs in rounded] == [7, 12, 16, 21, 26]
    for fs in rounded:
        assert fs == [round(1 + i / 100, 2) for i in range(len(fs))]


# ------------------------------------------------------------------------------------------
# The image contract and determinism
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_contract_and_determinism(name, images):
    out = {s: corrupt(images, name, s, seed=3) for s in (1, 5)}
    for s, y in out.items():
        assert y.dtype == np.uint8 and y.shape == images.shape
        assert y.min() >= 0 and y.max() <= 255
        assert np.array_equal(y, corrupt(images, name, s, seed=3))  # same seed, same images
    assert not np.array_equal(out[5], images)
    assert not np.array_equal(out[1], out[5])
    # each image's randomness comes in order: a prefix of the batch gets the same result
    assert np.array_equal(corrupt(images[:7], name, 5, seed=3), out[5][:7])
    if name not in DETERMINISTIC:
        assert not np.array_equal(corrupt(images, name, 5, seed=4), out[5])
    assert np.array_equal(corrupt(images, name, 5), corrupt(images, name, 5, seed=0))
    assert corrupt(images[:0], name, 2).shape == (0, 32, 32, 3)


def test_input_is_not_modified(images):
    before = images.copy()
    for name in ALL_CORRUPTIONS:
        corrupt(images[:3], name, 5)
    assert np.array_equal(images, before)


@pytest.mark.parametrize("size", [24, 48])
@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_other_sizes(name, size):
    x = natural_images(6, size, seed=size)
    y = corrupt(x, name, 3, seed=1)
    assert y.dtype == np.uint8 and y.shape == x.shape
    assert not np.array_equal(y, x)
    assert np.array_equal(y, corrupt(x, name, 3, seed=1))


def test_pixel_parameters_scale_with_size():
    # A blur of sigma s at 32 px is a blur of 2s at 64 px: upscaled images blurred at 64 and
    # downscaled again look like the 32 px blur (far more than an unscaled blur would).
    x = natural_images(8, 32, seed=5)
    big = np.stack([cv2.resize(i, (64, 64), interpolation=cv2.INTER_LINEAR) for i in x])
    small32 = corrupt(x, "gaussian_blur", 5).astype(np.float32)
    back = np.stack([cv2.resize(i, (32, 32), interpolation=cv2.INTER_AREA)
                     for i in corrupt(big, "gaussian_blur", 5)]).astype(np.float32)
    base = np.stack([cv2.resize(i, (32, 32), interpolation=cv2.INTER_AREA) for i in big])
    assert np.abs(back - small32).mean() < 0.5 * np.abs(base.astype(np.float32) - small32).mean()


# ------------------------------------------------------------------------------------------
# Severity makes things worse
# ------------------------------------------------------------------------------------------

MONOTONE = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur",
            "gaussian_blur", "motion_blur", "zoom_blur", "fog", "brightness", "contrast",
            "pixelate", "snow"]


@pytest.mark.parametrize("name", MONOTONE)
def test_distortion_grows_with_severity(name, images):
    d = [mad(corrupt(images, name, s), images) for s in range(1, 6)]
    assert d[4] > 1.5 * d[0], d
    for a, b in itertools.pairwise(d):
        assert b >= 0.95 * a, d


def test_impulse_noise_amount(images):
    x = np.repeat(images, 10, axis=0)
    for s, amount in enumerate(PUBLISHED["impulse_noise"], 1):
        y = corrupt(x, "impulse_noise", s)
        changed = y != x
        inside = (x > 0) & (x < 255)  # salt on white or pepper on black changes nothing
        assert abs(changed[inside].mean() - amount) < 0.002
        assert set(np.unique(y[changed])) <= {0, 255}


def test_shot_noise_is_poisson():
    rng = np.random.default_rng(0)
    for lam in (500, 50):
        for level in (0, 1, 40, 200, 255):
            counts = C._poisson_levels(np.full(100_000, level, np.uint8), lam, rng)
            mean = level * lam / 255
            assert abs(counts.mean() - mean) < 4 * np.sqrt(mean / 100_000) + 1e-9
            assert abs(counts.var() - mean) < 0.03 * mean + 1e-9


# ------------------------------------------------------------------------------------------
# Agreement with the original operations
# ------------------------------------------------------------------------------------------

def orig_hsv(x: np.ndarray, channel: int, a: float, b: float) -> np.ndarray:
    import skimage as sk

    out = []
    for img in x:
        hsv = sk.color.rgb2hsv(img / 255.)
        hsv[:, :, channel] = np.clip(hsv[:, :, channel] * a + b, 0, 1)
        out.append(np.uint8(np.clip(sk.color.hsv2rgb(hsv), 0, 1) * 255))
    return np.stack(out)


def assert_close_uint8(ours: np.ndarray, ref: np.ndarray, max_diff: int = 1, share: float = 0.95):
    """Equal up to one grey level in a few % of values: the original truncates float64 results
    to uint8, and where the exact value is a whole number (a flat region blurred, a channel
    scaled back to an integer) float64 lands just below it and float32 often on or above."""
    diff = np.abs(ours.astype(np.int16) - ref)
    assert diff.max() <= max_diff, diff.max()
    assert (diff == 0).mean() >= share, (diff == 0).mean()


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


def orig_clipped_zoom(img: np.ndarray, zoom: float) -> np.ndarray:
    from scipy.ndimage import zoom as scizoom

    h = img.shape[0]
    ch = int(np.ceil(h / zoom))
    top = (h - ch) // 2
    img = scizoom(img[top:top + ch, top:top + ch], (zoom, zoom, 1), order=1)
    trim = (img.shape[0] - h) // 2
    return img[trim:trim + h, trim:trim + h]


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
    m = C._clipped_zoom_matrix(size, zoom)
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
    positions = len(C._glass_offsets(size, delta))
    shifts = rng.integers(-delta, delta, (4, positions, 2))
    ours = C._glass_shuffle(x, delta, shifts)
    for i in range(4):
        assert np.array_equal(ours[i], orig_glass_loop(x[i], delta, shifts[i]))


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


def test_motion_blur_follows_imagemagick_definition():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8)
    x[:, 5:12, 3:9] = 200  # flat patches: whole-number results
    angles = rng.uniform(-135, 45, 6)
    for radius, sigma in [(6, 2), (14, 12)]:
        ours = C._motion_blur(x, radius, sigma, angles)
        ref = np.stack([im_motion_blur(x[n], radius, sigma, angles[n]) for n in range(6)])
        assert_close_uint8(ours, ref, 1, 0.999)  # float32 sums: ~2 values in 100,000 differ


@pytest.mark.skipif(shutil.which("convert") is None, reason="ImageMagick's convert is absent")
def test_motion_blur_matches_imagemagick(tmp_path):
    rng = np.random.default_rng(5)
    x = natural_images(4, 32, seed=9)
    angles = [float(a) for a in rng.uniform(-135, 45, 4)]
    ours = np.concatenate([C._motion_blur(x, 9, 2.5, np.array(angles)),
                           C._motion_blur(x, 14, 12, np.array(angles))])
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
        rng = C._rng(0, "snow", severity)
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
    rng = C._rng(0, "spatter", severity)
    ref = np.stack([orig_spatter(img, c, rng.normal(size=(32, 32), loc=c[0], scale=c[1]))
                    for img in images])
    assert_close_uint8(corrupt(images, "spatter", severity), ref, 1, 0.95)


def test_frost_and_fog_match_the_original_with_the_same_draws(images):
    textures = C._frost_textures(32)
    for severity in (1, 5):
        a, b = PUBLISHED["frost"][severity - 1]
        rng = C._rng(0, "frost", severity)
        ref = []
        for img in images:
            tex = textures[int(rng.integers(5))]
            top, left = rng.integers(0, tex.shape[0] - 32), rng.integers(0, tex.shape[1] - 32)
            ref.append(np.uint8(np.clip(a * np.array(img) + b * tex[top:top + 32, left:left + 32],
                                        0, 255)))
        assert_close_uint8(corrupt(images, "frost", severity), np.stack(ref))

        strength, decay = PUBLISHED["fog"][severity - 1]
        u = C._rng(0, "fog", severity).random((len(images), C._plasma_draws(32)))
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
    ours = C._bilinear_reflect(img, yy, xx)
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
        u = C._rng(7, "elastic_transform", severity).random((4, 6 + 2 * 32 * 32))
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
    u = np.random.default_rng(4).random((3, C._plasma_draws(32)))
    ours = C._plasma_fractal(u, 32, 2.5)
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
    files = sorted(C._FROST_DIR.glob("*.png"))
    assert len(files) == 4 and sum(f.stat().st_size for f in files) < 300_000
    assert (C._FROST_DIR / "README.md").is_file()
    textures = C._frost_textures(32)
    assert len(textures) == 5 and all(t.shape[0] > 32 and t.shape[1] > 32 for t in textures)
    # the output is image * a + texture crop * b: where the image is black only frost remains
    x = np.zeros((4, 32, 32, 3), np.uint8)
    y = corrupt(x, "frost", 5)
    assert y.max() > 0 and y.max() <= int(0.45 * 255) + 1


# ------------------------------------------------------------------------------------------
# Parsing and input errors
# ------------------------------------------------------------------------------------------

def test_parse_corruptions():
    assert parse_corruptions("all") == list(ALL_CORRUPTIONS)
    assert parse_corruptions("main") == list(CORRUPTIONS)
    assert parse_corruptions("extra") == list(EXTRA_CORRUPTIONS)
    assert parse_corruptions(" Gaussian-Noise, contrast ,contrast") == ["gaussian_noise",
                                                                         "contrast"]
    assert parse_corruptions("main,spatter")[-1] == "spatter"


@pytest.mark.parametrize("text,suggestion", [("gausian_noise", "gaussian_noise"),
                                             ("contrast,jpeg", "jpeg_compression"),
                                             ("elastic", "elastic_transform"),
                                             ("mian", "main")])
def test_parse_corruptions_suggests(text, suggestion):
    with pytest.raises(CifarlabError, match=f"did you mean '{suggestion}'"):
        parse_corruptions(text)


def test_parse_corruptions_errors():
    with pytest.raises(CifarlabError, match="no corruption"):
        parse_corruptions(" , ")
    with pytest.raises(CifarlabError) as e:
        parse_corruptions("xyzzy")
    assert "did you mean" not in str(e.value) and "gaussian_noise" in str(e.value)


def test_parse_severities():
    assert parse_severities("1-5") == [1, 2, 3, 4, 5]
    assert parse_severities("3") == [3]
    assert parse_severities("1,3,5") == [1, 3, 5]
    assert parse_severities("5, 1-2, 2") == [1, 2, 5]


@pytest.mark.parametrize("text,message", [("0", "out of range"), ("6", "out of range"),
                                          ("1-6", "out of range"), ("4-2", "low-high"),
                                          ("high", "bad severity"), ("1-", "bad severity"),
                                          ("", "no severity")])
def test_parse_severities_errors(text, message):
    with pytest.raises(CifarlabError, match=message):
        parse_severities(text)


def test_corrupt_rejects_bad_input(images):
    with pytest.raises(CifarlabError, match="did you mean 'motion_blur'"):
        corrupt(images, "motion_blurr", 1)
    for severity in (0, 6, 2.0, True):
        with pytest.raises(CifarlabError, match="severity"):
            corrupt(images, "contrast", severity)
    with pytest.raises(CifarlabError, match="uint8"):
        corrupt(images.astype(np.float32), "contrast", 1)
    with pytest.raises(CifarlabError, match="uint8"):
        corrupt(images[0], "contrast", 1)
    with pytest.raises(CifarlabError, match="square"):
        corrupt(images[:, :, :20], "contrast", 1)


def test_iter_corrupted(images):
    got = list(iter_corrupted(images[:3], np.arange(3), ["contrast", "fog"], [1, 5], seed=2))
    assert [(n, s) for n, s, _ in got] == [("contrast", 1), ("contrast", 5), ("fog", 1),
                                           ("fog", 5)]
    assert np.array_equal(got[3][2], corrupt(images[:3], "fog", 5, seed=2))
    with pytest.raises(CifarlabError, match="labels"):
        list(iter_corrupted(images[:3], np.arange(2), ["fog"], [1]))


# ------------------------------------------------------------------------------------------
# The official CIFAR-10-C files
# ------------------------------------------------------------------------------------------

def fake_official(folder, names=("gaussian_noise", "fog"), n=4, labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        arr = np.repeat(np.arange(1, 6, dtype=np.uint8), n)[:, None, None, None] * (k + 1)
        np.save(folder / f"{name}.npy", np.broadcast_to(arr, (5 * n, 32, 32, 3)).copy())
    np.save(folder / "labels.npy",
            np.tile(np.arange(n) % 10, 5).astype(np.uint8) if labels is None else labels)
    return folder


def test_load_official(tmp_path):
    folder = fake_official(tmp_path / "CIFAR-10-C")
    data, labels = load_official(folder, ["gaussian_noise", "fog"])
    assert set(data) == {(nm, s) for nm in ("gaussian_noise", "fog") for s in range(1, 6)}
    for (name, severity), arr in data.items():
        assert arr.shape == (4, 32, 32, 3) and arr.dtype == np.uint8
        assert (np.asarray(arr) == severity * (1 + (name == "fog"))).all()
    assert labels.dtype == np.int64 and list(labels) == [0, 1, 2, 3]
    # the arrays are memory-mapped slices; corrupting one gives a plain array
    out = corrupt(data[("fog", 2)], "contrast", 1)
    assert type(out) is np.ndarray and out.shape == (4, 32, 32, 3)
    # one label per image (not repeated five times) is fine too
    np.save(folder / "labels.npy", np.arange(4))
    assert list(load_official(folder, ["fog"])[1]) == [0, 1, 2, 3]


def single_line_error(folder, names, match):
    with pytest.raises(CifarlabError, match=match) as e:
        load_official(folder, names)
    assert "\n" not in str(e.value)


def test_load_official_errors(tmp_path):
    single_line_error(tmp_path / "absent", ["fog"], "no such folder")
    good = fake_official(tmp_path / "good")
    single_line_error(good, ["fgo"], "did you mean 'fog'")
    single_line_error(good, ["snow"], "has no snow.npy")

    bad = fake_official(tmp_path / "nolabels")
    (bad / "labels.npy").unlink()
    single_line_error(bad, ["fog"], "has no labels.npy")

    bad = fake_official(tmp_path / "dtype")
    np.save(bad / "fog.npy", np.zeros((20, 32, 32, 3), np.float32))
    single_line_error(bad, ["fog"],
                      r"fog.npy: expected \(N\*5, H, H, 3\) uint8 images, got float32")

    bad = fake_official(tmp_path / "shape")
    np.save(bad / "fog.npy", np.zeros((20, 32, 32), np.uint8))
    single_line_error(bad, ["fog"], r"got uint8 \(20, 32, 32\)")

    bad = fake_official(tmp_path / "five")
    np.save(bad / "fog.npy", np.zeros((21, 32, 32, 3), np.uint8))
    single_line_error(bad, ["fog"], "21 images is not 5 severities")

    bad = fake_official(tmp_path / "count", labels=np.zeros(7, np.uint8))
    single_line_error(bad, ["fog"], "7 labels for 4 images")

    bad = fake_official(tmp_path / "blocks", labels=np.arange(20))
    single_line_error(bad, ["fog"], "5 severity blocks differ")

    bad = fake_official(tmp_path / "labeltype", labels=np.zeros(20, np.float32))
    single_line_error(bad, ["fog"], "1-D integer array")

    bad = fake_official(tmp_path / "mixed")
    np.save(bad / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    single_line_error(bad, ["gaussian_noise", "fog"], "2 images per severity, but the other")

    bad = fake_official(tmp_path / "pickle")
    np.save(bad / "fog.npy", np.array([{"a": 1}] * 5, dtype=object), allow_pickle=True)
    single_line_error(bad, ["fog"], "not a readable .npy")

    bad = fake_official(tmp_path / "garbage")
    (bad / "fog.npy").write_bytes(b"not an npy file at all")
    single_line_error(bad, ["fog"], "not a readable .npy")
