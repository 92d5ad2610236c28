"""Shared by the benchmarks: an untrained stand-in model and tiny `--quick` data."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def untrained_fast_model(folder: Path, command: str) -> Path:
    """A `fast` CIFAR-10 network with untrained weights: right shapes and cost, chance accuracy."""
    from cifarlab.data import CIFAR10_CLASSES
    from cifarlab.models.io import save_model_file
    from cifarlab.models.metadata import ModelMetadata
    from cifarlab.models.registry import build_model

    mean = np.array([125.3, 123.0, 113.9], np.float32)
    std = np.array([63.0, 62.1, 66.7], np.float32)
    model = build_model("fast", (32, 32), 10, mean, std)
    return save_model_file(model, folder / "untrained-fast.keras", ModelMetadata(
        class_names=tuple(CIFAR10_CLASSES), input_size=(32, 32), mean=tuple(mean.tolist()),
        std=tuple(std.tolist()), model="fast", command=f"{command} (untrained)", version="bench",
        created="bench"))


def save_plot(fig, ax, path: Path, **axes) -> None:
    """Label `ax` (matplotlib `ax.set` keywords), add grid and legend, and save `fig` as a PNG."""
    ax.set(**axes)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def tiny_images(n: int, classes: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`--quick` data: n noisy uint8 images whose mean colour depends on their class."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    tint = np.random.default_rng(classes).integers(0, 160, (classes, 1, 1, 3))  # the same in every split
    images = rng.integers(0, 96, (n, size, size, 3)) + tint[labels]
    return images.astype(np.uint8), labels.astype(np.int64)


def tiny_dataset(class_names: list[str], per_split: dict[str, int], size: int = 32):
    """`--quick` data as a `Dataset` (what `train(..., dataset=)` takes)."""
    from cifarlab.data import Dataset, Split
    from cifarlab.data.dataset import fingerprint_arrays

    splits = {name: Split(*tiny_images(n, len(class_names), size, seed))
              for seed, (name, n) in enumerate(per_split.items())}
    return Dataset(list(class_names), splits, "synthetic", "synthetic (--quick)",
                   fingerprint_arrays(list(class_names), splits), "off")


def tiny_image_folder(root: Path, class_names: list[str], per_split: dict[str, int], size: int = 32) -> Path:
    """`--quick` data as ROOT/<split>/<class>/<i>.png; returns ROOT."""
    import cv2

    for seed, (split, n) in enumerate(per_split.items()):
        images, labels = tiny_images(n, len(class_names), size, seed)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / class_names[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i:04d}.png"), image[..., ::-1])
    return root
