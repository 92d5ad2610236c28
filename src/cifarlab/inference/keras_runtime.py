"""Keras runtime: a `.keras` model run through one traced `tf.function`."""

from __future__ import annotations

import numpy as np

from cifarlab.inference.base import MetadataMixin, split_outputs, traced_call
from cifarlab.models.metadata import ModelMetadata
from cifarlab.models.openset import has_ood_score


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
        self.has_ood_score = has_ood_score(model)

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self._call(batch)
        outputs = [o.numpy() for o in out] if isinstance(out, (list, tuple)) else [out.numpy()]
        return split_outputs(outputs, self.metadata.num_classes, "keras model")
