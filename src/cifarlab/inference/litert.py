"""LiteRT runtime: a `.tflite` file, or a Keras model converted in memory, run by XNNPACK.

The in-memory float32 conversion lives here because it is how this runtime runs a `.keras` model
(`open_classifier`'s `auto`); file exports, quantization and parity checks are `cifarlab.export`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.inference.base import MetadataMixin, default_threads, split_outputs, traced_call
from cifarlab.models.metadata import ModelMetadata

logger = logging.getLogger(__name__)


def _not_trackable_obj_notice(record: logging.LogRecord) -> bool:
    return "trackable_obj" not in record.getMessage()


@contextlib.contextmanager
def runtime_info_to_debug():
    """The LiteRT C++ runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to
    file descriptor 2 when an interpreter is first allocated, and offers Python no log level:
    capture fd 2 meanwhile, log its INFO lines at DEBUG and pass anything else on to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.startswith("INFO: "):
                    logger.debug("LiteRT: %s", line[len("INFO: "):])
                elif line.strip():
                    print(line, file=sys.stderr)


def keras_to_tflite(model, input_size: tuple[int, int], batch: int | None = None,
                    configure: Callable | None = None) -> bytes:
    """A TFLite flatbuffer of a Keras 3 model with a uint8 (batch, H, W, 3) input.

    Converted from the traced concrete function *without* passing the model as a trackable
    object, so its variables are frozen into constants (passing it keeps resource variables,
    which LiteRT reads as garbage). `configure(converter)` may set quantization options, and may
    return a `convert(converter) -> bytes` to call instead of `converter.convert()`.
    """
    import tensorflow as tf

    fn = traced_call(model, input_size, batch)
    absl = logging.getLogger("absl")
    absl.addFilter(_not_trackable_obj_notice)  # the deprecation notice for the path chosen above
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    finally:
        absl.removeFilter(_not_trackable_obj_notice)
    convert = (configure(converter) if configure is not None else None) or (lambda c: c.convert())
    try:
        with warnings.catch_warnings():
            # uint8 pixel input is not a quantized tensor; TF warns it has no statistics for it
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return convert(converter)
    except Exception as exc:  # the converter raises ConverterError and plain exceptions
        raise CifarlabError(f"TFLite conversion failed ({exc.__class__.__name__}: {str(exc)[:300]})") from None


class LiteRTClassifier(MetadataMixin):
    """A TFLite flatbuffer run by the LiteRT interpreter (XNNPACK delegate, the default)."""

    backend = "litert"

    def __init__(self, model_content: bytes | None = None, model_path: str | Path | None = None, *,
                 metadata: ModelMetadata, num_threads: int | None = None, source: str = ""):
        self.metadata = metadata
        self.source = source or str(model_path)
        with runtime_info_to_debug():
            self._open(model_content, model_path, num_threads)

    def _open(self, model_content: bytes | None, model_path, num_threads: int | None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interp = Interpreter(model_content=model_content,
                                       model_path=None if model_content else str(model_path),
                                       num_threads=num_threads or default_threads())
        except (ValueError, RuntimeError) as exc:
            raise CifarlabError(f"{self.source}: not a loadable LiteRT model ({exc})") from None
        inp, self._outs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inp) != 1 or len(self._outs) not in (1, 2):
            raise CifarlabError(f"{self.source}: expected a model with one input and one or two outputs")
        self._in = inp[0]
        self._in_index = self._in["index"]
        self.has_ood_score = len(self._outs) == 2
        shape = tuple(int(v) for v in self._in["shape_signature"])
        if len(shape) != 4 or shape[1:] != (*self.input_size, 3):
            raise CifarlabError(f"{self.source}: model input shape {shape} does not match metadata "
                                f"input_size {list(self.input_size)}; re-export the model")
        self._in_dtype = self._in["dtype"]
        if self._in_dtype not in (np.uint8, np.float32, np.int8):
            raise CifarlabError(f"{self.source}: unsupported model input type {self._in_dtype}")
        self._resizable = shape[0] in (-1, 0)  # a -1/None batch can be resized
        self._fixed_batch = 1 if self._resizable else shape[0]
        self._batch: int | None = None
        self._set_batch(self._fixed_batch)

    @classmethod
    def from_keras(cls, model, metadata: ModelMetadata, num_threads: int | None = None,
                   source: str = "") -> LiteRTClassifier:
        content = keras_to_tflite(model, metadata.input_size)
        return cls(model_content=content, metadata=metadata, num_threads=num_threads, source=source)

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

    def _output(self, detail: dict) -> np.ndarray:
        out = self._interp.get_tensor(detail["index"])
        scale, zero = detail["quantization"]
        if scale:
            return ((out.astype(np.float32) - zero) * scale).astype(np.float32)
        return out.astype(np.float32, copy=True)

    def _chunk(self, batch_size: int) -> int:
        return batch_size if self._resizable else self._fixed_batch

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = len(batch)
        if not self._resizable and n < self._fixed_batch:  # fixed batch: pad the last chunk
            batch = np.concatenate([batch, np.zeros((self._fixed_batch - n, *batch.shape[1:]), batch.dtype)])
        self._set_batch(len(batch))
        self._interp.set_tensor(self._in_index, self._prepare(np.ascontiguousarray(batch)))
        self._interp.invoke()
        probs, scores = split_outputs([self._output(d) for d in self._outs], self.metadata.num_classes,
                                      self.source)
        return probs[:n], (scores[:n] if scores is not None else None)
