"""Warm-up, the single-image call, temporal smoothing and the uncertainty label."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cifarlab.inference import Classifier, top_k

UNCERTAIN = "uncertain"


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

    def __init__(self, classifier: Classifier, smoothing: float = 0.0, threshold: float = 0.0, top_k: int = 3):
        self.classifier = classifier
        self.class_names = list(classifier.class_names)
        self.input_size = tuple(classifier.input_size)
        self.backend = getattr(classifier, "backend", "?")
        self.smoothing, self.threshold = smoothing, threshold
        self.top_k = min(top_k, len(self.class_names))
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
        probs = np.asarray(self.classifier.predict_one(rgb), dtype=np.float32)
        return probs, (time.perf_counter() - start) * 1000.0

    def reset(self) -> None:
        self._ema = None

    def update(self, probs: np.ndarray) -> Prediction:
        if self.smoothing > 0 and self._ema is not None and self._ema.shape == probs.shape:
            self._ema = self.smoothing * self._ema + (1.0 - self.smoothing) * probs
        else:
            self._ema = probs.astype(np.float32, copy=True)
        p = self._ema
        top = top_k(p, self.class_names, self.top_k)
        best, confidence = top[0]
        label = best if confidence >= self.threshold else UNCERTAIN
        return Prediction(label, best, confidence, top, p)
