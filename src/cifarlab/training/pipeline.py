"""tf.data input pipeline: a seeded shuffle and augmentation that depend only on (seed, epoch).

Because every epoch's order and augmentation are a pure function of the seed and the epoch
number, a run resumed from a checkpoint sees exactly the batches an uninterrupted run would.
Augmentation is done on whole uint8 batches (vectorized), which keeps both cores on the maths.
Images are read a batch at a time (`rows`), so a memory-mapped dataset larger than memory trains:
the pipeline holds index arrays, never a copy of the images.

The robustness augmentations (noise, contrast, blur) mirror the camera-like corruptions of
CIFAR-10-C. They are written as stateless TensorFlow ops instead of Keras' preprocessing layers:
in Keras 3.15 those draw from a stateful SeedGenerator and take no per-batch seed (`AugMix` and
`RandomColorJitter` gave different images for the same seed in two calls), so a resumed run could
not see the batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import tensorflow as tf

from cifarlab.data.stats import channel_stats
from cifarlab.errors import CifarlabError


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


NOISE_SHARE = 0.5                 # images that get pixel noise when --noise is on
CONTRAST_RANGE = (0.15, 1.0)      # CIFAR-10-C's contrast severities span 0.75 .. 0.15
BLUR_SIGMA_32PX = (0.3, 1.0)      # Gaussian blur sigma at 32 px (CIFAR-10-C: 0.4 .. 1.0)
BLUR_RADIUS_32PX = 3


def _uniform(key: tf.Tensor, n, low: float, high: float) -> tf.Tensor:
    return tf.random.stateless_uniform([n], key, minval=low, maxval=high)


def noise_batch(images: tf.Tensor, max_sigma: float, key: tf.Tensor) -> tf.Tensor:
    """Add Gaussian noise of sigma ~ U(0, max_sigma) (0..1 scale) to a random NOISE_SHARE of images."""
    n = tf.shape(images)[0]
    sigma = _uniform(key, n, 0.0, max_sigma) * tf.cast(_uniform(key + 1, n, 0, 1) < NOISE_SHARE, tf.float32)
    noise = tf.random.stateless_normal(tf.shape(images), key + 2) * 255.0 * sigma[:, None, None, None]
    return tf.cast(tf.clip_by_value(tf.round(tf.cast(images, tf.float32) + noise), 0, 255), images.dtype)


def contrast_batch(images: tf.Tensor, share: float, key: tf.Tensor) -> tf.Tensor:
    """Scale a random `share` of images about their per-channel mean by a factor ~ CONTRAST_RANGE."""
    n = tf.shape(images)[0]
    chosen = _uniform(key, n, 0, 1) < share
    factor = tf.where(chosen, _uniform(key + 1, n, *CONTRAST_RANGE), 1.0)[:, None, None, None]
    x = tf.cast(images, tf.float32)
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    return tf.cast(tf.clip_by_value(tf.round((x - mean) * factor + mean), 0, 255), images.dtype)


def blur_batch(images: tf.Tensor, share: float, key: tf.Tensor) -> tf.Tensor:
    """Gaussian-blur a random `share` of images, each with its own sigma (separable, reflect edges)."""
    n, side = tf.shape(images)[0], images.shape[1] or 32
    scale = side / 32
    radius = max(1, round(BLUR_RADIUS_32PX * scale))
    sigma = _uniform(key, n, BLUR_SIGMA_32PX[0] * scale, BLUR_SIGMA_32PX[1] * scale)
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    weights = tf.exp(-0.5 * tf.square(taps[None, :] / sigma[:, None]))
    weights /= tf.reduce_sum(weights, axis=1, keepdims=True)  # (n, taps)
    x = tf.cast(images, tf.float32)
    for axis in (1, 2):
        pad = [[0, 0], [0, 0], [0, 0], [0, 0]]
        pad[axis] = [radius, radius]
        padded = tf.pad(x, pad, mode="REFLECT")
        length = tf.shape(x)[axis]
        x = tf.add_n([weights[:, i, None, None, None] * tf.gather(padded, tf.range(i, i + length), axis=axis)
                      for i in range(2 * radius + 1)])
    chosen = (_uniform(key + 1, n, 0, 1) < share)[:, None, None, None]
    return tf.where(chosen, tf.cast(tf.clip_by_value(tf.round(x), 0, 255), images.dtype), images)


ASPECT_LOG_RANGE = 0.25  # zoomed boxes: width/height ratio exp(U(-this, this))


def zoom_batch(images: tf.Tensor, zoom: float, key: tf.Tensor) -> tf.Tensor:
    """Scale each image about a random point: a box of side U(1 - zoom, 1 + zoom) x the image's
    (aspect jittered) resized to the image. Below 1 the object fills more of the frame, above 1
    less (the border reflected), as a camera sees it nearer or farther than CIFAR framed it."""
    n, side = tf.shape(images)[0], images.shape[1]
    pad = side // 2
    padded = tf.pad(tf.cast(images, tf.float32), [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    scale = _uniform(key, n, 1 - zoom, 1 + zoom)
    aspect = tf.exp(_uniform(key + 1, n, -ASPECT_LOG_RANGE, ASPECT_LOG_RANGE))
    height = tf.minimum(scale / tf.sqrt(aspect), 2.0)
    width = tf.minimum(scale * tf.sqrt(aspect), 2.0)
    # a box smaller than the image lies wholly inside it; a larger one is centred
    cy = 0.5 + _uniform(key + 2, n, -1, 1) * tf.maximum(0.0, (1 - height) / 2)
    cx = 0.5 + _uniform(key + 3, n, -1, 1) * tf.maximum(0.0, (1 - width) / 2)
    total = side + 2 * pad  # box corners in the padded image's 0..1 coordinates
    boxes = tf.stack([cy - height / 2, cx - width / 2, cy + height / 2, cx + width / 2], axis=1)
    boxes = (boxes * side + pad) / (total - 1)
    zoomed = tf.image.crop_and_resize(padded, boxes, tf.range(n), [side, side])
    return tf.cast(tf.clip_by_value(tf.round(zoomed), 0, 255), images.dtype)


def colour_batch(images: tf.Tensor, strength: float, key: tf.Tensor) -> tf.Tensor:
    """Colour jitter: each image's saturation and brightness scaled by U(1 - s, 1 + s)."""
    n = tf.shape(images)[0]
    x = tf.cast(images, tf.float32)
    grey = tf.reduce_mean(x, axis=-1, keepdims=True)
    saturation = _uniform(key, n, 1 - strength, 1 + strength)[:, None, None, None]
    brightness = _uniform(key + 1, n, 1 - strength, 1 + strength)[:, None, None, None]
    x = (grey + (x - grey) * saturation) * brightness
    return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), images.dtype)


OUTLIER_TILES = 8  # tiles per side of a patch-shuffled outlier (4-pixel tiles at 32 px)
OUTLIER_KINDS = ("tiles", "mixup", "cutmix", "real")  # real: drawn from --outliers-data
CUTMIX_SIDE = 0.7  # cutmix outliers: the pasted square's side as a share of the image's (half its area)


def with_outliers(images: tf.Tensor, targets: tf.Tensor, outliers: tf.Tensor, chosen: tf.Tensor):
    """The `chosen` images replaced by their `outliers`, with the uniform target."""
    uniform = tf.fill(tf.shape(targets), 1.0 / targets.shape[-1])
    return (tf.where(chosen[:, None, None, None], outliers, images),
            tf.where(chosen[:, None], uniform, targets))


def shuffled_tiles(images: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
    """Each image cut into OUTLIER_TILES x OUTLIER_TILES tiles, shuffled: its colours and
    textures without its objects."""
    n, side, channels = tf.shape(images)[0], images.shape[1], images.shape[-1]
    tile = side // OUTLIER_TILES
    grid = tf.reshape(images, [n, OUTLIER_TILES, tile, OUTLIER_TILES, tile, channels])
    tiles = tf.reshape(tf.transpose(grid, [0, 1, 3, 2, 4, 5]), [n, OUTLIER_TILES ** 2, tile, tile, channels])
    order = tf.argsort(tf.random.stateless_uniform([n, OUTLIER_TILES ** 2], key), axis=1)
    shuffled = tf.reshape(tf.gather(tiles, order, axis=1, batch_dims=1),
                          [n, OUTLIER_TILES, OUTLIER_TILES, tile, tile, channels])
    return tf.reshape(tf.transpose(shuffled, [0, 1, 3, 2, 4, 5]), tf.shape(images))


def mixed_with_previous(images: tf.Tensor, kind: str, key: tf.Tensor) -> tf.Tensor:
    """Each image mixed with the one before it in the (shuffled) batch: blended half and half
    (mixup), or with a square of it pasted in (cutmix): parts of two objects that together are
    neither."""
    partner = tf.roll(images, 1, axis=0)
    if kind == "mixup":
        blend = (tf.cast(images, tf.float32) + tf.cast(partner, tf.float32)) / 2
        return tf.cast(tf.round(blend), images.dtype)
    return cutout_batch(images, round(CUTMIX_SIDE * images.shape[1]), partner, key)


def outlier_batch(images: tf.Tensor, targets: tf.Tensor, share: float, key: tf.Tensor, kind: str = "tiles"):
    """Outlier exposure (Hendrycks et al., 2019) with synthetic outliers made of the batch itself:
    a `share` of the images become outliers of `kind` (OUTLIER_KINDS), each with the uniform
    target, so the network learns to be unsure of them. A mixed image whose partner is of its
    own class stays as it is."""
    n = tf.shape(images)[0]
    chosen = _uniform(key + 1, n, 0, 1) < share
    if kind == "tiles":
        outliers = shuffled_tiles(images, key)
    else:
        outliers = mixed_with_previous(images, kind, key + 2)
        chosen &= tf.argmax(targets, axis=1) != tf.argmax(tf.roll(targets, 1, axis=0), axis=1)
    return with_outliers(images, targets, outliers, chosen)


@dataclass(frozen=True)
class Augment:
    """The training augmentations and their strengths (0 / False = off); see TrainConfig's help."""

    flip: bool = False
    translate: int = 0
    cutout: int = 0
    zoom: float = 0.0
    colour: float = 0.0
    noise: float = 0.0
    contrast: float = 0.0
    blur: float = 0.0
    outliers: float = 0.0
    outlier_kind: str = "tiles"

    @classmethod
    def of(cls, config) -> Augment:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


def rows_of(images, index: tf.Tensor) -> tf.Tensor:
    """images[index] as a tensor, read by NumPy: only those rows of a memory map are touched."""
    batch = tf.numpy_function(lambda i: np.asarray(images[i]), [index], tf.as_dtype(images.dtype),
                              stateful=False)
    batch.set_shape([index.shape[0], *images.shape[1:]])
    return batch


def real_outliers(batch: tf.Tensor, targets: tf.Tensor, outliers, share: float, key: tf.Tensor):
    """Outlier exposure with real images of no training class: a `share` of the batch replaced
    by images drawn from `outliers`, each with the uniform target."""
    n = tf.shape(batch)[0]
    chosen = _uniform(key, n, 0, 1) < share
    pick = tf.random.stateless_uniform([n], key + 1, minval=0, maxval=len(outliers), dtype=tf.int64)
    drawn = rows_of(outliers, pick)
    return with_outliers(batch, targets, drawn, chosen)


def train_dataset(images, labels: np.ndarray, num_classes: int, batch_size: int,
                  seed: int, first_epoch: int, epochs: int, augment: Augment,
                  outlier_images=None) -> tf.data.Dataset:
    """Batches for epochs first_epoch..epochs-1, one-hot labels (for label smoothing).

    images: an array, a memory map or a `Split.rows` selection: anything indexed by row numbers.
    outlier_images: real outliers (same size) that the --outliers share is drawn from, before
    the augmentations, instead of synthetic ones.
    """
    n = len(labels)
    synthetic = augment.outliers and outlier_images is None
    if synthetic and augment.outlier_kind == "tiles" and images.shape[1] % OUTLIER_TILES:
        raise CifarlabError(f"--outliers cuts images into {OUTLIER_TILES}x{OUTLIER_TILES} tiles: "
                            f"use an --image-size divisible by {OUTLIER_TILES}, or --outliers 0")
    steps = n // batch_size  # drop the ragged last batch: constant shapes, one trace
    y = tf.constant(labels)
    # Alternating flip (airbench): a random half is mirrored in even epochs, the other half in odd
    # ones, so every two epochs show each image both ways instead of leaving it to chance.
    first_flip = tf.random.stateless_uniform([n], tf.constant([seed, -1], tf.int64)) < 0.5
    # Cutout fills with the mean colour, which the model's normalization maps to zero.
    mean_colour = (tf.constant(np.round(channel_stats(images)[0]).astype(images.dtype))
                   if augment.cutout else None)

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([seed, epoch]))
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[: steps * batch_size], [steps, batch_size]))
        return batches.enumerate().map(lambda i, idx: augmented_batch(epoch, i, idx))

    def augmented_batch(epoch, step, idx):
        batch = rows_of(images, idx)
        key = tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + epoch, step])
        targets = tf.one_hot(tf.gather(y, idx), num_classes)
        if outlier_images is not None and augment.outliers:
            batch, targets = real_outliers(batch, targets, outlier_images, augment.outliers, key + 50)
        if augment.flip:
            batch = flip_batch(batch, tf.not_equal(tf.gather(first_flip, idx), epoch % 2 == 1))
        if augment.zoom:
            batch = zoom_batch(batch, augment.zoom, key + 60)
        if augment.translate:
            batch = translate_batch(batch, augment.translate, key + 1)
        if augment.colour:
            batch = colour_batch(batch, augment.colour, key + 70)
        if augment.cutout:
            batch = cutout_batch(batch, augment.cutout, mean_colour, key + 2)
        if augment.blur:
            batch = blur_batch(batch, augment.blur, key + 10)
        if augment.contrast:
            batch = contrast_batch(batch, augment.contrast, key + 20)
        if augment.noise:
            batch = noise_batch(batch, augment.noise, key + 30)
        if synthetic:
            batch, targets = outlier_batch(batch, targets, augment.outliers, key + 40, augment.outlier_kind)
        return batch, targets

    epochs_ds = tf.data.Dataset.range(first_epoch, epochs)
    return epochs_ds.flat_map(epoch_batches).prefetch(2)


def eval_dataset(images, labels: np.ndarray, num_classes: int, batch_size: int) -> tf.data.Dataset:
    """Batches in order (the last one ragged) of any array-like `images`, read batch by batch."""
    n = len(labels)
    y = tf.constant(labels)

    def batch(start: tf.Tensor):
        index = tf.range(start, tf.minimum(start + batch_size, n))
        return rows_of(images, index), tf.one_hot(tf.gather(y, index), num_classes)

    return tf.data.Dataset.range(0, n, batch_size).map(batch).prefetch(2)
