"""Corruption and severity lists from the command line, and `corrupt`'s input errors."""

from __future__ import annotations

import numpy as np
import pytest

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.corruptions import (
    ALL_CORRUPTIONS,
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    corrupt,
    iter_corrupted,
    parse_corruptions,
    parse_severities,
)



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

