"""Muon on the conv filters (training/optim.py): orthogonalized steps, fixed filter norm, SGD for
the rest, saved and restored with the checkpoint like the other optimizers."""

from __future__ import annotations

import keras
import numpy as np

from cifarlab.training.config import TrainConfig
from cifarlab.training.optim import BiasBoostSGD, MuonSGD, make_optimizer, orthogonalized


def test_newton_schulz_flattens_the_singular_values_of_wide_and_tall_matrices():
    rng = np.random.default_rng(0)
    for rows, cols in ((16, 72), (72, 16)):
        u, _ = np.linalg.qr(rng.normal(size=(rows, rows)))
        v, _ = np.linalg.qr(rng.normal(size=(cols, cols)))
        k = min(rows, cols)
        update = (u[:, :k] * np.logspace(0, 2, k)) @ v[:, :k].T  # singular values 1 .. 100
        after = np.linalg.svd(np.asarray(orthogonalized(update.astype("float32"), steps=5)), compute_uv=False)
        assert 0.3 < after.min() and after.max() < 1.3, ((rows, cols), after)


def conv_model() -> keras.Model:
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(scale=False)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(x))


def train_steps(optimizer, steps: int = 1):
    keras.utils.set_random_seed(0)
    model = conv_model()
    model.compile(optimizer, "mse")
    before = [v.numpy().copy() for v in model.trainable_variables]
    x = np.random.default_rng(0).normal(size=(steps * 8, 6, 6, 2)).astype("float32")
    model.fit(x, x[:, 0, 0, :1], batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model, before


def test_muon_moves_the_filters_at_a_fixed_norm_and_sgd_the_rest():
    muon, before = train_steps(MuonSGD(0.01, muon_lr=1e-4, momentum=0.85, peak_lr=0.01, weight_decay=0.5))
    sgd, _ = train_steps(BiasBoostSGD(0.01, momentum=0.85, weight_decay=0.5))
    for v, b, s in zip(muon.trainable_variables, before, sgd.trainable_variables):
        assert np.abs(v.numpy() - b).max() > 0, v.path
        if len(v.shape) == 4:  # renormalised to sqrt(filters) (then a tiny step), not decayed
            assert abs(np.linalg.norm(b) / np.sqrt(v.shape[-1]) - 1) > 0.05
            np.testing.assert_allclose(np.linalg.norm(v.numpy()), np.sqrt(v.shape[-1]), rtol=1e-3)
            assert not np.allclose(v.numpy(), s.numpy(), atol=1e-3)
        else:  # the same first SGD step (weight decay included)
            np.testing.assert_allclose(v.numpy(), s.numpy(), rtol=1e-4, atol=1e-6, err_msg=v.path)


def test_muon_optimizer_comes_from_the_recipe_and_survives_its_config():
    cfg = TrainConfig(data="x", recipe="fast", optimizer="muon", muon_lr=0.3).resolved()
    optimizer = make_optimizer(cfg, steps_per_epoch=10)
    assert isinstance(optimizer, MuonSGD) and optimizer.muon_lr == 0.3 and optimizer.muon_momentum == 0.6
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer), safe_mode=True)
    assert isinstance(restored, MuonSGD)
    assert (restored.muon_lr, restored.peak_lr, restored.lookahead_steps) == (0.3, cfg.lr, cfg.lookahead_steps)
