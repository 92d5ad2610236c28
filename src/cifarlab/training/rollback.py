"""Recovering from a diverged step: back to the last good checkpoint at a lower learning rate.

A run whose loss becomes NaN/inf (or blows up: training/checkpoint.py) goes back to its last
checkpoint (or its start when no epoch was saved yet), multiplies the learning rate by
`LR_FACTOR` and goes on; after `MAX_ROLLBACKS` such tries it stops with an error. The scale in force is a `ScaledSchedule` inside the saved
optimizer and `lr_scale` in the checkpoint's state.json, so a killed run resumes exactly.
"""

from __future__ import annotations

import keras

MAX_ROLLBACKS = 3
LR_FACTOR = 0.5


@keras.saving.register_keras_serializable("cifarlab")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule(step) * factor`."""

    def __init__(self, schedule, factor: float):
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        self.schedule, self.factor = schedule, float(factor)

    def __call__(self, step):
        return self.schedule(step) * self.factor

    def get_config(self) -> dict:
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule), "factor": self.factor}


def scaled_learning_rate(learning_rate, factor: float):
    """A learning rate (a number or a schedule, as an optimizer's config holds it) x factor."""
    if isinstance(learning_rate, dict):
        learning_rate = keras.optimizers.schedules.deserialize(learning_rate)
    if isinstance(learning_rate, ScaledSchedule):
        return ScaledSchedule(learning_rate.schedule, learning_rate.factor * factor)
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        return ScaledSchedule(learning_rate, factor)
    return float(learning_rate) * factor


def with_scaled_learning_rate(optimizer: keras.optimizers.Optimizer, variables: list,
                              factor: float) -> keras.optimizers.Optimizer:
    """A copy of `optimizer` (its step count, momenta and averages) whose learning rate is
    `factor` x the original's."""
    config = optimizer.get_config()
    config["learning_rate"] = scaled_learning_rate(config["learning_rate"], factor)
    copy = optimizer.__class__.from_config(config)
    copy.build(variables)
    if optimizer.built:
        for target, source in zip(copy.variables, optimizer.variables, strict=True):
            target.assign(source)
    if not isinstance(config["learning_rate"], ScaledSchedule):  # a variable, copied over just now
        copy.learning_rate = config["learning_rate"]
    return copy


def describe(rollback: dict) -> str:
    return (f"loss became NaN/inf in epoch {rollback['diverged_in_epoch']}: back to epoch "
            f"{rollback['back_to_epoch']} with the learning rate x{rollback['lr_scale']:g} "
            f"(try {rollback['try']} of {MAX_ROLLBACKS})")
