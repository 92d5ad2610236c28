"""models/layers.py: the fused BatchNorm and the GELU compute what Keras's layers compute (training
step, moving statistics, gradients, inference), save and load in safe mode, and export as before."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from cifarlab.cli.main import main
from cifarlab.models.openset import without_ood_score
from cifarlab.models.io import load_keras_model, save_model_file
from cifarlab.models.layers import FORMS, GELU, FusedBatchNormalization, trainable_gelu
from cifarlab.models.metadata import ModelMetadata
from cifarlab.models.registry import build_model

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = {"float32": 1e-5, "mixed_bfloat16": 1e-2}


@pytest.fixture
def policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(tf.cast(a, "float32")) - np.asarray(tf.cast(b, "float32")))))


def relative(a, b) -> float:
    return max_diff(a, b) / max(1e-12, float(np.max(np.abs(np.asarray(tf.cast(b, "float32"))))))


def bn_pair(shape, **kwargs):
    """A Keras BatchNormalization and a FusedBatchNormalization with the same weights."""
    keras_bn, fused_bn = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    for layer in (keras_bn, fused_bn):
        layer.build(shape)
    fused_bn.set_weights(keras_bn.get_weights())
    return keras_bn, fused_bn


def training_call(layer, x, graph: bool):
    """(output, [input gradient, weight gradients]) of one training-mode call on a fixed loss."""
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            y32 = tf.cast(y, "float32")
            loss = tf.reduce_sum(y32 * tf.range(y.shape[-1], dtype="float32")) + tf.reduce_sum(y32**3)
        return y, tape.gradient(loss, [x, *layer.trainable_variables])
    return (tf.function(run) if graph else run)(x)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize("shape", [(16, 6, 6, 8), (32, 8)])
@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("scale", [False, True])
def test_fused_bn_trains_like_keras(policy, shape, graph, scale):
    keras_bn, fused_bn = bn_pair(shape, momentum=0.6, epsilon=1e-5, scale=scale)
    rng = np.random.default_rng(0)
    tol = TOLERANCE[policy]
    for step in range(3):  # the moving statistics compound over steps
        x = tf.cast(rng.normal(1.5 + step, 3.0, shape).astype("float32"), keras_bn.compute_dtype)
        (y_keras, grads_keras), (y_fused, grads_fused) = (training_call(layer, x, graph)
                                                          for layer in (keras_bn, fused_bn))
        assert y_fused.dtype == y_keras.dtype == keras_bn.compute_dtype
        assert relative(y_fused, y_keras) < tol
        assert len(grads_fused) == len(grads_keras) == (3 if scale else 2)
        for g_fused, g_keras in zip(grads_fused, grads_keras):
            assert relative(g_fused, g_keras) < 10 * tol
        for name in ("moving_mean", "moving_variance"):
            fused, reference = getattr(fused_bn, name), getattr(keras_bn, name)
            assert fused.dtype == "float32"
            np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=tol, atol=1e-6, err_msg=name)
    assert abs(float(fused_bn.moving_mean.numpy().mean()) - 2.2) < 0.3  # 0.4 * (1.5*0.36 + 2.5*0.6 + 3.5)


def test_fused_bn_inference_and_frozen_calls_are_keras_own():
    keras_bn, fused_bn = bn_pair((8, 4, 4, 3), momentum=0.6)
    x = np.random.default_rng(1).normal(2.0, 1.0, (8, 4, 4, 3)).astype("float32")
    keras_bn(x, training=True), fused_bn(x, training=True)
    np.testing.assert_allclose(fused_bn(x, training=False), keras_bn(x, training=False), atol=1e-5)
    fused_bn.set_weights(keras_bn.get_weights())
    np.testing.assert_array_equal(fused_bn(x, training=False), keras_bn(x, training=False))
    fused_bn.trainable = keras_bn.trainable = False
    before = fused_bn.moving_mean.numpy().copy()
    np.testing.assert_array_equal(fused_bn(x, training=True), keras_bn(x, training=True))
    np.testing.assert_array_equal(fused_bn.moving_mean.numpy(), before)


def test_fused_bn_falls_back_where_the_kernel_cannot_go():
    keras_bn, fused_bn = bn_pair((8, 3, 4, 4), axis=1)  # channels first
    x = np.random.default_rng(2).normal(size=(8, 3, 4, 4)).astype("float32")
    assert not fused_bn._fusable(tf.constant(x), None)
    np.testing.assert_allclose(fused_bn(x, training=True), keras_bn(x, training=True), atol=1e-6)
    np.testing.assert_allclose(fused_bn.moving_variance.numpy(), keras_bn.moving_variance.numpy(), rtol=1e-6)
    assert not FusedBatchNormalization(renorm=True)._fusable(tf.zeros((2, 2, 2, 2)), None)
    assert not FusedBatchNormalization()._fusable(tf.zeros((2, 2, 2, 2), "float64"), None)


REFERENCE_GELU = {"erf": lambda x: tf.nn.gelu(x, approximate=False),
                  "tanh": lambda x: tf.nn.gelu(x, approximate=True),
                  "sigmoid": lambda x: x * tf.sigmoid(1.702 * x)}


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("jit", [True, False])
def test_gelu_forward_and_gradient_match_the_reference(policy, form, jit):
    dtype = keras.config.dtype_policy().compute_dtype
    x = tf.cast(np.linspace(-6.0, 6.0, 2401, dtype="float32").reshape(49, 49), dtype)
    x32 = tf.cast(x, "float32")  # the reference sees the same (rounded) inputs, in float32
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, x32])
        ours, exact = trainable_gelu(form, jit)(x), REFERENCE_GELU[form](x32)
    assert ours.dtype == dtype
    rounding = 1e-6 if dtype == "float32" else 1.01 * 2.0**-8  # one rounding of a float32 result
    for value, reference in ((ours, exact), (tape.gradient(ours, x), tape.gradient(exact, x32))):
        error = np.abs(np.asarray(tf.cast(value, "float32")) - reference.numpy())
        assert np.all(error <= rounding * np.abs(reference.numpy()) + 1e-5)  # + float32 cancellation
    layer = GELU(form, jit=jit)
    np.testing.assert_array_equal(layer(x, training=False), FORMS[form][0](x))
    assert max_diff(layer(x, training=True), ours) == 0.0


def test_gelu_inference_is_kerases_op_and_config_round_trips():
    x = np.linspace(-3, 3, 13, dtype="float32")
    np.testing.assert_array_equal(GELU()(x), keras.layers.Activation("gelu")(x))
    layer = GELU.from_config(GELU("tanh", jit=False, name="g").get_config())
    assert (layer.form, layer.jit, layer.name) == ("tanh", False, "g")
    with pytest.raises(Exception, match="unknown GELU form"):
        GELU("swish")


def small_fast(layers: str, seed: int = 0, policy: str = "float32") -> keras.Model:
    keras.utils.set_random_seed(seed)
    images = np.random.default_rng(seed).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    return build_model("fast", (32, 32), 3, np.full(3, 120.0), np.full(3, 60.0), dtype_policy=policy,
                       widths=(8, 16, 16), init_images=images, layers=layers)


def random_batch(n: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            keras.utils.to_categorical(rng.integers(0, 3, n), 3))


def test_fast_layer_sets_are_the_same_network():
    old, new = small_fast("keras"), small_fast("fused")
    assert sum(isinstance(l, FusedBatchNormalization) for l in new.layers) == 6
    assert sum(isinstance(l, GELU) for l in new.layers) == 7
    assert not any(isinstance(l, (FusedBatchNormalization, GELU)) for l in old.layers)
    new.set_weights(old.get_weights())
    x, y = random_batch()
    np.testing.assert_allclose(new.predict(x, verbose=0), old.predict(x, verbose=0), atol=1e-6)
    for model in (old, new):
        model.compile(keras.optimizers.SGD(0.2, momentum=0.85, nesterov=True), "categorical_crossentropy")
        for _ in range(2):
            model.train_on_batch(x, y)
    for w_new, w_old in zip(new.get_weights(), old.get_weights()):
        np.testing.assert_allclose(w_new, w_old, rtol=1e-3, atol=1e-4)


def test_baseline_gets_the_fused_batchnorm_and_trains_in_bfloat16():
    mean, std = np.full(3, 120.0), np.full(3, 60.0)
    model = build_model("baseline", (32, 32), 3, mean, std, dtype_policy="mixed_bfloat16")
    old = build_model("baseline", (32, 32), 3, mean, std, layers="keras")
    assert sum(isinstance(l, FusedBatchNormalization) for l in model.layers) == 7
    assert [type(l) for l in old.layers].count(keras.layers.BatchNormalization) == 7
    model.compile(keras.optimizers.SGD(0.05), "categorical_crossentropy")
    x, y = random_batch(16)
    assert np.isfinite(model.train_on_batch(x, y))


def metadata(model_name: str = "fast") -> ModelMetadata:
    return ModelMetadata(class_names=("a", "b", "c"), input_size=(32, 32), mean=(120.0,) * 3,
                         std=(60.0,) * 3, model=model_name, command="tests/test_layers.py",
                         version="test", created="test")


@pytest.fixture(scope="module")
def trained_fused_file(tmp_path_factory):
    """A small `fast` model with the fused layers, trained a few steps, as a model file."""
    trained = small_fast("fused", policy="mixed_bfloat16")
    trained.compile(keras.optimizers.SGD(0.1, momentum=0.85, nesterov=True), "categorical_crossentropy")
    for seed in range(3):
        trained.train_on_batch(*random_batch(32, seed))
    model = small_fast("fused")  # saved in float32, as training does
    model.set_weights(trained.get_weights())
    return save_model_file(model, tmp_path_factory.mktemp("layers") / "fused.keras", metadata()), model


def test_fused_model_saves_and_loads_in_safe_mode(trained_fused_file):
    path, model = trained_fused_file
    loaded, _ = load_keras_model(path)  # safe mode
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    x, _ = random_batch(16, seed=7)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_the_shipped_model_still_loads_and_the_new_layers_reproduce_it():
    path = ROOT / "models" / "cifar10-fast.keras"
    if not path.is_file():
        pytest.skip("no shipped model")
    old, meta = load_keras_model(path)
    old = without_ood_score(old)  # the classifier; its open-set output is another test's
    fused = any(isinstance(l, (FusedBatchNormalization, GELU)) for l in old.layers)
    # the twin is built from the other layer set: Keras's layers for a fused model and back
    twin = build_model("fast", tuple(meta.input_size), len(meta.class_names), np.array(meta.mean),
                       np.array(meta.std), widths=block_widths(old),
                       temperature=1.0 / old.get_layer("temperature").scale,
                       layers="keras" if fused else "fused")
    twin.set_weights(old.get_weights())
    x, _ = random_batch(16, seed=3)
    np.testing.assert_allclose(twin.predict(x, verbose=0), old.predict(x, verbose=0), atol=2e-6)


def block_widths(model) -> tuple[int, ...]:
    """The width of each conv block (two 3x3 convs per block)."""
    return tuple(l.filters for l in model.layers
                 if isinstance(l, keras.layers.Conv2D) and l.kernel_size == (3, 3))[::2]


@pytest.mark.parametrize("fmt,name", [("litert", "m.tflite"), ("onnx", "m.onnx")])
def test_fused_model_exports_with_parity(fmt, name, trained_fused_file, tmp_path, capsys):
    path, _ = trained_fused_file
    code = main(["export", "--model", str(path), "--format", fmt, "--out", str(tmp_path / name),
                 "--samples", "32"])
    printed = capsys.readouterr().out
    assert code == 0 and "PASS" in printed and "top-1 agreement 100.00%" in printed, printed


def test_fused_and_keras_layers_convert_to_the_same_litert_ops():
    from ai_edge_litert.interpreter import Interpreter

    from cifarlab.inference.litert import keras_to_tflite

    def ops(model) -> list[str]:
        interpreter = Interpreter(model_content=keras_to_tflite(model, (32, 32)))
        return sorted(op["op_name"] for op in interpreter._get_ops_details())
    assert ops(small_fast("fused")) == ops(small_fast("keras"))
