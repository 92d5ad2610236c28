"""A run whose loss becomes NaN/inf goes back to its last good checkpoint at half the learning
rate and goes on; the rollback is logged and recorded in summary.json and state.json."""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pytest

from cifarlab.training.config import TrainConfig
from cifarlab.training.rollback import ScaledSchedule, with_scaled_learning_rate
from cifarlab.training.train import train

QUICK = dict(image_size=32, batch_size=32, quiet=True)


class PoisonOnce(keras.callbacks.Callback):
    """Turns the weights into NaN at the start of epoch `epoch` (0-based), the first time only."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch, self.done = epoch, False

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch and not self.done:
            self.done = True
            for variable in self.model.trainable_variables:
                variable.assign(variable * np.nan)


@pytest.mark.slow
def test_a_diverged_epoch_rolls_back_at_half_the_learning_rate(shapes_folder, tmp_path, caplog):
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="cifarlab"):
        summary = train(TrainConfig(data=str(shapes_folder), model="fast", out=out, epochs=3, **QUICK),
                        extra_callbacks=[PoisonOnce(1)])
    expected = [{"diverged_in_epoch": 2, "back_to_epoch": 1, "lr_scale": 0.5, "try": 1}]
    assert summary["rollbacks"] == expected
    assert json.loads((out / "summary.json").read_text())["rollbacks"] == expected
    assert "loss became NaN/inf in epoch 2: back to epoch 1 with the learning rate x0.5 (try 1 of 3)" \
        in caplog.text
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 3 and state["lr_scale"] == 0.5 and state["rollbacks"] == expected
    optimizer = keras.saving.load_model(out / "checkpoint" / "last.keras").optimizer
    schedule = optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "ScaledSchedule" and schedule["config"]["factor"] == 0.5
    steps = summary["train_images"] // 32
    assert int(optimizer.iterations) == 3 * steps  # the diverged epoch's steps were undone
    model = keras.saving.load_model(out / "model.keras", compile=False)
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.parametrize("learning_rate", [0.1, "schedule"])
def test_a_scaled_optimizer_keeps_its_state_and_scales_its_steps(learning_rate):
    variable = keras.Variable(np.ones(3, np.float32))
    lr = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5) if learning_rate == "schedule" else 0.1
    optimizer = keras.optimizers.SGD(lr, momentum=0.9)
    optimizer.apply([keras.ops.ones(3)], [variable])
    scaled = with_scaled_learning_rate(optimizer, [variable], 0.25)
    assert int(scaled.iterations) == 1
    np.testing.assert_allclose(scaled.variables[-1].numpy(), optimizer.variables[-1].numpy())  # momentum
    np.testing.assert_allclose(float(scaled.learning_rate), 0.25 * float(optimizer.learning_rate), rtol=1e-6)
    twice = with_scaled_learning_rate(scaled, [variable], 0.5)  # scales compose, not nest
    if learning_rate == "schedule":
        assert isinstance(twice._learning_rate, ScaledSchedule) and twice._learning_rate.factor == 0.125
    np.testing.assert_allclose(float(twice.learning_rate), 0.125 * float(optimizer.learning_rate), rtol=1e-6)
