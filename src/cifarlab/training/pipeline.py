"""tf.data input pipeline: a seeded shuffle and augmentation that depend only on (seed, epoch).

Because every epoch's order and augmentation are a pure function of the seed and the epoch
number, a run resumed from a checkpoint sees exactly the batches an uninterrupted run would.
Augmentation is done on whole uint8 batches (vectorized), which keeps both cores on the maths.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cifarlab.models.registry import channel_stats


def flip_batch(images: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
    """Mirror left-right the images whose `flip` is true."""
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def translate_batch(images: tf.Tensor, pad: int, seed: tf.Tensor) -> tf.Tensor:
    """Shift each image by up to `pad` pixels in x and y (reflect padding, then a random crop)."""
    n, h, w = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    offsets = tf.random.stateless_uniform([n, 2], seed, minval=0, maxval=2 * pad + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(h)[None, :]
    cols = offsets[:, 1:] + tf.range(w)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def cutout_batch(images: tf.Tensor, size: int, fill: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Paint one size x size square, placed at random wholly inside each image, with `fill`."""
    n, h, w = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    corner = tf.random.stateless_uniform([n, 2], seed, minval=0, maxval=h - size + 1, dtype=tf.int32)
    rows = tf.range(h)[None, :] - corner[:, :1]
    cols = tf.range(w)[None, :] - corner[:, 1:]
    inside_rows = (rows >= 0) & (rows < size)
    inside_cols = (cols >= 0) & (cols < size)
    mask = inside_rows[:, :, None] & inside_cols[:, None, :]
    return tf.where(mask[..., None], fill, images)


def train_dataset(images: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int,
                  seed: int, first_epoch: int, epochs: int, flip: bool, translate: int,
                  cutout: int = 0) -> tf.data.Dataset:
    """Batches for epochs first_epoch..epochs-1, one-hot labels (for label smoothing)."""
    n = len(labels)
    steps = n // batch_size  # drop the ragged last batch: constant shapes, one trace
    x = tf.constant(images)
    y = tf.one_hot(tf.constant(labels), num_classes)
    # Alternating flip (airbench): a random half is mirrored in even epochs, the other half in odd
    # ones, so every two epochs show each image both ways instead of leaving it to chance.
    first_flip = tf.random.stateless_uniform([n], tf.constant([seed, -1], tf.int64)) < 0.5
    # Cutout fills with the mean colour, which the model's normalization maps to zero.
    mean_colour = tf.constant(np.round(channel_stats(images)[0]).astype(images.dtype)) if cutout else None

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([seed, epoch]))
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[: steps * batch_size], [steps, batch_size]))
        return batches.enumerate().map(lambda i, idx: augment(epoch, i, idx))

    def augment(epoch, step, idx):
        batch = tf.gather(x, idx)
        key = tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + epoch, step])
        if flip:
            batch = flip_batch(batch, tf.not_equal(tf.gather(first_flip, idx), epoch % 2 == 1))
        if translate:
            batch = translate_batch(batch, translate, key + 1)
        if cutout:
            batch = cutout_batch(batch, cutout, mean_colour, key + 2)
        return batch, tf.gather(y, idx)

    epochs_ds = tf.data.Dataset.range(first_epoch, epochs)
    return epochs_ds.flat_map(epoch_batches).prefetch(2)


def eval_dataset(images: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((images, tf.one_hot(labels, num_classes)))
    return ds.batch(batch_size).prefetch(2)
