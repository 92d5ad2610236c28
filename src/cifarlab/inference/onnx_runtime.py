"""ONNX Runtime: an `.onnx` file made by `cifarlab export`, run on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.inference.base import MetadataMixin, check_batch, default_threads
from cifarlab.models.metadata import ModelMetadata

METADATA_PROP = "cifarlab"  # the ONNX metadata_props key holding ModelMetadata.to_json()


class OnnxClassifier(MetadataMixin):
    backend = "onnx"

    def __init__(self, path: str | Path, metadata: ModelMetadata | None = None,
                 num_threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or default_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise CifarlabError(f"{path}: not a loadable ONNX model ({exc.__class__.__name__}: {exc})") from None
        self.metadata = metadata or self._embedded_metadata(path)
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise CifarlabError(f"{path}: expected a model with one input")
        self._input = inputs[0].name
        self._output = self._session.get_outputs()[0].name
        self._float_input = "float" in inputs[0].type

    def _embedded_metadata(self, path: Path) -> ModelMetadata:
        props = self._session.get_modelmeta().custom_metadata_map
        if METADATA_PROP not in props:
            raise CifarlabError(f"{path}: no class names found (no sidecar {path.name}.json and no "
                                "embedded metadata); copy the sidecar next to the model or re-export")
        return ModelMetadata.from_json(props[METADATA_PROP], str(path))

    def _run(self, images: np.ndarray) -> np.ndarray:
        feed = images.astype(np.float32) if self._float_input else np.ascontiguousarray(images)
        return self._session.run([self._output], {self._input: feed})[0].astype(np.float32, copy=False)

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        return self._run(check_batch(image, self.input_size))[0]

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        images = check_batch(images, self.input_size)
        if not len(images):
            return self.empty_output()
        return np.concatenate([self._run(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
