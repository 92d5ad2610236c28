"""The training loss: cross-entropy, or LogitNorm or an energy margin for a better open-set score.

LogitNorm (Wei et al., ICML 2022) trains on the logits scaled to a fixed norm 1/T, so the
network cannot lower the loss by inflating the logits of everything it sees, the reason
plain cross-entropy makes a net over-confident on images of no class. The model's output is
its probabilities; the loss reads the logits Keras keeps on a softmax output (as Keras's own
cross-entropy does), else the log-probabilities: the logits up to the constant the softmax
ignores. Either way they are centred on their mean before the norm is taken, so both give the
same loss.
"""

from __future__ import annotations

import keras
from keras import ops

TINY = 1e-30  # floor of a probability before its log (float32 holds down to about 1e-38)

# The energy margins (Liu et al., NeurIPS 2020): known images' energy -logsumexp(logits) is pushed
# below ENERGY_IN, outliers' above ENERGY_OUT; set between the energies the `camera` recipe's
# uniform-target outlier exposure gives each (docs/results.md#real-photos).
ENERGY_IN, ENERGY_OUT = -15.0, -5.0


def logits_of(y_pred):
    """The float32 logits of a softmax output (Keras keeps them on it), else its log-probabilities."""
    logits = getattr(y_pred, "_keras_logits", None)  # probabilities that saturate have no gradient
    logits = ops.log(ops.clip(y_pred, TINY, 1.0)) if logits is None else logits
    return ops.cast(logits, "float32")


@keras.saving.register_keras_serializable("cifarlab")
class LogitNormLoss(keras.losses.Loss):
    def __init__(self, temperature: float, label_smoothing: float = 0.0, name: str = "logit_norm", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = temperature
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        logits = logits_of(y_pred)
        logits = logits - ops.mean(logits, axis=-1, keepdims=True)
        norm = ops.sqrt(ops.sum(ops.square(logits), axis=-1, keepdims=True)) + 1e-7
        return keras.losses.categorical_crossentropy(y_true, logits / (norm * self.temperature),
                                                     from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable("cifarlab")
class EnergyMarginLoss(keras.losses.Loss):
    """Cross-entropy plus `weight` x the squared energy hinges: known images (a one-hot target)
    above ENERGY_IN, and outliers (the uniform target of --outliers) below ENERGY_OUT, where the
    outliers get no cross-entropy. Needs the logits Keras keeps on a softmax output: the
    log-probabilities lose the offset the energy measures."""

    def __init__(self, weight: float, label_smoothing: float = 0.0, name: str = "energy_margin", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight = weight
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        logits = logits_of(y_pred)
        y_true = ops.cast(y_true, "float32")
        energy = -ops.logsumexp(logits, axis=-1)
        outlier = ops.max(y_true, axis=-1) * ops.cast(ops.shape(y_true)[-1], "float32") < 1.5
        known = keras.losses.categorical_crossentropy(y_true, logits, from_logits=True,
                                                      label_smoothing=self.label_smoothing)
        known = known + self.weight * ops.square(ops.relu(energy - ENERGY_IN))
        return ops.where(outlier, self.weight * ops.square(ops.relu(ENERGY_OUT - energy)), known)

    def get_config(self) -> dict:
        return {**super().get_config(), "weight": self.weight, "label_smoothing": self.label_smoothing}


def make_loss(cfg) -> keras.losses.Loss:
    if cfg.energy_margin:
        return EnergyMarginLoss(cfg.energy_margin, cfg.label_smoothing)
    if cfg.logit_norm:
        return LogitNormLoss(cfg.logit_norm, cfg.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
