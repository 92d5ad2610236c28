"""The training loss: cross-entropy, or LogitNorm for a better open-set score.

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


@keras.saving.register_keras_serializable("cifarlab")
class LogitNormLoss(keras.losses.Loss):
    def __init__(self, temperature: float, label_smoothing: float = 0.0, name: str = "logit_norm", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = temperature
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        logits = getattr(y_pred, "_keras_logits", None)  # probabilities that saturate have no gradient
        logits = ops.log(ops.clip(y_pred, TINY, 1.0)) if logits is None else logits
        logits = ops.cast(logits, "float32")
        logits = logits - ops.mean(logits, axis=-1, keepdims=True)
        norm = ops.sqrt(ops.sum(ops.square(logits), axis=-1, keepdims=True)) + 1e-7
        return keras.losses.categorical_crossentropy(y_true, logits / (norm * self.temperature),
                                                     from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature, "label_smoothing": self.label_smoothing}


def make_loss(cfg) -> keras.losses.Loss:
    if cfg.logit_norm:
        return LogitNormLoss(cfg.logit_norm, cfg.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
