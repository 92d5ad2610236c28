"""The contract every runtime meets, and the small pieces they share."""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.models.metadata import IMAGE, ModelMetadata


class Classifier(Protocol):
    """Raw uint8 RGB images already resized to `input_size` in, class probabilities out, and
    for a model with the open-set output (models/openset.py) its out-of-distribution score.

    Normalization is inside every model, so there is exactly one preprocessing path
    (`cifarlab.data.images.resize_rgb`).
    """

    metadata: ModelMetadata
    backend: str  # "keras", "litert" or "onnx"

    @property
    def class_names(self) -> list[str]: ...

    @property
    def input_size(self) -> tuple[int, int]: ...

    @property
    def has_ood_score(self) -> bool:
        """Whether the model computes the out-of-distribution score."""
        ...

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, classes) float32 probabilities."""
        ...

    def predict_scored(self, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
        """(probabilities, (N,) float32 ood scores, or None without the open-set output)."""
        ...

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (classes,) float32 probabilities: the per-frame path."""
        ...

    def predict_one_scored(self, image: np.ndarray) -> tuple[np.ndarray, float | None]:
        """(probabilities, ood score or None) of one image: the per-frame path."""
        ...


class MetadataMixin:
    """`class_names`, `input_size` from `self.metadata`, and the batching every runtime shares:
    a runtime implements `_run(batch) -> (probabilities, scores or None)` and may cap its batch
    with `_chunk(batch_size)`."""

    metadata: ModelMetadata
    has_ood_score: bool = False

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata.class_names)

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.metadata.input_size)  # type: ignore[return-value]

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _chunk(self, batch_size: int) -> int:
        return batch_size

    def predict_scored(self, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
        images = check_batch(images, self.input_size)
        step = self._chunk(batch_size)
        parts = [self._run(images[i : i + step]) for i in range(0, len(images), step)]
        probs = (np.concatenate([p for p, _ in parts]) if parts
                 else np.zeros((0, self.metadata.num_classes), np.float32))
        if not self.has_ood_score:
            return probs, None
        return probs, (np.concatenate([s for _, s in parts]) if parts else np.zeros(0, np.float32))

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return self.predict_scored(images, batch_size)[0]

    def predict_one_scored(self, image: np.ndarray) -> tuple[np.ndarray, float | None]:
        probs, scores = self._run(check_batch(image, self.input_size))
        return probs[0], (float(scores[0]) if scores is not None else None)

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        return self.predict_one_scored(image)[0]


def split_outputs(outputs: list[np.ndarray], num_classes: int, source: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A runtime's outputs -> (probabilities, (N,) scores or None), told apart by their width
    (converters do not keep the output order): (N, classes) and (N, 1)."""
    outputs = [np.asarray(o, np.float32) for o in outputs]
    probs = [o for o in outputs if o.shape[-1] == num_classes]
    scores = [o for o in outputs if o.shape[-1] == 1]
    if len(outputs) == 1 and probs:
        return probs[0], None
    if len(outputs) != 2 or len(probs) != 1 or len(scores) != 1:
        shapes = ", ".join(str(o.shape) for o in outputs)
        raise CifarlabError(f"{source}: expected outputs (N, {num_classes}) and optionally (N, 1), "
                            f"got {shapes}; re-export the model with cifarlab")
    return probs[0], scores[0][:, 0]


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
    """`model(x, training=False)` as one traced `tf.function` over a uint8 (batch, H, W, 3) input
(its output: the probabilities, or [probabilities, ood score] for a model with the open-set output).

    Keras's `model.predict` has a large fixed overhead per call; the traced call is what the Keras
    runtime, the converters and the parity check all run.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((batch, *input_size, 3), tf.uint8, name=IMAGE)
    return tf.function(lambda image: model(image, training=False), input_signature=[spec])


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))
