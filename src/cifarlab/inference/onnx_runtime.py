"""ONNX Runtime: an `.onnx` file made by `cifarlab export`, run on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.inference.base import MetadataMixin, default_threads, split_outputs
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
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.has_ood_score = len(self._outputs) == 2
        self._source = str(path)
        self._float_input = "float" in inputs[0].type

    def _embedded_metadata(self, path: Path) -> ModelMetadata:
        props = self._session.get_modelmeta().custom_metadata_map
        if METADATA_PROP not in props:
            raise CifarlabError(f"{path}: no class names found (no sidecar {path.name}.json and no "
                                "embedded metadata); copy the sidecar next to the model or re-export")
        return ModelMetadata.from_json(props[METADATA_PROP], str(path))

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        feed = images.astype(np.float32) if self._float_input else np.ascontiguousarray(images)
        return split_outputs(self._session.run(self._outputs, {self._input: feed}),
                             self.metadata.num_classes, self._source)
