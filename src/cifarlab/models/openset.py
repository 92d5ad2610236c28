"""The out-of-distribution score: a second model output saying how unlike the training classes an
image is (higher = less like them), so `.keras`, LiteRT and ONNX all compute the same number.

A score is computed from the network's feature vector (the input of its `logits` Dense layer)
and its logits, with statistics of the training images' features stored as weights of the
`OODScore` layer. The formulas are written once in `keras.ops` (`score`), so the layer and the
benchmark that chose between them (bench/open_set.py) run the same code:

- `msp`: minus the top softmax probability of the logits (Hendrycks & Gimpel, 2017);
- `maxlogit`: minus the top logit; `energy`: minus log-sum-exp of the logits;
- `mahalanobis`: the squared Mahalanobis distance to the nearest class mean, one shared
  covariance (Lee et al., 2018);
- `rmds`: that distance minus the distance to the mean of all training features under their own
  covariance (relative Mahalanobis, Ren et al., 2021);
- `knn`: one minus the cosine similarity to the k-th nearest of a bank of training features
  (Sun et al., 2022), k = KNN_K, or one per KNN_BANK_PER_K bank images for a small bank (a few
  images per class: the 10th nearest would be of another class).

With `mirror`, the score is the mean of the image's and its mirror image's: the same layers run a
second time on the flipped image, in the same graph (one set of weights in the file). It costs a
second pass of the network and is steadier on real photos (docs/results.md#real-photos).

Covariances are Ledoit-Wolf shrunk (scikit-learn), so a few images per class still give a usable
(invertible) estimate. The output is clipped to a range around the threshold (`set_range`): an
int8 export spends its 256 levels where the unknown flag is decided, not on how far beyond
it an outlier lies.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from cifarlab.errors import CifarlabError

from cifarlab.models.metadata import LOGITS, MIRROR, OOD_SCORE, PROBABILITIES

SCORES = ("msp", "maxlogit", "energy", "mahalanobis", "rmds", "knn")
NEEDS = {"mahalanobis": ("means", "precision_root"),
         "rmds": ("means", "precision_root", "global_mean", "global_precision_root"),
         "knn": ("bank",)}
KNN_K = 10
KNN_BANK_PER_K = 20
KNN_BANK = 2000  # training images in the kNN bank by default (4 bytes x features each in the file)
UNBOUNDED = 1e9
DEFAULT_SCORE = "knn"  # the best all-round score in bench/results/open_set-fast.json


@dataclass(frozen=True)
class Statistics:
    """What the scores need of the training features, as float32 arrays."""

    means: np.ndarray                  # (classes, D) class means
    precision_root: np.ndarray         # (D, D) L with L L^T = inverse of the shared class covariance
    global_mean: np.ndarray            # (D,) mean of all features
    global_precision_root: np.ndarray  # (D, D) the same for the covariance of all features
    bank: np.ndarray                   # (M, D) L2-normalised features of M training images
    bank_rows: np.ndarray | None = None  # which rows of the fitted features the bank holds

    def arrays(self, kind: str) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in NEEDS.get(kind, ())}


def precision_root(centred: np.ndarray) -> np.ndarray:
    from sklearn.covariance import LedoitWolf  # slow import: only when fitting

    covariance = LedoitWolf(assume_centered=True).fit(centred).covariance_
    # A floor under the variances: features that never vary (identical images) have none.
    covariance += np.eye(len(covariance)) * (1e-6 * np.trace(covariance) / len(covariance) + 1e-6)
    precision = np.linalg.inv(covariance)
    return np.linalg.cholesky((precision + precision.T) / 2).astype(np.float32)


def fit_statistics(features: np.ndarray, labels: np.ndarray, num_classes: int,
                   bank_size: int = KNN_BANK, seed: int = 0) -> Statistics:
    """Class means, shrunk shared and global covariances and a kNN bank of (N, D) features."""
    features = np.asarray(features, np.float64)
    present = np.unique(labels)
    if len(features) < 2 or len(present) < 1:
        raise CifarlabError("open-set statistics need at least 2 training images")
    means = np.zeros((num_classes, features.shape[1]))
    for c in present:
        means[c] = features[labels == c].mean(0)
    far = np.abs(features).max() * 1e3 + 1e3  # a class without images is never the nearest
    means[np.setdiff1d(np.arange(num_classes), present)] = far
    global_mean = features.mean(0)
    pick = np.random.default_rng(seed).permutation(len(features))[:bank_size]
    bank = features[pick] / (np.linalg.norm(features[pick], axis=1, keepdims=True) + 1e-12)
    return Statistics(means.astype(np.float32), precision_root(features - means[labels]),
                      global_mean.astype(np.float32), precision_root(features - global_mean),
                      bank.astype(np.float32), pick)


def _squared_distances(features, means, root):
    """(N, C) squared Mahalanobis distances ||(f - m) L||^2 as three matrix products."""
    ops = keras.ops
    z, m = ops.matmul(features, root), ops.matmul(means, root)
    return (ops.sum(z * z, axis=1, keepdims=True) - 2.0 * ops.matmul(z, ops.transpose(m))
            + ops.sum(m * m, axis=1)[None, :])


def score(kind: str, features, logits, stats: dict) -> object:
    """(N,) out-of-distribution score of one kind (see the module docstring); keras.ops, so it
    runs on NumPy arrays and inside a model graph alike."""
    ops = keras.ops
    if kind == "msp":
        return -ops.max(ops.softmax(logits, axis=-1), axis=-1)
    if kind == "maxlogit":
        return -ops.max(logits, axis=-1)
    if kind == "energy":
        return -ops.logsumexp(logits, axis=-1)
    if kind == "mahalanobis":
        return ops.min(_squared_distances(features, stats["means"], stats["precision_root"]), axis=-1)
    if kind == "rmds":
        nearest = ops.min(_squared_distances(features, stats["means"], stats["precision_root"]), axis=-1)
        background = _squared_distances(features, stats["global_mean"][None, :],
                                        stats["global_precision_root"])[:, 0]
        return nearest - background
    if kind == "knn":
        unit = features / (ops.norm(features, axis=-1, keepdims=True) + 1e-12)
        similarity = ops.matmul(unit, ops.transpose(stats["bank"]))
        k = knn_k(int(stats["bank"].shape[0]))
        return 1.0 - ops.top_k(similarity, k)[0][:, -1]
    raise CifarlabError(f"unknown open-set score {kind!r}; use one of {', '.join(SCORES)}")


def leave_one_out_scores(kind: str, features: np.ndarray, logits: np.ndarray, stats: Statistics) -> np.ndarray:
    """The scores of the images the statistics were fitted on, each as if unseen: for `knn` an
    image's own bank entry is left out (else its nearest neighbour is itself); the class
    statistics of the other scores barely move without one image, so they are used as they are."""
    if kind != "knn":
        return np.asarray(score(kind, features, logits, stats.arrays(kind)))
    unit = features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-12)
    similarity = unit @ stats.bank.T
    similarity[stats.bank_rows, np.arange(len(stats.bank_rows))] = -np.inf
    k = knn_k(len(stats.bank) - 1)
    return 1.0 - np.sort(similarity, axis=1)[:, -k]


def knn_k(bank_size: int) -> int:
    return max(1, min(KNN_K, bank_size // KNN_BANK_PER_K))


@keras.saving.register_keras_serializable(package="cifarlab")
class Mirror(keras.layers.Layer):
    """(N, H, W, C) images mirrored left to right."""

    def call(self, images):
        return keras.ops.flip(images, axis=2)

    def compute_output_shape(self, shape):
        return shape


@keras.saving.register_keras_serializable(package="cifarlab")
class OODScore(keras.layers.Layer):
    """(features, logits[, mirrored features, mirrored logits]) -> (N, 1) float32 score, the mean
    of both views' when the mirrored ones are given; the statistics are non-trainable weights."""

    def __init__(self, kind: str, shapes: dict | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if kind not in SCORES:
            raise CifarlabError(f"unknown open-set score {kind!r}; use one of {', '.join(SCORES)}")
        self.kind = kind
        self.shapes = {name: list(shape) for name, shape in (shapes or {}).items()}
        self.stats = {name: self.add_weight(shape=tuple(shape), initializer="zeros", trainable=False,
                                            name=name)
                      for name, shape in self.shapes.items()}
        self.range = self.add_weight(shape=(2,), trainable=False, name="range",
                                     initializer=keras.initializers.Constant([-UNBOUNDED, UNBOUNDED]))

    def call(self, features, logits, mirrored_features=None, mirrored_logits=None):
        raw = self._raw(features, logits)
        if mirrored_features is not None:
            raw = (raw + self._raw(mirrored_features, mirrored_logits)) / 2.0
        return keras.ops.expand_dims(keras.ops.clip(raw, self.range[0], self.range[1]), -1)

    def _raw(self, features, logits):
        return score(self.kind, keras.ops.cast(features, "float32"), keras.ops.cast(logits, "float32"),
                     self.stats)

    def compute_output_shape(self, features_shape, logits_shape, *mirrored_shapes):
        return (features_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "shapes": self.shapes}


def set_range(model: keras.Model, low: float, high: float) -> None:
    """Clip the model's score output to [low, high]."""
    layer = next(layer for layer in model.layers if isinstance(layer, OODScore))
    layer.range.assign(np.array([low, high], np.float32))


def probabilities_output(model: keras.Model):
    return model.get_layer(PROBABILITIES).output


def has_ood_score(model: keras.Model) -> bool:
    return any(isinstance(layer, OODScore) for layer in model.layers)


def feature_model(model: keras.Model) -> keras.Model:
    """image -> (features, logits), the inputs of every score."""
    try:
        logits = model.get_layer(LOGITS)
    except ValueError:
        raise CifarlabError(f"model {model.name!r} has no layer named '{LOGITS}'; "
                            "open-set scores need a model trained by cifarlab") from None
    return keras.Model(model.input, [logits.input, logits.output], name=f"{model.name}_features")


def mirrored_feature_model(model: keras.Model) -> keras.Model:
    """image -> (features, logits) of the image mirrored (a separate model, e.g. to fit on)."""
    image = keras.Input(model.input.shape[1:], dtype=model.input.dtype)
    return keras.Model(image, feature_model(model)(Mirror()(image)))


def mirror_view(model: keras.Model) -> list:
    """[features, logits] of the model's input mirrored, as tensors of the model's own graph."""
    extractor = feature_model(model)
    # The extractor's layers called on a second input in the same graph, so the file holds their
    # weights once (calling `extractor` itself would nest a copy; Keras has no public call for it).
    return extractor._run_through_graph(Mirror(name=MIRROR)(model.input), operation_fn=lambda op: op)


def with_ood_score(model: keras.Model, kind: str, stats: Statistics | None,
                   mirror: bool = False) -> keras.Model:
    """`model` with the outputs [probabilities, ood_score] (a score already there is replaced);
    `mirror`: the score is the mean over the image and its mirror image."""
    arrays = stats.arrays(kind) if stats is not None else {}
    missing = set(NEEDS.get(kind, ())) - set(arrays)
    if missing:
        raise CifarlabError(f"the {kind} score needs training statistics ({', '.join(sorted(missing))})")
    layer = OODScore(kind, {name: a.shape for name, a in arrays.items()}, name=OOD_SCORE)
    scored = _scored_by(model, layer, mirror)
    for name, array in arrays.items():
        layer.stats[name].assign(array)
    return scored


def with_score_of(model: keras.Model, scored: keras.Model) -> keras.Model:
    """`model` (a new head on the same layers, e.g. another temperature) with the ood_score output
    of `scored`, its statistics and threshold range as they are; `model` itself if it has none."""
    layer = next((layer for layer in scored.layers if isinstance(layer, OODScore)), None)
    if layer is None:
        return model
    return _scored_by(model, layer, any(isinstance(other, Mirror) for other in scored.layers))


def _scored_by(model: keras.Model, layer: OODScore, mirror: bool) -> keras.Model:
    logits = model.get_layer(LOGITS)
    views = [logits.input, logits.output, *(mirror_view(model) if mirror else [])]
    return keras.Model(model.input, [probabilities_output(model), layer(*views)], name=model.name)


def without_ood_score(model: keras.Model) -> keras.Model:
    """The classifier alone (one output), e.g. to export or fine-tune it."""
    if not has_ood_score(model):
        return model
    return keras.Model(model.input, probabilities_output(model), name=model.name)
