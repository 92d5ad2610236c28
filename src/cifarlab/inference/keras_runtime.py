"""Keras runtime: a `.keras` model run through one traced `tf.function`."""

from __future__ import annotations

import numpy as np

from cifarlab.inference.base import MetadataMixin, check_batch, traced_call
from cifarlab.models.metadata import ModelMetadata


def set_tf_threads(threads: int | None) -> None:
    """Limit TensorFlow's CPU threads (only possible before TensorFlow runs its first op)."""
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started (e.g. a second run in one process)
        pass


class KerasClassifier(MetadataMixin):
    backend = "keras"

    def __init__(self, model, metadata: ModelMetadata, threads: int | None = None):
        set_tf_threads(threads)
        self.model = model
        self.metadata = metadata
        self._call = traced_call(model, self.input_size)

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        images = check_batch(images, self.input_size)
        out = [self._call(images[i : i + batch_size]).numpy() for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else self.empty_output()

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        return self._call(check_batch(image, self.input_size)).numpy()[0]
