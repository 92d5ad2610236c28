"""The contract every runtime meets, and the small pieces they share."""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.models.metadata import ModelMetadata


class Classifier(Protocol):
    """Raw uint8 RGB images already resized to `input_size` in, class probabilities out.

    Normalization is inside every model, so there is exactly one preprocessing path
    (`cifarlab.data.images.resize_rgb`).
    """

    metadata: ModelMetadata
    backend: str  # "keras", "litert" or "onnx"

    @property
    def class_names(self) -> list[str]: ...

    @property
    def input_size(self) -> tuple[int, int]: ...

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, classes) float32 probabilities."""
        ...

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (classes,) float32 probabilities: the per-frame path."""
        ...


class MetadataMixin:
    """`class_names` and `input_size` read from `self.metadata`."""

    metadata: ModelMetadata

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata.class_names)

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.metadata.input_size)  # type: ignore[return-value]

    def empty_output(self) -> np.ndarray:
        return np.zeros((0, self.metadata.num_classes), np.float32)


def check_batch(images: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """A (N, H, W, 3) uint8 batch of the model's size (one image gets a batch axis), else an error."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1:] != (*input_size, 3):
        raise CifarlabError(
            f"model expects images of shape (N, {input_size[0]}, {input_size[1]}, 3), got "
            f"{images.shape}; resize with cifarlab.data.images.resize_rgb"
        )
    return images.astype(np.uint8, copy=False)


def top_k(probabilities: np.ndarray, class_names: list[str], k: int) -> list[tuple[str, float]]:
    """The k most probable (class, probability) pairs, best first (ties: lower index first)."""
    order = np.argsort(-probabilities, kind="stable")[: min(k, len(class_names))]
    return [(class_names[i], float(probabilities[i])) for i in order]


def traced_call(model, input_size: tuple[int, int], batch: int | None = None):
    """`model(x, training=False)` as one traced `tf.function` over a uint8 (batch, H, W, 3) input.

    Keras's `model.predict` has a large fixed overhead per call; the traced call is what the Keras
    runtime, the converters and the parity check all run.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((batch, *input_size, 3), tf.uint8, name="image")
    return tf.function(lambda image: model(image, training=False), input_signature=[spec])


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))
