"""Warm-up, the single-image call, temporal smoothing, the uncertainty label and open-set
rejection (the `unknown` label)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarlab.inference import Classifier, top_k
from cifarlab.inference.rejection import NO_REJECTION, UNKNOWN, Rejection, rejection_for

logger = logging.getLogger(__name__)
UNCERTAIN = "uncertain"


@dataclass
class Prediction:
    label: str                     # top-1 class, "uncertain" below the threshold, or "unknown"
    top_class: str                 # top-1 class regardless of the threshold
    confidence: float              # top-1 probability (after smoothing)
    top_k: list[tuple[str, float]]
    probabilities: np.ndarray
    ood_score: float | None = None  # out-of-distribution score (after smoothing); None: no score
    unknown: bool = False           # rejected: none of the classes


def live_rejection(classifier: Classifier, setting: str | float, path: Path | str) -> Rejection:
    """The model's open-set rejection for `--ood-threshold setting`, logged in one line: how it
    rejects, or that the model has no score to reject with (and how to add one)."""
    said: list[str] = []
    rejection = rejection_for(classifier, setting, str(path), say=said.append)
    logger.info(said[0] if said else rejection.describe())
    return rejection


class LivePredictor:
    """Runs the classifier on one crop per frame and smooths its output over time.

    smoothing A (0..1): p_t = A * p_{t-1} + (1 - A) * p_new (exponential moving average), for the
    probabilities and the open-set score alike; 0 turns it off, so each frame's output is exactly
    the model's. threshold T: a top-1 probability below T is shown as "uncertain". ood_threshold
    (`--ood-threshold`; None: no rejection, nothing logged): a smoothed score above the model's
    rejection threshold is shown as "unknown", winning over "uncertain", while `rejecting` is on
    (key u). Each model gets its own predictor, so a swapped-in model rejects by its own threshold.
    """

    def __init__(self, classifier: Classifier, smoothing: float = 0.0, threshold: float = 0.0,
                 top_k: int = 3, ood_threshold: str | float | None = None,
                 path: Path | str = "MODEL"):
        self.classifier = classifier
        self.class_names = list(classifier.class_names)
        self.input_size = tuple(classifier.input_size)
        self.backend = getattr(classifier, "backend", "?")
        self.smoothing, self.threshold = smoothing, threshold
        self.top_k = min(top_k, len(self.class_names))
        self.rejection = (NO_REJECTION if ood_threshold is None
                          else live_rejection(classifier, ood_threshold, path))
        self.rejecting = True
        self._call = classifier.predict_one_scored
        self._ema: np.ndarray | None = None
        self._ema_score: float | None = None

    def warmup(self, runs: int = 3) -> float:
        """Run a few dummy inferences (graph tracing, allocation); returns the last one's ms."""
        dummy = np.zeros((*self.input_size, 3), np.uint8)
        ms = 0.0
        for _ in range(runs):
            _, ms = self.infer(dummy)
        return ms

    def infer(self, rgb: np.ndarray) -> tuple[tuple[np.ndarray, float | None], float]:
        """((probabilities, score or None), milliseconds) of one crop; `update` takes the pair."""
        start = time.perf_counter()
        probs, score = self._call(rgb)
        ms = (time.perf_counter() - start) * 1000.0
        return (np.asarray(probs, dtype=np.float32), score), ms

    def reset(self) -> None:
        self._ema, self._ema_score = None, None

    def update(self, output: np.ndarray | tuple[np.ndarray, float | None]) -> Prediction:
        """The prediction after this frame's output: probabilities, or (probabilities, score)."""
        probs, score = output if isinstance(output, tuple) else (output, None)
        continuing = self.smoothing > 0 and self._ema is not None and self._ema.shape == probs.shape
        self._ema = self._smooth(self._ema, probs) if continuing else probs.astype(np.float32, copy=True)
        self._ema_score = self._smooth_score(score, continuing)
        p = self._ema
        top = top_k(p, self.class_names, self.top_k)
        best, confidence = top[0]
        unknown = self.rejecting and self.rejection.is_unknown(self._ema_score)
        label = UNKNOWN if unknown else best if confidence >= self.threshold else UNCERTAIN
        return Prediction(label, best, confidence, top, p, self._ema_score, unknown)

    def _smooth(self, past, new):
        return self.smoothing * past + (1.0 - self.smoothing) * new

    def _smooth_score(self, score: float | None, continuing: bool) -> float | None:
        if score is None:
            return None
        if continuing and self._ema_score is not None:
            return float(self._smooth(self._ema_score, float(score)))
        return float(score)
