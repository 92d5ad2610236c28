"""CIFAR-10-C corruptions: the registry and its published parameters, the image contract,
determinism, other sizes and severity ordering."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from helpers.corruption_refs import PUBLISHED, natural_images

from cifarlab.evaluation.corruptions import (
    ALL_CORRUPTIONS,
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    REGISTRY,
    SEVERITIES,
    corrupt,
    corruption,
)
from cifarlab.evaluation.corruptions.noise import poisson_levels

# Corruptions without any randomness.
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate",
                 "jpeg_compression", "gaussian_blur", "saturate"}



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
    assert set(REGISTRY) == set(ALL_CORRUPTIONS)


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_parameters_are_the_published_table(name):
    assert len(REGISTRY[name].params) == 5
    assert REGISTRY[name].params == PUBLISHED[name]


def test_registry_declares_each_corruption_in_one_place():
    for name, entry in REGISTRY.items():
        assert entry.name == name and callable(entry.apply)
        assert entry.main == (name in CORRUPTIONS)
    assert SEVERITIES == (1, 2, 3, 4, 5)
    with pytest.raises(TypeError):
        REGISTRY["contrast"] = REGISTRY["fog"]  # read-only: declare with @corruption instead


def test_corruption_decorator_rejects_a_second_declaration_or_missing_severities():
    before = dict(REGISTRY)
    with pytest.raises(ValueError, match="declared twice"):
        corruption("contrast", params=(1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="needs 5 severities"):
        corruption("blur_again", params=(1, 2))
    assert dict(REGISTRY) == before


def test_zoom_factors_are_numpys_arange():
    # np.arange(1, stop, 0.01) makes 7, 12, 16, 21 and 26 factors: 1.06 and 1.11 are included.
    rounded = [[round(f, 2) for f in fs] for fs in REGISTRY["zoom_blur"].params]
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
            counts = poisson_levels(np.full(100_000, level, np.uint8), lam, rng)
            mean = level * lam / 255
            assert abs(counts.mean() - mean) < 4 * np.sqrt(mean / 100_000) + 1e-9
            assert abs(counts.var() - mean) < 0.03 * mean + 1e-9

