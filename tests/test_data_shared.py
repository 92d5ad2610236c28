"""The full shared CIFAR-10 JPEG tree (../shared/datasets/cifar10-jpeg): counts and class order.

The first decode of 60,000 JPEGs takes ~20 s; later runs hit the session's cache.
"""

from __future__ import annotations

import pytest

from cifarlab.data import CIFAR10_CLASSES, load_dataset


@pytest.mark.slow
def test_shared_cifar10_tree(shared_cifar, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "shared-cache"
    data = load_dataset(shared_cifar, cache_dir=cache, progress=False)
    assert data.format == "image-folder"
    assert data.class_names == CIFAR10_CLASSES  # airplane..truck, the official order
    assert {n: len(s) for n, s in data.splits.items()} == {"train": 50_000, "test": 10_000}
    counts = data.counts()
    assert counts["train"] == {c: 5000 for c in CIFAR10_CLASSES}
    assert counts["test"] == {c: 1000 for c in CIFAR10_CLASSES}
    train = data.split("train")
    assert train.images.shape == (50_000, 32, 32, 3) and train.images.dtype.name == "uint8"
    assert 80 < train.images.mean() < 160  # real photos, not blank decodes
    again = load_dataset(shared_cifar, cache_dir=cache, progress=False)
    assert again.cache == "hit" and again.fingerprint == data.fingerprint
