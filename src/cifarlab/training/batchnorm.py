"""Run options that act on every BatchNormalization layer: momentum and freezing."""

from __future__ import annotations

import contextlib

import keras


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer, nested models' layers included."""
    return [inner for layer in model.layers
            for inner in ([layer] + (all_layers(layer) if isinstance(layer, keras.Model) else []))]


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


def set_bn_momentum(model: keras.Model, momentum: float, at_most: bool) -> list[float]:
    """Set (or with at_most, cap) the momentum of every BatchNormalization layer; returns the
    previous values of the layers it changed."""
    changed = []
    for layer in batchnorm_layers(model):
        if layer.momentum != momentum and not (at_most and layer.momentum <= momentum):
            changed.append(layer.momentum)
            layer.momentum = momentum
    return changed


@contextlib.contextmanager
def frozen_batchnorm(model: keras.Model, freeze: bool):
    """BatchNorm layers in inference mode (statistics and offsets frozen) inside the block."""
    layers = batchnorm_layers(model) if freeze else []
    for layer in layers:
        layer.trainable = False
    try:
        yield
    finally:  # also a resumed run's, whose checkpoint was saved frozen
        for layer in layers:
            layer.trainable = True
