"""Run exported models: LiteRT (`.tflite`, or a `.keras` converted in memory) and ONNX Runtime.

Both classifiers follow `cifarlab.models.classifier.Classifier`: `predict((N, H, W, 3) uint8)`
returns float32 probabilities, and `predict_one((H, W, 3) uint8)` is the per-frame fast path
used by live video (no batching, no copies beyond the input tensor).

An exported model's metadata (class names, input size, ...) is the same dict as inside the
`.keras` file, stored in a sidecar `<model file>.json` (ONNX files also carry it in their
`metadata_props` under the key `cifarlab`).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.models.classifier import check_batch

METADATA_PROP = "cifarlab"


def sidecar_path(path: str | Path) -> Path:
    """`model.tflite` -> `model.tflite.json`."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar(path: str | Path) -> dict | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise CifarlabError(f"{side}: unreadable model metadata ({exc}); re-run `cifarlab export`") from None
    if not isinstance(meta, dict) or "class_names" not in meta:
        raise CifarlabError(f"{side}: not cifarlab model metadata (no class_names); re-run `cifarlab export`")
    return meta


def _missing_metadata(path: Path) -> CifarlabError:
    return CifarlabError(
        f"{path}: no class names found (expected the sidecar {sidecar_path(path).name} written by "
        "`cifarlab export`); copy it next to the model or re-export"
    )


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class LiteRTClassifier:
    """A TFLite flatbuffer run by the LiteRT interpreter (XNNPACK delegate, the default)."""

    backend = "litert"

    def __init__(self, model_content: bytes | None = None, model_path: str | Path | None = None, *,
                 metadata: dict, num_threads: int | None = None, source: str = ""):
        from ai_edge_litert.interpreter import Interpreter

        self.metadata = metadata
        self.class_names = list(metadata["class_names"])
        self.input_size = tuple(metadata["input_size"])  # type: ignore[assignment]
        self.source = source
        try:
            if model_content is not None:
                self._interp = Interpreter(model_content=model_content, num_threads=num_threads or default_threads())
            else:
                self._interp = Interpreter(model_path=str(model_path), num_threads=num_threads or default_threads())
        except (ValueError, RuntimeError) as exc:
            raise CifarlabError(f"{source or model_path}: not a loadable LiteRT model ({exc})") from None
        inp = self._interp.get_input_details()
        out = self._interp.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise CifarlabError(f"{source}: expected a model with one input and one output")
        self._in, self._out = inp[0], out[0]
        self._in_index, self._out_index = self._in["index"], self._out["index"]
        shape = tuple(int(v) for v in self._in["shape_signature"])
        if len(shape) != 4 or shape[1:] != (*self.input_size, 3):
            raise CifarlabError(
                f"{source}: model input shape {shape} does not match metadata input_size "
                f"{list(self.input_size)}; re-export the model"
            )
        self._in_dtype = self._in["dtype"]
        if self._in_dtype not in (np.uint8, np.float32, np.int8):
            raise CifarlabError(f"{source}: unsupported model input type {self._in_dtype}")
        # The batch size the interpreter is currently allocated for (-1/None batch is resizable).
        self._resizable = shape[0] in (-1, 0)
        self._fixed_batch = 1 if self._resizable else shape[0]
        self._batch: int | None = None
        self._set_batch(self._fixed_batch)
        scale, zero = self._out["quantization"]
        self._out_scale = (float(scale), int(zero)) if scale else None

    def _set_batch(self, n: int) -> None:
        if self._batch == n:
            return
        self._interp.resize_tensor_input(self._in_index, [n, *self.input_size, 3], strict=False)
        self._interp.allocate_tensors()
        self._batch = n

    def _prepare(self, images: np.ndarray) -> np.ndarray:
        if self._in_dtype == np.uint8:
            return images
        if self._in_dtype == np.float32:  # a model exported without the uint8 input cast
            return images.astype(np.float32)
        scale, zero = self._in["quantization"]  # int8 input: quantize raw pixel values
        return np.clip(np.round(images / scale + zero), -128, 127).astype(np.int8)

    def _output(self) -> np.ndarray:
        out = self._interp.get_tensor(self._out_index)
        if self._out_scale is not None:
            scale, zero = self._out_scale
            return ((out.astype(np.float32) - zero) * scale).astype(np.float32)
        return out.astype(np.float32, copy=True)

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (classes,) float32 probabilities: the per-frame path."""
        if image.shape != (*self.input_size, 3):
            check_batch(image, self.input_size)  # raises the standard shape error
        if not self._resizable and self._fixed_batch != 1:
            return self.predict(image[None])[0]
        self._set_batch(1)
        self._interp.set_tensor(self._in_index, self._prepare(np.ascontiguousarray(image, np.uint8)[None]))
        self._interp.invoke()
        return self._output()[0]

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        images = check_batch(images, self.input_size)
        if not len(images):
            return np.zeros((0, len(self.class_names)), np.float32)
        step = batch_size if self._resizable else self._fixed_batch
        outputs = []
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            n = len(chunk)
            if not self._resizable and n < step:  # fixed batch: pad the last chunk
                chunk = np.concatenate([chunk, np.zeros((step - n, *chunk.shape[1:]), chunk.dtype)])
            self._set_batch(len(chunk))
            self._interp.set_tensor(self._in_index, self._prepare(np.ascontiguousarray(chunk)))
            self._interp.invoke()
            outputs.append(self._output()[:n])
        return np.concatenate(outputs)


class OnnxClassifier:
    """An ONNX model run by ONNX Runtime on the CPU."""

    backend = "onnx"

    def __init__(self, path: str | Path, metadata: dict | None = None, num_threads: int | None = None):
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
        if metadata is None:
            props = self._session.get_modelmeta().custom_metadata_map
            if METADATA_PROP not in props:
                raise _missing_metadata(path)
            metadata = json.loads(props[METADATA_PROP])
        self.metadata = metadata
        self.class_names = list(metadata["class_names"])
        self.input_size = tuple(metadata["input_size"])  # type: ignore[assignment]
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1:
            raise CifarlabError(f"{path}: expected a model with one input")
        self._input = inputs[0].name
        self._output = outputs[0].name
        self._float_input = "float" in inputs[0].type

    def _run(self, images: np.ndarray) -> np.ndarray:
        feed = images.astype(np.float32) if self._float_input else images
        return self._session.run([self._output], {self._input: feed})[0].astype(np.float32, copy=False)

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        return self._run(np.ascontiguousarray(check_batch(image, self.input_size)))[0]

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        images = check_batch(images, self.input_size)
        if not len(images):
            return np.zeros((0, len(self.class_names)), np.float32)
        return np.concatenate([self._run(np.ascontiguousarray(images[i : i + batch_size]))
                               for i in range(0, len(images), batch_size)])


def keras_to_tflite(model, input_size: tuple[int, int], batch: int | None = None,
                    quantize: str = "none", representative_images: np.ndarray | None = None) -> bytes:
    """Convert a Keras 3 model (uint8 input) to a TFLite flatbuffer.

    The model is traced as a `tf.function` with a fixed uint8 signature and converted from that
    concrete function *without* passing the model as trackable object, so its variables are
    frozen into constants (passing it keeps resource variables, which LiteRT reads as garbage).
    quantize: none (float32), dynamic (int8 weights) or int8 (full-integer; needs
    `representative_images`, uint8 (N, H, W, 3)).
    """
    import tensorflow as tf

    spec = tf.TensorSpec((batch, *input_size, 3), tf.uint8, name="image")
    fn = tf.function(lambda image: model(image, training=False), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    if quantize in ("dynamic", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":
        if representative_images is None or not len(representative_images):
            raise CifarlabError("int8 quantization needs calibration images; pass --calibration-data")

        def representative():
            for image in representative_images:
                yield [np.asarray(image, np.uint8)[None]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    elif quantize not in ("none", "dynamic"):
        raise CifarlabError(f"unknown quantization {quantize!r}; use none, dynamic or int8")
    try:
        with warnings.catch_warnings():
            # uint8 pixel input is not a quantized tensor; TF warns it has no statistics for it
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return converter.convert()
    except Exception as exc:  # the converter raises ConverterError and plain exceptions
        raise CifarlabError(f"TFLite conversion failed ({exc.__class__.__name__}: {str(exc)[:300]})") from None


def load_runtime_classifier(path: str | Path, backend: str = "auto", num_threads: int | None = None):
    """A LiteRT or ONNX Runtime classifier for `path`.

    `.tflite` -> LiteRT; `.onnx` -> ONNX Runtime; `.keras` with backend="litert" -> converted in
    memory to a float32 flatbuffer and run in LiteRT (outputs match Keras to ~1e-7).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise CifarlabError(f"{path}: no such model file; pass --model PATH")
    if suffix == ".tflite":
        if backend not in ("auto", "litert"):
            raise CifarlabError(f"backend {backend!r} cannot run {path.name}; use auto or litert")
        meta = read_sidecar(path)
        if meta is None:
            raise _missing_metadata(path)
        return LiteRTClassifier(model_path=path, metadata=meta, num_threads=num_threads, source=str(path))
    if suffix == ".onnx":
        if backend not in ("auto", "onnx"):
            raise CifarlabError(f"backend {backend!r} cannot run {path.name}; use auto or onnx")
        return OnnxClassifier(path, read_sidecar(path), num_threads=num_threads)
    if suffix == ".keras" and backend == "litert":
        from cifarlab.models.io import load_keras_model

        model, meta = load_keras_model(path)
        content = keras_to_tflite(model, tuple(meta["input_size"]))
        return LiteRTClassifier(model_content=content, metadata=meta, num_threads=num_threads,
                                source=f"{path} (LiteRT)")
    raise CifarlabError(f"{path}: cannot run a '{suffix}' file with backend {backend!r}; "
                        "use a .keras, .tflite or .onnx model")
