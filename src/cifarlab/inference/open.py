"""`open_classifier`: the one way every command turns a model file into a `Classifier`."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from cifarlab.errors import CifarlabError
from cifarlab.inference.base import Classifier
from cifarlab.inference.keras_runtime import KerasClassifier
from cifarlab.models.io import load_keras_model, resolve_model_path
from cifarlab.models.metadata import read_sidecar

BACKENDS = ("auto", "keras", "litert", "onnx")
BACKEND_HELP = ("runtime: auto = LiteRT for .keras and .tflite files when ai-edge-litert is "
                "installed and no GPU is visible (faster per image than Keras, the same outputs: "
                "docs/results.md, Inference runtimes), Keras otherwise; ONNX Runtime for .onnx "
                "files")
RUNTIMES_BY_SUFFIX = {".keras": ("keras", "litert"), ".tflite": ("litert",), ".onnx": ("onnx",)}

logger = logging.getLogger(__name__)


@functools.cache
def litert_preferred() -> bool:
    """What `auto` picks for a `.keras` file: LiteRT unless it is missing or a GPU is visible."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def open_classifier(path: str | Path | None = None, backend: str = "auto", threads: int | None = None,
                    log=logger.warning) -> Classifier:
    """Open a `.keras`, `.tflite` or `.onnx` model made by cifarlab (default: the shipped model).

    backend: auto (see BACKEND_HELP), keras, litert (a `.keras` file is converted in memory) or
    onnx. A backend that cannot run the file is a clear error; `auto` falls back from LiteRT to
    Keras (with a log line) if the conversion fails.
    """
    if backend not in BACKENDS:
        raise CifarlabError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    path = resolve_model_path(path)
    suffix = path.suffix.lower()
    if suffix not in RUNTIMES_BY_SUFFIX:
        raise CifarlabError(f"{path}: unknown model type '{suffix}'; use a .keras, .tflite or .onnx file")
    if backend != "auto" and backend not in RUNTIMES_BY_SUFFIX[suffix]:
        runtimes = ", ".join(("auto", *RUNTIMES_BY_SUFFIX[suffix]))
        raise CifarlabError(f"backend {backend!r} cannot run {path.name}; use {runtimes}")
    if not path.is_file():
        raise CifarlabError(f"{path}: no such model file; pass --model PATH")
    if suffix == ".keras":
        return _open_keras(path, backend, threads, log)
    metadata = read_sidecar(path)
    if suffix == ".onnx":
        from cifarlab.inference.onnx_runtime import OnnxClassifier

        return OnnxClassifier(path, metadata, num_threads=threads)
    if metadata is None:
        raise CifarlabError(f"{path}: no class names found (expected the sidecar {path.name}.json "
                            "written by `cifarlab export`); copy it next to the model or re-export")
    from cifarlab.inference.litert import LiteRTClassifier

    return LiteRTClassifier(model_path=path, metadata=metadata, num_threads=threads, source=str(path))


def _open_keras(path: Path, backend: str, threads: int | None, log) -> Classifier:
    model, metadata = load_keras_model(path)
    if backend == "litert" or (backend == "auto" and litert_preferred()):
        from cifarlab.inference.litert import LiteRTClassifier

        try:
            return LiteRTClassifier.from_keras(model, metadata, threads, source=f"{path} (LiteRT)")
        except (CifarlabError, ImportError) as exc:
            if backend == "litert":
                raise
            log(f"backend: keras (LiteRT unavailable: {exc})")
    return KerasClassifier(model, metadata, threads)
