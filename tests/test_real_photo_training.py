"""Training for what a camera sees: outlier exposure with real images (--outliers-data), zoom
and colour jitter; each a pure function of its key, so a resumed run replays it."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from cifarlab.cli.main import main
from cifarlab.training.pipeline import Augment, colour_batch, real_outliers, train_dataset, zoom_batch

KEY = tf.constant([3, 4], tf.int64)


def images(n: int = 64, side: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3)).astype(np.uint8)


def test_real_outliers_replace_a_share_of_the_batch_with_outlier_images_and_a_uniform_target():
    batch, outliers = images(256), images(10, seed=1)
    targets = tf.one_hot(np.arange(256) % 4, 4)
    out, out_targets = (t.numpy() for t in real_outliers(tf.constant(batch), targets, outliers, 0.25, KEY))
    replaced = np.any(out != batch, axis=(1, 2, 3))
    assert 0.15 < replaced.mean() < 0.35
    for image in out[replaced]:  # each is one of the outlier images, as it is
        assert any(np.array_equal(image, o) for o in outliers)
    np.testing.assert_allclose(out_targets[replaced], 0.25)
    np.testing.assert_array_equal(out_targets[~replaced], targets.numpy()[~replaced])
    again, _ = real_outliers(tf.constant(batch), targets, outliers, 0.25, KEY)
    np.testing.assert_array_equal(again.numpy(), out)


def test_zoom_and_colour_change_every_image_replay_by_key_and_are_off_at_zero():
    batch = tf.constant(images())
    for augment in (zoom_batch, colour_batch):
        out = augment(batch, 0.4, KEY).numpy()
        assert out.shape == batch.shape and out.dtype == np.uint8
        assert np.mean(np.any(out != batch.numpy(), axis=(1, 2, 3))) > 0.9
        np.testing.assert_array_equal(augment(batch, 0.4, KEY).numpy(), out)
        assert not np.array_equal(augment(batch, 0.4, KEY + 1).numpy(), out)
    np.testing.assert_array_equal(colour_batch(batch, 0.0, KEY).numpy(), batch.numpy())


def test_zoom_in_enlarges_the_centre():
    """A box half the image's side shows a quarter of the picture across the whole frame."""
    side = 32
    image = np.zeros((1, side, side, 3), np.uint8)
    image[:, 12:20, 12:20] = 255  # an 8-pixel square in the middle
    tf.random.set_seed(0)
    # zoom 0.5: sides from 0.5 to 1.5; the brightest frames are the zoomed-in ones
    out = zoom_batch(tf.constant(np.repeat(image, 64, 0)), 0.5, KEY).numpy()
    bright = (out[..., 0] > 128).sum(axis=(1, 2))
    assert bright.max() > 2 * 64 and bright.min() < 64  # bigger when nearer, smaller when farther


def test_train_dataset_draws_outliers_from_the_given_images_only():
    data, outliers = images(64), np.full((5, 16, 16, 3), 7, np.uint8)
    labels = np.arange(64) % 2
    batches = list(train_dataset(data, labels, 2, 32, 0, 0, 1, Augment(outliers=0.5), outliers))
    for batch, targets in batches:
        uniform = np.isclose(targets.numpy(), 0.5).all(axis=1)
        assert uniform.any()
        assert (batch.numpy()[uniform] == 7).all()


@pytest.mark.parametrize("args, message", [
    (["--outliers", "1.5"], "--outliers must be in [0, 1), got 1.5"),
    (["--outliers-data", "OUT"], "needs the share of each batch to draw from it: add --outliers SHARE"),
    (["--outliers", "0.2", "--outliers-data", "SAME"], "has classes that are training classes too: circle"),
    (["--zoom", "2"], "--zoom must be in [0, 0.9], got 2.0"),
    (["--outliers", "0.2", "--outlier-kind", "real"], "from real photos: add --outliers-data SOURCE"),
    (["--outliers", "0.2", "--energy-margin", "0.01", "--logit-norm", "0.04"], "two training losses: give one"),
    (["--energy-margin", "0.01"], "pushes the energy of outliers up: add --outliers SHARE"),
])
def test_outlier_and_real_photo_options_are_checked(shapes_folder, tmp_path, capsys, args, message):
    args = [str(shapes_folder / "train") if a == "SAME" else str(tmp_path / "none") if a == "OUT" else a
            for a in args]
    code = main(["train", "--data", str(shapes_folder), "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--quiet", *args])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.keras").exists()
