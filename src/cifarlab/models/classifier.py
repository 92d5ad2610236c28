"""One interface to run any model cifarlab makes: `load_classifier(path).predict(uint8 batch)`.

Every backend takes raw uint8 RGB images already resized to `input_size` (see
`cifarlab.data.images.resize_rgb`) and returns class probabilities; normalization is inside the
model, so there is exactly one preprocessing path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.models.io import load_keras_model, resolve_model_path


class Classifier(Protocol):
    class_names: list[str]
    input_size: tuple[int, int]  # (height, width)
    metadata: dict
    backend: str

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, classes) float32 probabilities."""
        ...


def check_batch(images: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1:] != (*input_size, 3):
        raise CifarlabError(
            f"model expects images of shape (N, {input_size[0]}, {input_size[1]}, 3), got "
            f"{images.shape}; resize with cifarlab.data.images.resize_rgb"
        )
    return images.astype(np.uint8, copy=False)


class KerasClassifier:
    """A `.keras` model run through one traced `tf.function` (not `model.predict`, which costs
    ~95 ms of overhead per call on this CPU)."""

    backend = "keras"

    def __init__(self, path: str | Path):
        import tensorflow as tf

        self.model, self.metadata = load_keras_model(path)
        self.class_names = list(self.metadata["class_names"])
        self.input_size = tuple(self.metadata["input_size"])  # type: ignore[assignment]
        spec = tf.TensorSpec((None, *self.input_size, 3), tf.uint8)
        self._call = tf.function(lambda x: self.model(x, training=False), input_signature=[spec])

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        images = check_batch(images, self.input_size)
        out = [self._call(images[i : i + batch_size]).numpy() for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)


def load_classifier(path: str | Path | None = None, backend: str = "auto") -> Classifier:
    """Load a `.keras`, `.tflite` or `.onnx` model made by cifarlab (default: the shipped model).

    backend: `auto` (the file's own runtime; for `.keras`, Keras), `keras`, or `litert` (converts
    a `.keras` model to LiteRT in memory: the fast path for live video).
    """
    path = resolve_model_path(path)
    suffix = path.suffix.lower()
    if suffix in (".tflite", ".onnx") or backend == "litert":
        from cifarlab.export.runtimes import load_runtime_classifier

        return load_runtime_classifier(path, backend)
    if suffix != ".keras":
        raise CifarlabError(f"{path}: unknown model type '{suffix}'; use a .keras, .tflite or .onnx file")
    if backend not in ("auto", "keras"):
        raise CifarlabError(f"backend {backend!r} cannot run {path.name}; use auto, keras or litert")
    return KerasClassifier(path)
