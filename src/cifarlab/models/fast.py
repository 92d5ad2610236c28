"""`fast`: an airbench-style network built for accuracy per CPU-minute.

Each trick, once:
- 2x2 patch-whitening stem, frozen, computed from the training images: decorrelated input
  features from step one, so fewer epochs are needed (airbench).
- Three conv blocks (conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU): pooling right after
  the first conv of a block halves the cost of everything after it.
- Global max-pool head: no large dense layer to train; logits scaled by 1/9 (airbench) so the
  softmax starts unsaturated.
- BatchNorm momentum 0.6 (Keras convention: weight of the old value) so statistics track the
  fast-moving weights of a short schedule; no BN scale (airbench): the convolutions before it are
  scale-free anyway, and the biases alone get a boosted learning rate (training/optim.py).
- Identity ("dirac") initialisation of the first filters of each conv: the network starts close
  to a shallow one and deepens as it trains.
- BatchNorm on TensorFlow's fused kernel and GELU with an XLA-fused analytic gradient
  (models/layers.py): the same function as Keras's layers at a fraction of their training cost;
  `layers="keras"` builds the network with Keras's own layers (model files trained with them
  load with them).
"""

from __future__ import annotations

import keras
import numpy as np

from cifarlab.models.layers import DEFAULT_LAYER_SET, LayerSet, layer_set
from cifarlab.models.metadata import LOGITS
from cifarlab.models.registry import normalized_input, register, softmax_head

WHITENING_PATCH = 2


def whitening_kernel(images: np.ndarray, mean: np.ndarray, std: np.ndarray, eps: float,
                     sample: int = 5000) -> np.ndarray:
    """Conv kernel (2, 2, 3, 24) that whitens 2x2 patches: eigenvectors scaled by 1/sqrt(eigval),
    each with its negation so ReLU-like activations keep both signs."""
    x = (images[:sample].astype(np.float32) - mean) / std
    patches = np.lib.stride_tricks.sliding_window_view(x, (WHITENING_PATCH, WHITENING_PATCH), axis=(1, 2))
    patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, WHITENING_PATCH * WHITENING_PATCH * 3)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
    filters = eigenvectors.T / np.sqrt(eigenvalues + eps)[:, None]
    filters = np.concatenate([filters, -filters])  # (24, 12)
    return filters.reshape(-1, WHITENING_PATCH, WHITENING_PATCH, 3).transpose(1, 2, 3, 0).astype(np.float32)


def dirac_init(conv: keras.layers.Conv2D) -> None:
    """Make output channel i (for i < input channels) pass input channel i through unchanged."""
    kernel = conv.kernel.numpy()
    k, _, channels_in, channels_out = kernel.shape
    n = min(channels_in, channels_out)
    kernel[:, :, :, :n] = 0.0
    kernel[k // 2, k // 2, np.arange(n), np.arange(n)] = 1.0
    conv.kernel.assign(kernel)


def conv_bn_gelu(x, filters: int, pool: bool, layers: LayerSet):
    conv = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
    x = conv(x)
    dirac_init(conv)
    if pool:
        x = keras.layers.MaxPooling2D()(x)
    x = layers.norm(momentum=0.6, epsilon=1e-5, scale=False)(x)
    return layers.activation()(x)


@register("fast", "airbench-style network for accuracy per CPU-minute",
          options=("widths", "whitening_eps", "layers"), init_from_data=True)
def fast_net(input_size, num_classes, mean, std, widths=(64, 256, 256), whitening_eps: float = 5e-4,
             init_images: np.ndarray | None = None, temperature: float = 1.0,
             layers: str | LayerSet = DEFAULT_LAYER_SET) -> keras.Model:
    layers = layer_set(layers)
    inputs, x = normalized_input(input_size, mean, std)
    stem = keras.layers.Conv2D(2 * WHITENING_PATCH**2 * 3, WHITENING_PATCH, padding="valid",
                               use_bias=True, name="whiten")
    x = layers.activation()(stem(x))
    if init_images is not None:
        kernel = whitening_kernel(init_images, mean, std, whitening_eps)
        stem.set_weights([kernel, np.zeros(24, np.float32)])
    stem.trainable = False
    for width in widths:
        x = conv_bn_gelu(x, width, pool=True, layers=layers)
        x = conv_bn_gelu(x, width, pool=False, layers=layers)
    x = keras.layers.GlobalMaxPooling2D()(x)
    x = keras.layers.Dense(num_classes, use_bias=False, name=LOGITS)(x)
    x = keras.layers.Rescaling(1 / 9, name="temper")(x)  # small initial logits: no early saturation
    outputs = softmax_head(x, temperature)
    return keras.Model(inputs, outputs, name="fast")
