"""Backend choice, warm-up, the single-image call, temporal smoothing and the uncertainty label."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.models.classifier import load_classifier
from cifarlab.models.io import read_metadata, resolve_model_path

UNCERTAIN = "uncertain"


def _load_runtime(path: Path, backend: str, threads: int | None):
    from cifarlab.export.runtimes import load_runtime_classifier

    return load_runtime_classifier(path, backend, num_threads=threads)


def _set_tf_threads(threads: int | None) -> None:
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started (e.g. a second run in one process)
        pass


def load_live_classifier(model: str | Path | None, backend: str = "auto", threads: int | None = None,
                         log=print):
    """The classifier for the live loop.

    `auto`: LiteRT (a .keras model is converted in memory; ~10x less per-call overhead than
    TensorFlow) when `cifarlab.export.runtimes` and ai-edge-litert are available, else Keras
    through a traced tf.function. `.tflite`/`.onnx` files always use their own runtime.
    A file that is not a cifarlab model fails with `load_classifier`'s own error.
    """
    path = resolve_model_path(model)
    suffix = path.suffix.lower()
    if suffix in (".tflite", ".onnx"):
        if backend == "keras":
            raise CifarlabError(f"--backend keras cannot run {path.name}; use auto or litert")
        return _load_runtime(path, "auto", threads)
    if suffix == ".keras":
        read_metadata(path)  # a foreign file fails here with the model loader's message
    if backend == "litert":
        return _load_runtime(path, "litert", threads)
    if backend == "auto" and suffix == ".keras":
        try:
            return _load_runtime(path, "litert", threads)
        except Exception as exc:  # noqa: BLE001 - no LiteRT wheel / conversion failed: use Keras
            log(f"backend: keras (LiteRT unavailable: {exc.__class__.__name__}: {exc})")
    _set_tf_threads(threads)
    return load_classifier(path, "keras")


def single_image_call(classifier):
    """fn(HxWx3 uint8 RGB) -> (classes,) probabilities, using the backend's fastest path."""
    for name in ("predict_one", "predict_single", "predict_image"):
        fn = getattr(classifier, name, None)
        if callable(fn):
            return lambda image: np.asarray(fn(image)).reshape(-1)
    return lambda image: classifier.predict(image[None])[0]


@dataclass
class Prediction:
    label: str                     # top-1 class, or "uncertain" below the threshold
    top_class: str                 # top-1 class regardless of the threshold
    confidence: float              # top-1 probability (after smoothing)
    top_k: list[tuple[str, float]]
    probabilities: np.ndarray


class LivePredictor:
    """Runs the classifier on one crop per frame and smooths the probabilities over time.

    smoothing A (0..1): p_t = A * p_{t-1} + (1 - A) * p_new (exponential moving average);
    0 turns it off, so each frame's output is exactly the model's. threshold T: a top-1
    probability below T is shown as "uncertain".
    """

    def __init__(self, classifier, smoothing: float = 0.0, threshold: float = 0.0, top_k: int = 3):
        self.classifier = classifier
        self.class_names = list(classifier.class_names)
        self.input_size = tuple(classifier.input_size)
        self.backend = getattr(classifier, "backend", "?")
        self.smoothing, self.threshold = smoothing, threshold
        self.top_k = min(top_k, len(self.class_names))
        self._call = single_image_call(classifier)
        self._ema: np.ndarray | None = None

    def warmup(self, runs: int = 3) -> float:
        """Run a few dummy inferences (graph tracing, allocation); returns the last one's ms."""
        dummy = np.zeros((*self.input_size, 3), np.uint8)
        ms = 0.0
        for _ in range(runs):
            _, ms = self.infer(dummy)
        return ms

    def infer(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        probs = np.asarray(self._call(rgb), dtype=np.float32)
        return probs, (time.perf_counter() - start) * 1000.0

    def reset(self) -> None:
        self._ema = None

    def update(self, probs: np.ndarray) -> Prediction:
        if self.smoothing > 0 and self._ema is not None and self._ema.shape == probs.shape:
            self._ema = self.smoothing * self._ema + (1.0 - self.smoothing) * probs
        else:
            self._ema = probs.astype(np.float32, copy=True)
        p = self._ema
        order = np.argsort(-p, kind="stable")[: self.top_k]
        top = [(self.class_names[i], float(p[i])) for i in order]
        best, confidence = top[0]
        label = best if confidence >= self.threshold else UNCERTAIN
        return Prediction(label, best, confidence, top, p)
