"""Generated shape images (circle, square, triangle) and image folders written from them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SHAPE_CLASSES = ["circle", "square", "triangle"]


def shapes_images(n: int, size: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generated 3-class images: a filled circle, square or triangle on a noisy background."""
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


def write_image_folder(root: Path, splits: dict[str, int], size: int = 48, ext: str = ".png") -> Path:
    """ROOT/<split>/<class>/<i>.png with generated shapes; returns ROOT."""
    for s, (split, n) in enumerate(splits.items()):
        images, labels = shapes_images(n, size, seed=s)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / SHAPE_CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i:04d}{ext}"), image[..., ::-1])
    return root


def write_flat(root: Path, per_class: dict[str, int], size: int = 32, seed: int = 0,
               start: int = 0) -> Path:
    """ROOT/<class>/<i>.png of generated shapes: a class named in SHAPE_CLASSES draws its shape,
    any other name the shape of its position in `per_class` (modulo 3)."""
    for position, (cls, n) in enumerate(per_class.items()):
        label = SHAPE_CLASSES.index(cls) if cls in SHAPE_CLASSES else position % 3
        images, labels = shapes_images(3 * n + 3, size, seed=seed * 100 + label)
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images[labels == label][:n]):
            cv2.imwrite(str(root / cls / f"{start + i:04d}.png"), image[..., ::-1])
    return root
