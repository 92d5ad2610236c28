"""Shared fixtures: the shared CIFAR-10 copy, small generated datasets and a tiny trained model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own dataset cache, never the user's."""
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def shared_cifar() -> Path:
    if not SHARED_CIFAR.is_dir():
        pytest.skip(f"{SHARED_CIFAR} is absent (CI provides ../shared/datasets)")
    return SHARED_CIFAR


def shapes_images(n: int, size: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generated 3-class images: a filled circle, square or triangle on a noisy background."""
    import cv2

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 80, (n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % 3
    for image, label in zip(images, labels):
        color = tuple(int(c) for c in rng.integers(150, 256, 3))
        c, r = rng.integers(size // 3, 2 * size // 3, 2), int(rng.integers(size // 6, size // 3))
        if label == 0:
            cv2.circle(image, (int(c[0]), int(c[1])), r, color, -1)
        elif label == 1:
            cv2.rectangle(image, (int(c[0] - r), int(c[1] - r)), (int(c[0] + r), int(c[1] + r)), color, -1)
        else:
            pts = np.array([[c[0], c[1] - r], [c[0] - r, c[1] + r], [c[0] + r, c[1] + r]], np.int32)
            cv2.fillPoly(image, [pts], color)
    return images, labels


SHAPE_CLASSES = ["circle", "square", "triangle"]


def write_image_folder(root: Path, splits: dict[str, int], size: int = 48, ext: str = ".png") -> Path:
    """ROOT/<split>/<class>/<i>.png with generated shapes; returns ROOT."""
    import cv2

    for s, (split, n) in enumerate(splits.items()):
        images, labels = shapes_images(n, size, seed=s)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / SHAPE_CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i:04d}{ext}"), image[..., ::-1])
    return root


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("shapes"), {"train": 300, "test": 90})


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, shapes_folder) -> Path:
    """A small `fast`-architecture model trained a few seconds on the shapes data (32x32)."""
    import keras

    from cifarlab.data import load_dataset
    from cifarlab.data.stats import channel_stats
    from cifarlab.models.io import save_model_file
    from cifarlab.models.metadata import ModelMetadata
    from cifarlab.models.registry import build_model

    keras.utils.set_random_seed(0)
    data = load_dataset(shapes_folder, image_size=32, cache_dir=tmp_path_factory.mktemp("c"))
    train = data.split("train")
    mean, std = channel_stats(train.images)
    model = build_model("fast", (32, 32), 3, mean, std, widths=(16, 32, 32),
                        init_images=train.images)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train.images, train.labels, epochs=8, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return save_model_file(model, path, ModelMetadata(
        class_names=tuple(data.class_names), input_size=(32, 32), mean=tuple(mean.tolist()),
        std=tuple(std.tolist()), dataset_fingerprint=data.fingerprint, dataset_format=data.format,
        model="fast", command="tests/conftest.py tiny_model", version="test", created="test"))
