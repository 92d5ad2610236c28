"""Temperature scaling (Guo et al., 2017): one scalar fitted on held-out data after training.

Dividing the logits by T changes no prediction, only how confident they are; label smoothing
leaves a network under-confident, and T < 1 undoes that. Since softmax ignores a constant shift,
log-probabilities serve as logits. A temperature fitted on a handful of images is noise (six
images a model gets right push it to its bound, and the model then says 100% for everything), so
with fewer than MIN_CALIBRATION_IMAGES validation images none is fitted.
"""

from __future__ import annotations

import keras
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from cifarlab.data import Split
from cifarlab.models.metadata import TEMPERATURE

MIN_CALIBRATION_IMAGES = 100  # fewer validation images: no fit (training/train.py keeps T = 1)


def outputs_in_batches(model: keras.Model, images, batch_size: int = 500) -> list[np.ndarray]:
    """Every output of `model` on array-like `images` (a memory map: read a batch at a time)."""
    outputs = [model(np.asarray(images[i : i + batch_size]), training=False)
               for i in range(0, len(images), batch_size)]
    outputs = [o if isinstance(o, (list, tuple)) else [o] for o in outputs]
    return [np.concatenate([np.asarray(o[k]) for o in outputs]) for k in range(len(outputs[0]))]


def predict_probabilities(model: keras.Model, split: Split) -> np.ndarray:
    return outputs_in_batches(model, split.rows)[0]


def nll(log_probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = log_softmax(log_probs / temperature, axis=1)
    return float(-scaled[np.arange(len(labels)), labels].mean())


def fit_temperature(model: keras.Model, split: Split) -> float:
    """The T in [0.25, 4] minimizing the negative log-likelihood on `split`.

    Bounded: a small validation split that the model gets all right would otherwise push T to
    zero (infinitely confident)."""
    log_probs = np.log(np.clip(predict_probabilities(model, split).astype(np.float64), 1e-12, 1))
    result = minimize_scalar(lambda t: nll(log_probs, split.labels, t), bounds=(0.25, 4.0), method="bounded")
    return float(result.x)


def probability_metrics(model: keras.Model, split: Split) -> dict:
    """Accuracy and log-loss of a finished model on a split (what the model file reports)."""
    probs = predict_probabilities(model, split).astype(np.float64)
    log_probs = np.log(np.clip(probs, 1e-12, 1))
    return {"accuracy": float((probs.argmax(1) == split.labels).mean()),
            "log_loss": nll(log_probs, split.labels, 1.0),
            "temperature": float(1.0 / model.get_layer(TEMPERATURE).scale)}
