"""The pieces of the `fast` recipe, each checked against what it promises: the triangle schedule,
boosted BatchNorm-bias steps, lookahead averaging, alternating flips, dirac init, 6-view TTA."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cifarlab.evaluation.tta import predict_tta, tta_views
from cifarlab.models.fast import dirac_init
from cifarlab.training.optim import BiasBoostSGD, LookaheadReset, Triangle
from cifarlab.training.pipeline import Augment, train_dataset


def test_triangle_rises_then_falls_to_its_floor():
    schedule = Triangle(peak=2.0, total_steps=100, warmup_fraction=0.25, start=0.2, end=0.1)
    values = np.array([float(schedule(step)) for step in range(101)])
    np.testing.assert_allclose(values[[0, 25, 100]], [0.4, 2.0, 0.2], rtol=1e-6)
    assert np.all(np.diff(values[:26]) > 0) and np.all(np.diff(values[25:]) < 0)
    assert Triangle(**schedule.get_config()).get_config() == schedule.get_config()


def test_linear_schedule_starts_at_its_peak_and_only_falls():
    from cifarlab.training.config import TrainConfig
    from cifarlab.training.optim import make_schedule

    cfg = TrainConfig(data="x", recipe="fast", schedule="linear", epochs=2).resolved()
    schedule = make_schedule(cfg, steps_per_epoch=50)
    values = np.array([float(schedule(step)) for step in range(101)])
    np.testing.assert_allclose(values[[0, 100]], [cfg.lr, cfg.lr * 0.07], rtol=1e-6)
    assert np.all(np.diff(values[1:]) < 0)  # step 0 is the one warm-up step Triangle keeps


def bn_model() -> keras.Model:
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(scale=False)(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def one_step_change(bias_scaler: float) -> list[tuple[str, np.ndarray]]:
    keras.utils.set_random_seed(0)
    model = bn_model()
    model.compile(BiasBoostSGD(0.01, bias_scaler=bias_scaler), "mse")
    before = [v.numpy().copy() for v in model.trainable_variables]
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model.train_on_batch(x, x[:, :1] * 2)
    return [(v.name, v.numpy() - b) for v, b in zip(model.trainable_variables, before)]


def test_bias_scaler_multiplies_only_the_batchnorm_bias_steps():
    plain, boosted = one_step_change(1.0), one_step_change(64.0)
    for (name, step), (_, boosted_step) in zip(plain, boosted):
        ratio = 64.0 if name == "beta" else 1.0
        assert np.abs(step).max() > 0, name
        np.testing.assert_allclose(boosted_step, ratio * step, rtol=1e-4, atol=1e-9, err_msg=name)
    assert [name for name, _ in plain].count("beta") == 1


def test_lookahead_resets_weights_to_their_average_every_k_steps():
    keras.utils.set_random_seed(0)
    model = bn_model()
    optimizer = BiasBoostSGD(0.05, lookahead_steps=5, total_steps=10)
    model.compile(optimizer, "mse")
    x = np.random.default_rng(1).normal(size=(160, 4)).astype("float32")
    same_after_step = []

    class Compare(keras.callbacks.Callback):  # runs after LookaheadReset in the same hook
        def on_train_batch_end(self, batch, logs=None):
            averages = [a.numpy() for a in optimizer._model_variables_moving_average]
            current = [v.numpy() for v in model.trainable_variables]
            same_after_step.append(all(np.array_equal(a, c) for a, c in zip(averages, current)))

    model.fit(x, x[:, :1], batch_size=16, epochs=1, shuffle=False, verbose=0,
              callbacks=[LookaheadReset(), Compare()])
    # Equal after every 5th step (the reset) and after step 1 (the averaging momentum starts at 0).
    assert same_after_step == [step % 5 == 0 or step == 1 for step in range(1, 11)]
    restored = BiasBoostSGD.from_config(optimizer.get_config())
    assert restored.use_ema and restored.lookahead_steps == 5 and restored.total_steps == 10


def tagged_images(n: int) -> np.ndarray:
    """Image i holds i in pixel (0, 0) and 255 in its right column: index and orientation readable."""
    images = np.zeros((n, 8, 8, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)
    images[:, :, -1, 1] = 255
    return images


def epoch_flips(dataset, n: int) -> list[np.ndarray]:
    """Per epoch: for each image index, whether it arrived mirrored."""
    flips = []
    for images, _ in dataset:
        images = images.numpy()
        mirrored = images[:, :, 0, 1] == 255
        mirrored = mirrored.all(axis=1)
        index = np.where(mirrored, images[:, 0, -1, 0], images[:, 0, 0, 0])
        flip = np.zeros(n, bool)
        flip[index] = mirrored
        flips.append(flip)
    return flips


def test_alternating_flip_shows_each_image_both_ways_every_two_epochs():
    n = 200
    ds = train_dataset(tagged_images(n), np.zeros(n, np.int64), 2, batch_size=n, seed=3, first_epoch=0,
                       epochs=4, augment=Augment(flip=True))
    flips = epoch_flips(ds, n)
    assert len(flips) == 4
    assert 0.35 < flips[0].mean() < 0.65
    np.testing.assert_array_equal(flips[1], ~flips[0])
    np.testing.assert_array_equal(flips[2], flips[0])
    # Resuming at epoch 3 replays the same flips.
    resumed = train_dataset(tagged_images(n), np.zeros(n, np.int64), 2, batch_size=n, seed=3,
                            first_epoch=3, epochs=4, augment=Augment(flip=True))
    np.testing.assert_array_equal(epoch_flips(resumed, n)[0], flips[3])


def test_cutout_paints_one_whole_square_of_the_mean_colour_per_image():
    n, size = 64, 5
    rng = np.random.default_rng(1)
    image = rng.integers(100, 200, size=(12, 12, 3), dtype=np.uint8)  # one image: shuffling can't matter
    image[..., 2] = 7  # blue channel constant: the painted square must use the mean, 7
    images = np.repeat(image[None], n, axis=0)
    ds = train_dataset(images, np.zeros(n, np.int64), 2, batch_size=n, seed=0, first_epoch=0,
                       epochs=2, augment=Augment(cutout=size))
    batches = [b.numpy() for b, _ in ds]
    for batch in batches:
        changed = (batch != image).any(axis=-1)
        for painted in changed:
            rows, cols = np.where(painted)
            # at most a size x size box changed (pixels equal to the mean by chance stay unchanged)
            assert rows.max() - rows.min() < size and cols.max() - cols.min() < size
        assert changed.sum(axis=(1, 2)).mean() > 0.8 * size * size
        assert (batch[..., 2] == 7).all()
        mean = np.round(image[..., :2].reshape(-1, 2).mean(axis=0))
        np.testing.assert_array_equal(batch[changed][:, :2], np.broadcast_to(mean, (changed.sum(), 2)))
    assert (batches[0] != batches[1]).any()  # a new square each epoch


def test_dirac_init_passes_the_first_channels_through():
    inputs = keras.Input((6, 6, 4))
    conv = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    dirac_init(conv)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 4)).astype("float32")
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out[..., :4], x, atol=1e-6)
    assert np.abs(out[..., 4:]).max() > 0.01  # the rest keep their random init


def test_tta_views_are_mirrors_and_one_pixel_shifts():
    images = np.random.default_rng(0).integers(0, 256, size=(3, 5, 5, 3), dtype=np.uint8)
    views = tta_views(images)
    assert len(views) == 6 and sum(w for w, _ in views) == pytest.approx(1.0)
    np.testing.assert_array_equal(views[1][1], images[:, :, ::-1])
    up_left = views[2][1]  # content moves down-right by one pixel: reflect padding fills the edge
    np.testing.assert_array_equal(up_left[:, 1:, 1:], images[:, :-1, :-1])
    np.testing.assert_array_equal(views[4][1][:, :-1, :-1], images[:, 1:, 1:])
    # The mean over views of a per-image-constant predictor is that constant.
    probs = predict_tta(lambda batch: np.tile([[0.2, 0.8]], (len(batch), 1)), images)
    np.testing.assert_allclose(probs, np.tile([[0.2, 0.8]], (3, 1)))


def test_robustness_augmentations_change_the_chosen_share_and_replay_on_resume():
    n = 256
    images = np.random.default_rng(0).integers(60, 200, (n, 16, 16, 3), dtype=np.uint8)
    images[:, :, :8] = 30  # an edge, so blur has something to soften
    augment = Augment(noise=0.1, contrast=0.5, blur=0.5)
    ds = train_dataset(images, np.zeros(n, np.int64), 2, batch_size=n, seed=1, first_epoch=0,
                       epochs=2, augment=augment)
    first, second = [b.numpy() for b, _ in ds]
    assert first.dtype == np.uint8 and first.shape == images.shape
    assert not np.array_equal(first, second)  # each epoch draws anew
    order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.constant([1, 0])).numpy()
    changed = (first != images[order]).any(axis=(1, 2, 3))
    assert 0.6 < changed.mean() < 0.95  # 1 - (1-.5)(1-.5)(1-.5) = 0.875 of the images expected
    resumed = train_dataset(images, np.zeros(n, np.int64), 2, batch_size=n, seed=1, first_epoch=1,
                            epochs=2, augment=augment)
    np.testing.assert_array_equal(next(iter(resumed))[0].numpy(), second)


def test_blur_batch_smooths_and_contrast_batch_keeps_the_mean():
    from cifarlab.training.pipeline import blur_batch, contrast_batch

    images = np.zeros((8, 32, 32, 3), np.uint8)
    images[:, :, 16:] = 200
    key = tf.constant([0, 0], tf.int64)
    blurred = blur_batch(tf.constant(images), 1.0, key).numpy()
    edge = blurred[:, :, 15:17].astype(int)
    assert (edge > 0).all() and (edge < 200).all()  # the step became a ramp
    np.testing.assert_array_equal(blurred[:, :, :12], 0)  # far from the edge: unchanged
    low = contrast_batch(tf.constant(images), 1.0, key).numpy().astype(float)
    assert low.std() < images.std() and abs(low.mean() - images.mean()) < 1.0


def test_outlier_exposure_shuffles_the_tiles_of_a_share_of_images_and_gives_them_a_uniform_target():
    from cifarlab.training.pipeline import OUTLIER_TILES, outlier_batch

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (400, 32, 32, 3)).astype(np.uint8)
    targets = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 400)]
    key = tf.constant([3, 4], tf.int64)
    out, out_targets = (t.numpy() for t in outlier_batch(tf.constant(images), tf.constant(targets), 0.25, key))
    changed = (out != images).any(axis=(1, 2, 3))
    assert 0.18 < changed.mean() < 0.32
    np.testing.assert_array_equal(out_targets[changed], np.full((changed.sum(), 5), 0.2, np.float32))
    np.testing.assert_array_equal(out_targets[~changed], targets[~changed])
    tile = 32 // OUTLIER_TILES

    def tiles(image):
        return sorted(image[r:r + tile, c:c + tile].tobytes() for r in range(0, 32, tile) for c in range(0, 32, tile))

    for i in np.flatnonzero(changed)[:5]:  # the same tiles, in another order
        assert tiles(out[i]) == tiles(images[i])
    again, _ = outlier_batch(tf.constant(images), tf.constant(targets), 0.25, key)
    np.testing.assert_array_equal(again.numpy(), out)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixed_outliers_join_two_images_of_different_classes_and_get_a_uniform_target(kind):
    from cifarlab.training.pipeline import CUTMIX_SIDE, outlier_batch

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (300, 32, 32, 3)).astype(np.uint8)
    labels = rng.integers(0, 3, 300)
    targets = np.eye(3, dtype=np.float32)[labels]
    out, out_targets = (t.numpy() for t in outlier_batch(tf.constant(images), tf.constant(targets), 0.5,
                                                         tf.constant([5, 6], tf.int64), kind))
    partner, partner_labels = np.roll(images, 1, axis=0), np.roll(labels, 1)
    changed = (out != images).any(axis=(1, 2, 3))
    assert not changed[labels == partner_labels].any()  # two of one class would still be that class
    assert 0.4 < changed[labels != partner_labels].mean() < 0.6
    np.testing.assert_array_equal(out_targets[changed], np.full((changed.sum(), 3), 1 / 3, np.float32))
    np.testing.assert_array_equal(out_targets[~changed], targets[~changed])
    if kind == "mixup":
        blend = np.round((images[changed].astype(float) + partner[changed]) / 2)
        np.testing.assert_array_equal(out[changed], blend)
    else:
        side = round(CUTMIX_SIDE * 32)
        for i in np.flatnonzero(changed)[:5]:  # a side x side square of the partner, the rest its own
            pasted = (out[i] != images[i]).any(axis=2)
            rows, cols = np.flatnonzero(pasted.any(axis=1)), np.flatnonzero(pasted.any(axis=0))
            assert np.ptp(rows) < side and np.ptp(cols) < side
            square = (slice(rows[0], rows[0] + side), slice(cols[0], cols[0] + side))
            np.testing.assert_array_equal(out[i][square], partner[i][square])


def test_outlier_exposure_refuses_an_image_side_its_tiles_do_not_divide():
    from cifarlab.errors import CifarlabError

    images, labels = np.zeros((8, 36, 36, 3), np.uint8), np.zeros(8, np.int64)
    with pytest.raises(CifarlabError, match="divisible by 8"):
        train_dataset(images, labels, 2, 4, 0, 0, 1, Augment(outliers=0.1))
    assert next(iter(train_dataset(images, labels, 2, 4, 0, 0, 1, Augment())))[0].shape == (4, 36, 36, 3)
