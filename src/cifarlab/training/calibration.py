"""Temperature scaling (Guo et al., 2017): one scalar fitted on held-out data after training.

Dividing the logits by T changes no prediction, only how confident they are; label smoothing
leaves a network under-confident, and T < 1 undoes that. Since softmax ignores a constant shift,
log-probabilities serve as logits. A temperature fitted on a handful of images is noise (six
images a model gets right push it to its bound, and the model then says 100% for everything), so
with fewer than MIN_CALIBRATION_IMAGES validation images none is fitted.

`cifarlab calibrate` refits it on other photos (`calibrate_file`): a model trained on several
photo sources is calibrated for their mix, and one temperature cannot suit each source.
"""

from __future__ import annotations

import keras
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from cifarlab.data import Split
from cifarlab.errors import CifarlabError
from cifarlab.models import openset
from cifarlab.models.metadata import TEMPERATURE
from cifarlab.models.registry import softmax_head
from cifarlab.training.refit import open_refit

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
    """The T in [0.25, 4] minimizing the negative log-likelihood on `split` (`temperature_for`)."""
    return temperature_for(log_probabilities(model, split), split.labels)


def log_probabilities(model: keras.Model, split: Split) -> np.ndarray:
    return np.log(np.clip(predict_probabilities(model, split).astype(np.float64), 1e-12, 1))


def temperature_for(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.25, 4] minimizing the negative log-likelihood of (N, classes) log-probabilities.

    Bounded: a small validation split that the model gets all right would otherwise push T to
    zero (infinitely confident)."""
    result = minimize_scalar(lambda t: nll(log_probs, labels, t), bounds=(0.25, 4.0), method="bounded")
    return float(result.x)


def probability_metrics(model: keras.Model, split: Split) -> dict:
    """Accuracy and log-loss of a finished model on a split (what the model file reports)."""
    log_probs = log_probabilities(model, split)
    return {"accuracy": float((log_probs.argmax(1) == split.labels).mean()),
            "log_loss": nll(log_probs, split.labels, 1.0),
            "temperature": temperature_of(model)}


def temperature_of(model: keras.Model) -> float:
    return float(1.0 / model.get_layer(TEMPERATURE).scale)


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """`model` whose probabilities are softmax(logits / temperature); its ood_score (computed from
    the logits, before the temperature) kept as it is."""
    base = openset.without_ood_score(model)
    head = softmax_head(base.get_layer(TEMPERATURE).input, temperature)
    return openset.with_score_of(keras.Model(base.input, head, name=base.name), model)


def calibrate_file(model_path, data, out=None, val_fraction: float | None = None):
    """`cifarlab calibrate`: refit the temperature of a `.keras` model file on the validation split
    of `data` (training/refit.py), written atomically to `out` (default: in place). Returns (path,
    {temperature, previous_temperature, images, log_loss, previous_log_loss})."""
    refit = open_refit(model_path, data, "fitting the temperature", val_fraction)
    val = refit.data.splits.get("val")
    if val is None or len(val) < MIN_CALIBRATION_IMAGES:
        raise CifarlabError(f"--data has {0 if val is None else len(val)} validation images; a temperature "
                            f"needs at least {MIN_CALIBRATION_IMAGES} (a DIR/val/<class>/ folder of photos)")
    log_probs = log_probabilities(openset.without_ood_score(refit.model), val)
    relative = temperature_for(log_probs, val.labels)  # on top of the model's own temperature
    previous = temperature_of(refit.model)
    fit = {"temperature": previous * relative, "previous_temperature": previous, "images": len(val),
           "log_loss": nll(log_probs, val.labels, relative), "previous_log_loss": nll(log_probs, val.labels, 1.0)}
    meta = refit.meta.with_changes(val_metrics={**refit.meta.val_metrics, "temperature": fit["temperature"]})
    return refit.save(with_temperature(refit.model, fit["temperature"]), meta, out), fit
