"""LogitNorm (training/loss.py): the formula, its scale invariance, and a run that trains and resumes with it."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from cifarlab.training.config import TrainConfig
from cifarlab.training.loss import LogitNormLoss
from cifarlab.training.train import train


def logit_norm_reference(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    centred = logits - logits.mean(1, keepdims=True)
    scaled = centred / (temperature * np.linalg.norm(centred, axis=1, keepdims=True))
    return float(-log_softmax(scaled, axis=1)[np.arange(len(labels)), labels].mean())


def test_logit_norm_is_cross_entropy_on_logits_scaled_to_norm_one_over_t():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(16, 6)) * 3, rng.integers(0, 6, 16)
    targets = np.eye(6)[labels]
    loss = LogitNormLoss(0.04)
    got = float(loss(targets, softmax(logits, axis=1).astype(np.float32)))
    np.testing.assert_allclose(got, logit_norm_reference(logits, labels, 0.04), rtol=1e-4)
    # inflating every logit five-fold lowers cross-entropy on the right class, not LogitNorm
    louder = float(loss(targets, softmax(5 * logits, axis=1).astype(np.float32)))
    np.testing.assert_allclose(louder, got, rtol=1e-3)
    # a Keras softmax output carries its logits: the loss reads them and agrees
    keras_softmax = keras.layers.Activation("softmax")(keras.ops.convert_to_tensor(logits.astype(np.float32)))
    assert hasattr(keras_softmax, "_keras_logits")
    np.testing.assert_allclose(float(loss(targets, keras_softmax)), got, rtol=1e-4)
    plain = keras.losses.CategoricalCrossentropy()
    assert float(plain(targets, softmax(5 * logits, axis=1))) != pytest.approx(float(plain(targets, softmax(logits, axis=1))))


def test_a_logit_norm_run_trains_and_its_checkpoint_reloads_with_the_loss(shapes_folder, tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(data=str(shapes_folder), model="fast", widths=(8, 16, 16), epochs=1, batch_size=32,
                      image_size=32, logit_norm=0.04, label_smoothing=0.0, quiet=True, out=out))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 1 and summary["rollbacks"] == []
    assert 0.0 <= summary["val_metrics"]["accuracy"] <= 1.0
    assert np.isfinite(np.genfromtxt(out / "log.csv", delimiter=",", names=True)["loss"]).all()
    checkpoint = keras.saving.load_model(out / "checkpoint" / "last.keras", safe_mode=True)
    assert isinstance(checkpoint.loss, LogitNormLoss) and checkpoint.loss.temperature == 0.04
