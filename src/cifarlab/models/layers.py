"""Normalisation and activation layers that train at the speed of the convolutions.

- `FusedBatchNormalization`: Keras's `BatchNormalization` whose training step is TensorFlow's
  fused kernel (`FusedBatchNormV3`: statistics and normalisation in one pass, bf16 in, float32
  statistics; a GPU kernel too). Inference is the parent's own code, so converters fold it as
  before, and anything the kernel cannot do (other backends, axis not last, masks, renorm,
  synchronized statistics) falls back to the parent.
- `GELU`: the forward of Keras's `gelu` (or its tanh / x*sigmoid(1.702x) forms) whose training
  step runs forward and analytic gradient as single XLA-fused element-wise loops, in float32
  whatever the input precision. Inference is Keras's own op, as an `Activation("gelu")` layer.
- `LayerSet`: which of these a network is built from (`LAYER_SETS["keras"]`: Keras's own layers).

bench/step_profile.py measures them (docs/results.md, Where the training step's time goes).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf

from cifarlab.errors import CifarlabError

FUSED_DTYPES = ("float16", "bfloat16", "float32")
SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
TANH_SCALE, TANH_CUBIC = math.sqrt(2.0 / math.pi), 0.044715
SIGMOID_SCALE = 1.702


def _on_tensorflow() -> bool:
    return keras.backend.backend() == "tensorflow"


@keras.saving.register_keras_serializable(package="cifarlab")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` trained with the fused kernel; same weights, config,
    momentum convention (moving = moving * momentum + batch * (1 - momentum), biased batch
    variance) and inference."""

    def call(self, inputs, training=None, mask=None):
        if training and self.trainable and self._fusable(inputs, mask):
            return self._fused_training_call(inputs)
        return super().call(inputs, training=training, mask=mask)

    def _fusable(self, inputs, mask) -> bool:
        return (_on_tensorflow() and mask is None and not self.renorm and not self.synchronized
                and self.axis in (-1, len(inputs.shape) - 1)
                and keras.backend.standardize_dtype(inputs.dtype) in FUSED_DTYPES)

    def _fused_training_call(self, inputs):
        channels = inputs.shape[-1]
        x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, channels])
        scale = self.gamma if self.scale else tf.ones([channels], tf.float32)
        offset = self.beta if self.center else tf.zeros([channels], tf.float32)
        empty = tf.constant([], tf.float32)
        y, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=scale, offset=offset, mean=empty, variance=empty, epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        # the kernel returns the unbiased variance; Keras averages the biased one
        count = tf.cast(tf.size(x, out_type=tf.int64) // channels, tf.float32)
        variance = unbiased * ((count - 1.0) / tf.maximum(count, 1.0))
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + variance * (1.0 - self.momentum))
        if x is not inputs:
            y = tf.reshape(y, tf.shape(inputs))
        return tf.cast(y, self.compute_dtype)


def _erf_cdf(x):
    return 0.5 * tf.math.erfc(-SQRT_HALF * x)


def _erf_value(x):
    return x * _erf_cdf(x)


def _erf_slope(x):
    return _erf_cdf(x) + x * INV_SQRT_2PI * tf.exp(-0.5 * x * x)


def _tanh_value(x):
    return 0.5 * x * (1.0 + tf.tanh(TANH_SCALE * (x + TANH_CUBIC * x * x * x)))


def _tanh_slope(x):
    t = tf.tanh(TANH_SCALE * (x + TANH_CUBIC * x * x * x))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * TANH_SCALE * (1.0 + 3.0 * TANH_CUBIC * x * x)


def _sigmoid_value(x):
    return x * keras.ops.sigmoid(SIGMOID_SCALE * x)  # Keras ops: also the inference forward


def _sigmoid_slope(x):
    s = tf.sigmoid(SIGMOID_SCALE * x)
    return s + SIGMOID_SCALE * x * s * (1.0 - s)


# form -> (inference forward as Keras computes it, float32 forward, float32 derivative)
FORMS: dict[str, tuple[Callable, Callable, Callable]] = {
    "erf": (lambda x: keras.activations.gelu(x, approximate=False), _erf_value, _erf_slope),
    "tanh": (lambda x: keras.activations.gelu(x, approximate=True), _tanh_value, _tanh_slope),
    "sigmoid": (_sigmoid_value, _sigmoid_value, _sigmoid_slope),
}


@functools.cache
def trainable_gelu(form: str, jit: bool) -> Callable:
    """`x -> gelu(x)` (TensorFlow) with the analytic gradient, both computed in float32 and, with
    `jit`, each compiled by XLA into one element-wise loop."""
    _, value, slope = FORMS[form]

    def forward(x):
        return tf.cast(value(tf.cast(x, tf.float32)), x.dtype)

    def backward(x, upstream):
        return tf.cast(tf.cast(upstream, tf.float32) * slope(tf.cast(x, tf.float32)), x.dtype)

    if jit:
        forward, backward = (tf.function(f, jit_compile=True, reduce_retracing=True, autograph=False)
                             for f in (forward, backward))

    @tf.custom_gradient
    def gelu(x):
        return forward(x), lambda upstream: backward(x, upstream)
    return gelu


@keras.saving.register_keras_serializable(package="cifarlab")
class GELU(keras.layers.Layer):
    """GELU activation: `form` "erf" is Keras's `gelu` (the default, exact), "tanh" its
    approximate form, "sigmoid" x*sigmoid(1.702x). Training uses `trainable_gelu(form, jit)`;
    inference (and other backends) the plain forward."""

    def __init__(self, form: str = "erf", jit: bool = True, **kwargs):
        super().__init__(**kwargs)
        if form not in FORMS:
            raise CifarlabError(f"unknown GELU form {form!r}; choose one of {', '.join(FORMS)}")
        self.form, self.jit = form, bool(jit)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if training and _on_tensorflow():
            return trainable_gelu(self.form, self.jit)(inputs)
        return FORMS[self.form][0](inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "form": self.form, "jit": self.jit}


@dataclass(frozen=True)
class LayerSet:
    """The normalisation layer (`norm(**BatchNormalization kwargs)`) and activation layer
    (`activation()`) a network is built from."""

    norm: Callable[..., keras.layers.Layer]
    activation: Callable[[], keras.layers.Layer]


LAYER_SETS = {
    "keras": LayerSet(keras.layers.BatchNormalization, lambda: keras.layers.Activation("gelu")),
    "fused": LayerSet(FusedBatchNormalization, GELU),
    "fused-gelu-sigmoid": LayerSet(FusedBatchNormalization, lambda: GELU("sigmoid")),
    "fused-relu": LayerSet(FusedBatchNormalization, keras.layers.ReLU),
}
DEFAULT_LAYER_SET = "fused"


def layer_set(choice: str | LayerSet) -> LayerSet:
    """`choice` itself, or the named set in LAYER_SETS."""
    if isinstance(choice, LayerSet):
        return choice
    if choice not in LAYER_SETS:
        raise CifarlabError(f"unknown layer set {choice!r}; choose one of {', '.join(LAYER_SETS)}")
    return LAYER_SETS[choice]
