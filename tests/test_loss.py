"""The open-set losses (training/loss.py): LogitNorm's formula, its scale invariance, and a run that
trains and resumes with it; the energy margin's formula on the logits a softmax output keeps."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from cifarlab.training.config import TrainConfig
from cifarlab.training.loss import ENERGY_IN, ENERGY_OUT, EnergyMarginLoss, LogitNormLoss
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


@pytest.mark.parametrize("options, loss, setting", [
    (dict(logit_norm=0.04), LogitNormLoss, ("temperature", 0.04)),
    (dict(energy_margin=0.01, outliers=0.25), EnergyMarginLoss, ("weight", 0.01)),
])
def test_a_run_trains_with_the_loss_and_its_checkpoint_reloads_with_it(shapes_folder, tmp_path, options, loss,
                                                                      setting):
    out = tmp_path / "run"
    train(TrainConfig(data=str(shapes_folder), model="fast", widths=(8, 16, 16), epochs=1, batch_size=32,
                      image_size=32, label_smoothing=0.0, quiet=True, out=out, **options))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 1 and summary["rollbacks"] == []
    assert 0.0 <= summary["val_metrics"]["accuracy"] <= 1.0
    assert np.isfinite(np.genfromtxt(out / "log.csv", delimiter=",", names=True)["loss"]).all()
    checkpoint = keras.saving.load_model(out / "checkpoint" / "last.keras", safe_mode=True)
    assert isinstance(checkpoint.loss, loss) and getattr(checkpoint.loss, setting[0]) == setting[1]


def test_energy_margin_pushes_known_energies_down_and_outlier_energies_up():
    """Known rows: cross-entropy + weight x relu(E - ENERGY_IN)^2; rows with the uniform target:
    weight x relu(ENERGY_OUT - E)^2 only; E = -logsumexp(logits), read from the logits a softmax
    output keeps (its log-probabilities would give E = 0 for every image)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (6, 10)).astype(np.float32) + np.array([0, 3, 12, -8, 6, 30], np.float32)[:, None]
    targets = np.eye(10, dtype=np.float32)[[1, 2, 3, 4, 5, 6]]
    targets[[1, 3, 4]] = 0.1  # the uniform target of an outlier
    energy = -np.log(np.exp(logits.astype(np.float64)).sum(1))
    cross_entropy = -log_softmax(logits.astype(np.float64), axis=1)[np.arange(6), targets.argmax(1)]
    outlier = targets.max(1) < 0.5
    want = np.where(outlier, 0.1 * np.maximum(ENERGY_OUT - energy, 0) ** 2,
                    cross_entropy + 0.1 * np.maximum(energy - ENERGY_IN, 0) ** 2)
    assert (want[outlier] > 0).any() and (want[outlier] == 0).any()  # both sides of the outer margin
    assert ((energy > ENERGY_IN) & ~outlier).any() and ((energy < ENERGY_IN) & ~outlier).any()
    probabilities = keras.activations.softmax(keras.ops.convert_to_tensor(logits))
    got = EnergyMarginLoss(0.1, reduction=None)(targets, probabilities)
    np.testing.assert_allclose(np.array(got), want, rtol=1e-4, atol=1e-4)
    config = EnergyMarginLoss(0.1, 0.2).get_config()
    assert EnergyMarginLoss.from_config(config).get_config() == config
