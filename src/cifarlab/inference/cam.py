"""Class-activation maps: where in the image a Keras classifier finds its evidence for a class.

    explainer = CamExplainer(keras_model)            # method "auto"
    maps, probabilities = explainer.explain(images)  # uint8 (N, H, W, 3) -> (N, H, W) in [0, 1], (N, C)
    heat = overlay_heatmap(image, resize_map(maps[0], image.shape[:2]))

Methods (one forward pass gives both the maps and the probabilities):
- "cam": class activation map (Zhou et al. 2016) for a global-pooling -> Dense head such as
  `fast`'s: the last feature maps weighted by the Dense column of the class. No gradient.
- "gradcam": Grad-CAM (Selvaraju et al. 2017): feature maps weighted by the spatial mean of the
  class logit's gradient. Works on any convolutional head (e.g. `baseline`'s Flatten -> Dense).
- "layercam": LayerCAM (Jiang et al. 2021): each position weighted by its own positive gradient;
  usable on finer, earlier feature maps. Several stages are fused (mean of the per-stage maps,
  each normalized to max 1).
- "auto": the best-measured method for the architecture (bench/cam_pointing.py,
  bench/results/cam_pointing.json): LayerCAM on the two stages before the last for a
  global-pooling head (`fast`: 15x15 + 7x7 at 32 px), Grad-CAM on the stage before the last for
  any other head (`baseline`: 8x8).

Maps are ReLU-clipped and normalized per image to [0, 1] (divided by their maximum; an all-zero
map stays zero). The class scored is the pre-softmax logit (the input of the final softmax).

Upsampling to the input size is geometry-aware: the centre of each feature cell is placed where
its receptive field is centred in the input (computed from the strides, kernel sizes and padding
of the layers before it), then bilinear in between. A naive resize assumes the cells tile the
image evenly, which `fast` (2x2 valid stem, floor pooling) breaks by 1.4 px on its 15x15 stage,
3 px on its 7x7 one and 6 px on its 3x3 one at 32 px, and lowers the pointing game
(bench/results/cam_pointing.json; on `baseline`, whose cells do tile evenly, both are the same).

Why not tf-keras-vis (0.8.7): with Keras 3 its Gradcam/Layercam return no gradient on our
models. It records only what derives from the float input it watches (`watch_accessed_variables=
False`), and our models cast that input to uint8 first (normalization lives in the model), so
the tape holds nothing. It needs a float-input model, brings `tensorflow.keras` imports from the
Keras 2 era and cannot return the probabilities from the same pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import keras
import numpy as np
import tensorflow as tf

from cifarlab.errors import CifarlabError
from cifarlab.models.openset import without_ood_score

METHODS = ("auto", "cam", "gradcam", "layercam")
# Default feature stages per method, the best measured for each (bench/results/cam_pointing.json):
# -1 is the last stage (the one before the head), -2 the one before it. At 32 px the last stage
# is 3x3 (`fast`) or 4x4 (`baseline`): too coarse to point at an 8x8 object, so Grad-CAM uses the
# stage before it (textbook Grad-CAM takes the last conv layer: pass stages=(-1,) for that).
DEFAULT_STAGES = {"cam": (-1,), "gradcam": (-2,), "layercam": (-3, -2)}
# "auto" by head, the most class-selective in that record: global pooling -> Dense (`fast`):
# LayerCAM on 15x15 + 7x7; Flatten -> Dense (`baseline`): Grad-CAM at 8x8, where LayerCAM
# drifts to the other object of two-object images.
AUTO_METHOD = {"global_pool": "layercam", "other": "gradcam"}
BATCH = 256
HEATMAP_ALPHA = 0.45  # weight of the heatmap where it is blended over an image

_SPATIAL_LAYERS = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
                   keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.ZeroPadding2D)
_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_GLOBAL_POOLS = (keras.layers.GlobalMaxPooling2D, keras.layers.GlobalAveragePooling2D)


@dataclass(frozen=True)
class Stage:
    """A feature layer and where its cells sit in the input: cell i is centred on input pixel
    `offset + i * jump` (per axis, pixel centres at integer coordinates)."""

    layer: keras.layers.Layer
    size: tuple[int, int]
    offset: tuple[float, float]
    jump: tuple[float, float]


def _spatial(shape) -> tuple[int, int] | None:
    return (int(shape[1]), int(shape[2])) if len(shape) == 4 and shape[1] and shape[2] else None


def _pairs(value) -> tuple[int, int]:
    return (int(value), int(value)) if np.isscalar(value) else (int(value[0]), int(value[1]))


def _geometry_step(layer, offset: list[float], jump: list[float]) -> None:
    """Update the input-space (offset, jump) of the cell grid after `layer` (in place)."""
    if isinstance(layer, keras.layers.ZeroPadding2D):
        for axis, (before, _) in enumerate(layer.padding):
            offset[axis] -= before * jump[axis]
        return
    kernel = _pairs(getattr(layer, "kernel_size", None) or layer.pool_size)
    strides = _pairs(layer.strides or kernel)
    dilation = _pairs(getattr(layer, "dilation_rate", 1))
    in_size, out_size = _spatial(layer.input.shape), _spatial(layer.output.shape)
    for axis in range(2):
        k = (kernel[axis] - 1) * dilation[axis] + 1
        pad_before = 0
        if layer.padding == "same" and in_size and out_size:
            pad_before = max((out_size[axis] - 1) * strides[axis] + k - in_size[axis], 0) // 2
        offset[axis] += ((k - 1) / 2 - pad_before) * jump[axis]
        jump[axis] *= strides[axis]


def feature_stages(model: keras.Model) -> list[Stage]:
    """One layer per spatial resolution from the first convolution to the head, with its
    geometry: the last layer at that resolution that is not a convolution (so a block's output,
    not the next block's first convolution before its pooling), else the last one.

    The geometry assumes a chain of spatial layers (a residual branch of stride-1 'same'
    convolutions does not move the grid, so such nets are fine too)."""
    stages: list[Stage] = []
    offset, jump = [0.0, 0.0], [1.0, 1.0]
    seen_conv = first_of_run = False
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            size = _spatial(layer.output.shape)
        except (AttributeError, ValueError):  # a layer used more than once: no single output
            continue
        if isinstance(layer, _SPATIAL_LAYERS):
            _geometry_step(layer, offset, jump)
        seen_conv = seen_conv or isinstance(layer, _CONVS)
        if not seen_conv or size is None:
            continue
        stage = Stage(layer, size, (offset[0], offset[1]), (jump[0], jump[1]))
        if not stages or stages[-1].size != size:
            stages.append(stage)
            first_of_run = True
        elif first_of_run or not isinstance(layer, _CONVS):
            # a convolution just before a pooling is the next block's pre-activation: keep the
            # block's output (its last activation / normalization) as the stage
            stages[-1] = stage
            first_of_run = first_of_run and isinstance(layer, _CONVS)
    if not stages:
        raise CifarlabError(f"model {model.name!r} has no convolutional feature maps to explain")
    return stages


def _interpolation_matrix(out_size: int, in_size: int, offset: float, jump: float, aligned: bool) -> np.ndarray:
    """(out_size, in_size) bilinear weights: row x interpolates the feature cells around input
    pixel x. aligned=False reproduces cv2.resize's even tiling (half-pixel centres)."""
    x = np.arange(out_size, dtype=np.float64)
    u = (x - offset) / jump if aligned else (x + 0.5) * in_size / out_size - 0.5
    u = np.clip(u, 0, in_size - 1)
    low = np.minimum(np.floor(u).astype(int), max(in_size - 2, 0))
    frac = u - low
    matrix = np.zeros((out_size, in_size), np.float32)
    matrix[np.arange(out_size), low] = 1 - frac
    if in_size > 1:
        matrix[np.arange(out_size), low + 1] += frac
    return matrix


def _softmax_logits(model: keras.Model):
    """The pre-softmax tensor if the model ends in a softmax Activation layer, else None."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Activation) and getattr(last.activation, "__name__", "") == "softmax":
        return last.input
    return None


def _head_dense(model: keras.Model, stage: Stage):
    """The Dense layer after a global pooling of `stage` (Dropout aside), else None."""
    layers = model.layers
    following = [layer for layer in layers[layers.index(stage.layer) + 1:]
                 if not isinstance(layer, keras.layers.Dropout)]
    if len(following) >= 2 and isinstance(following[0], _GLOBAL_POOLS) and \
            isinstance(following[1], keras.layers.Dense):
        return following[1]
    return None


def _cam_weights(model: keras.Model, stage: Stage):
    """The Dense kernel (K, C) for plain CAM: the stage must feed a global pooling whose output
    feeds (possibly through Dropout) the logits Dense layer."""
    dense = _head_dense(model, stage)
    if dense is not None:
        return dense.kernel
    following = model.layers[model.layers.index(stage.layer) + 1:]
    raise CifarlabError(
        f"method 'cam' needs a global-pooling -> Dense head; model {model.name!r} has "
        f"{type(following[0]).__name__ if following else 'nothing'} after its last feature map: "
        "use method 'gradcam' or 'layercam'")


class CamExplainer:
    """Class-activation maps and probabilities of a Keras classifier, from one forward pass.

    method: "auto", "cam", "gradcam" or "layercam" (see the module doc); `self.method` is the
    one in use and `self.stage_names` its feature layers. stages: which feature stages to use,
    overriding the method's default (DEFAULT_STAGES): negative ints count from the last stage
    (-1), non-negative ints from the first, strings are layer names. aligned: geometry-aware
    upsampling (default) or cv2-style even tiling (for comparison in the benchmark).
    """

    def __init__(self, keras_model, method: str = "auto", stages: Sequence[int | str] | None = None,
                 aligned: bool = True):
        if method not in METHODS:
            raise CifarlabError(f"unknown CAM method {method!r}; choose one of {', '.join(METHODS)}")
        keras_model = without_ood_score(keras_model)  # the maps explain the classifier alone
        self.model = keras_model
        shape = keras_model.inputs[0].shape
        self.input_size = (int(shape[1]), int(shape[2]))
        all_stages = feature_stages(keras_model)
        if method == "auto":
            method = AUTO_METHOD["global_pool" if _head_dense(keras_model, all_stages[-1]) else "other"]
        self.method = method
        self.stages = [self._pick(all_stages, s) for s in (stages or DEFAULT_STAGES[self.method])]
        if self.method == "cam":
            if len(self.stages) != 1 or self.stages[0].layer is not all_stages[-1].layer:
                raise CifarlabError("method 'cam' uses the last feature stage only")
            self._weights = _cam_weights(keras_model, self.stages[0])
        logits = _softmax_logits(keras_model)
        self._from_log_probabilities = logits is None
        outputs = [s.layer.output for s in self.stages] + [logits if logits is not None else keras_model.output,
                                                           keras_model.output]
        self._sub = keras.Model(keras_model.inputs, outputs, name=f"{keras_model.name}_cam")
        self._resize = [
            (tf.constant(_interpolation_matrix(self.input_size[0], s.size[0], s.offset[0], s.jump[0], aligned)),
             tf.constant(_interpolation_matrix(self.input_size[1], s.size[1], s.offset[1], s.jump[1], aligned)))
            for s in self.stages]
        self._run = tf.function(self._maps, reduce_retracing=True, input_signature=[
            tf.TensorSpec((None, *self.input_size, 3), tf.uint8), tf.TensorSpec((None,), tf.int32)])

    @staticmethod
    def _pick(stages: list[Stage], which: int | str) -> Stage:
        if isinstance(which, str):
            for stage in stages:
                if stage.layer.name == which:
                    return stage
            raise CifarlabError(f"no feature stage named {which!r}; stages: "
                                f"{', '.join(s.layer.name for s in stages)}")
        if not -len(stages) <= which < len(stages):
            raise CifarlabError(f"feature stage {which} out of range: the model has {len(stages)}")
        return stages[which]

    @property
    def stage_names(self) -> list[str]:
        return [s.layer.name for s in self.stages]

    def _maps(self, images, class_index):
        # Watch every weight (Keras 3 wraps tf.Variables): the ops after the features are then
        # recorded even in a model with nothing trainable. "cam" needs no gradient at all.
        variables = [] if self.method == "cam" else [getattr(v, "value", v) for v in self._sub.weights]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(variables)
            *features, logits, probabilities = self._sub(images, training=False)
            top = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            chosen = tf.where(class_index < 0, top, class_index)
            logits = tf.cast(logits, tf.float32)
            if self._from_log_probabilities:
                logits = tf.math.log(tf.maximum(logits, 1e-12))
            score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
        features = [tf.cast(f, tf.float32) for f in features]
        if self.method == "cam":
            weights = tf.transpose(tf.gather(tf.cast(self._weights, tf.float32), chosen, axis=1))  # (N, K)
            coarse = [tf.einsum("nhwk,nk->nhw", features[0], weights)]
        else:
            grads = tape.gradient(score, features)
            if self.method == "gradcam":
                coarse = [tf.einsum("nhwk,nk->nhw", a, tf.reduce_mean(tf.cast(g, tf.float32), axis=(1, 2)))
                          for a, g in zip(features, grads)]
            else:  # layercam
                coarse = [tf.reduce_sum(tf.nn.relu(tf.cast(g, tf.float32)) * a, axis=-1)
                          for a, g in zip(features, grads)]
        fused = tf.add_n([_normalize(tf.einsum("Hh,nhw,Ww->nHW", rows, tf.nn.relu(m), cols))
                          for m, (rows, cols) in zip(coarse, self._resize)])
        return _normalize(fused), probabilities

    def explain(self, images: np.ndarray, class_index: np.ndarray | int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Maps float32 (N, H, W) in [0, 1] at the model's input size and probabilities (N, C)
        for uint8 images (N, H, W, 3) at that size; class_index None = each image's top class."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (*self.input_size, 3):
            raise CifarlabError(f"expected images of shape (N, {self.input_size[0]}, {self.input_size[1]}, 3), "
                                f"got {images.shape}")
        if images.dtype != np.uint8:
            raise CifarlabError(f"expected uint8 images (0..255), got {images.dtype}")
        n = len(images)
        num_classes = int(self.model.output.shape[-1])
        if class_index is None:
            chosen = np.full(n, -1, np.int32)
        else:
            chosen = np.broadcast_to(np.asarray(class_index), (n,)).astype(np.int32)
            if chosen.size and (chosen.min() < 0 or chosen.max() >= num_classes):
                raise CifarlabError(f"class_index must be in 0..{num_classes - 1}")
        maps, probabilities = [], []
        for start in range(0, n, BATCH):
            m, p = self._run(images[start:start + BATCH], chosen[start:start + BATCH])
            maps.append(m.numpy())
            probabilities.append(p.numpy())
        if not maps:
            return np.zeros((0, *self.input_size), np.float32), np.zeros((0, num_classes), np.float32)
        return np.concatenate(maps), np.concatenate(probabilities).astype(np.float32)


def _normalize(maps):
    """Per-image division by the maximum (maps are >= 0); an all-zero map stays zero."""
    peak = tf.reduce_max(maps, axis=(1, 2), keepdims=True)
    return tf.math.divide_no_nan(maps, peak)


def resize_map(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) map resized bilinearly to size (height, width), float32 clipped to [0, 1]."""
    height, width = size
    out = cv2.resize(np.asarray(cam, np.float32), (int(width), int(height)), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0, out=out)


def overlay_heatmap(image: np.ndarray, cam: np.ndarray, alpha: float = HEATMAP_ALPHA,
                    bgr: bool = False) -> np.ndarray:
    """The map coloured with OpenCV's JET colormap, blended over the uint8 image with weight
    `alpha` (RGB in and out; BGR with `bgr`, as OpenCV frames are). The map is resized to the
    image if their sizes differ."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise CifarlabError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
    if cam.shape != image.shape[:2]:
        cam = resize_map(cam, image.shape[:2])
    heat = cv2.applyColorMap(np.round(np.clip(cam, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    if not bgr:
        heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(heat, float(alpha), image, 1.0 - float(alpha), 0.0)
