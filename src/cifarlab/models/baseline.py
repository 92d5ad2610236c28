"""`baseline`: the network the project was first described with, kept faithfully (once `seed`).

Three blocks of conv-BN-conv-BN-maxpool-dropout (32/64/128 channels), then dense 256 with
dropout and a softmax head (0.82 M parameters). Trained with Adam, early stopping and
reduce-on-plateau (the `baseline` recipe, training/recipes.py). Its BatchNorm layers come from a `LayerSet`
(models/layers.py): the fused-kernel one by default, `layers="keras"` for Keras's own.
"""

from __future__ import annotations

import keras

from cifarlab.models.layers import DEFAULT_LAYER_SET, LayerSet, layer_set
from cifarlab.models.metadata import LOGITS
from cifarlab.models.registry import normalized_input, register, softmax_head


def conv_bn(x, filters: int, layers: LayerSet):
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    return layers.norm()(x)


# Adam, early stopping (best weights restored) and reduce-LR-on-plateau on validation loss.


@register("baseline", "the network the project was first described with", options=("dropout", "layers"))
def baseline_cnn(input_size, num_classes, mean, std, dropout: float = 0.25,
                 temperature: float = 1.0, layers: str | LayerSet = DEFAULT_LAYER_SET) -> keras.Model:
    layers = layer_set(layers)
    inputs, x = normalized_input(input_size, mean, std)
    for filters, rate in ((32, dropout), (64, dropout + 0.05), (128, dropout + 0.1)):
        x = conv_bn(conv_bn(x, filters, layers), filters, layers)
        x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Dropout(rate)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = layers.norm()(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Dense(num_classes, name=LOGITS)(x)
    outputs = softmax_head(x, temperature)
    return keras.Model(inputs, outputs, name="baseline")
