"""How a run's network starts: from scratch, or from a trained model (`--from MODEL`).

Both give a `Start`: `build(policy)` makes the initialised network that the one training path
(training/train.py) then compiles and trains, and `finish(model, temperature)` turns the trained
network into the float32 model that ships.

From a trained model, the parent is cut at its feature layer, the input of its `logits` Dense
layer (`fast`: the global max-pool of the last block; `baseline`: its 256-unit dense block), and
a new head is put on it: Dense(number of new classes) named `logits`, then the registry's
`softmax_head`, initialised by a multinomial logistic regression (scikit-learn, L2, on centred
and scaled features) of every training image and its mirror image through the frozen network.
The `head` recipe stops there (no training step); `finetune` then trains the whole network.
The parent's input size and normalization are kept; the parent trains in its own float32.

With a recipe that trains from scratch, `--from` gives that recipe's own network (and precision)
every weight of the parent up to its logits instead: the parent must have the same architecture,
widths and classes, and training goes on with the recipe's data, augmentations and losses;
with `keep_parent`, the trained weights are then mixed with the parent's (WiSE-FT, Wortsman et
al., 2022), BatchNorm statistics included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from cifarlab.data import Split
from cifarlab.data.stats import channel_stats
from cifarlab.errors import CifarlabError
from cifarlab.models.io import load_keras_model, require_keras_file, resolve_model_path
from cifarlab.models.metadata import ModelMetadata
from cifarlab.models.metadata import LOGITS
from cifarlab.models.openset import feature_model
from cifarlab.models.registry import build_model, softmax_head

HEAD_C = 0.1                 # inverse L2 strength of the logistic regression (scaled features)


@dataclass
class Start:
    build: Callable[[str], keras.Model]                 # dtype policy -> initialised network
    finish: Callable[[keras.Model, float], keras.Model]  # trained network, temperature -> shipped
    mean: tuple[float, ...]
    std: tuple[float, ...]
    parent: Path | None = None
    describe: str = ""                                  # what the start did, for the recipe record
    settle: Callable[[keras.Model], None] | None = None  # on the trained network, before calibration


def from_scratch(cfg, image_size: tuple[int, int], num_classes: int, train: Split,
                 adjust: Callable[[keras.Model], None], stats: tuple | None = None) -> Start:
    """The registered architecture, initialised from the training images where it needs them;
    `adjust(model)` applies run options to every model built (BatchNorm momentum). `stats`:
    the input normalization's (mean, std), by default the training images'."""
    mean, std = stats or channel_stats(train.rows)

    def build(policy: str, temperature: float = 1.0) -> keras.Model:
        model = build_model(cfg.model, image_size, num_classes, mean, std, dtype_policy=policy,
                            temperature=temperature, init_images=train.rows, **cfg.model_options())
        adjust(model)
        return model

    def finish(model: keras.Model, temperature: float) -> keras.Model:
        final = build("float32", temperature)
        final.set_weights(model.get_weights())
        return final

    return Start(build, finish, tuple(map(float, mean)), tuple(map(float, std)))


@dataclass
class Parent:
    model: keras.Model
    meta: ModelMetadata
    path: Path

    @property
    def side(self) -> int:
        return self.meta.input_size[0]


def open_parent(path: str | Path | None) -> Parent:
    path = require_keras_file(resolve_model_path(path or None), "learning from a model", "--from")
    model, meta = load_keras_model(path)
    height, width = meta.input_size
    if height != width:
        raise CifarlabError(f"--from {path}: its input is {height}x{width}; only square inputs can "
                            "be learned from")
    try:
        model.get_layer(LOGITS)
    except ValueError:
        raise CifarlabError(f"--from {path}: no layer named '{LOGITS}' to cut the network "
                            "at; use a model trained by cifarlab") from None
    return Parent(model, meta, path)


def check_image_size(requested: int | None, parent: Parent) -> None:
    if requested is not None and requested != parent.side:
        raise CifarlabError(
            f"--image-size {requested} does not match the {parent.side}x{parent.side} input of "
            f"--from {parent.path}: images are read at the model's input size; drop --image-size "
            f"(the data is resized to {parent.side}), or train from scratch without --from")


def features_with_mirrors(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Features of the images, then of their mirror images (a free doubling of the data)."""
    both = np.concatenate([images, images[:, :, ::-1]])
    features, _ = feature_model(model).predict(both, batch_size=256, verbose=0)
    return features.astype(np.float64)


def fit_head(features: np.ndarray, labels: np.ndarray, num_classes: int,
             class_weight: str | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of a Dense layer: multinomial logistic regression on centred features
    divided by their overall standard deviation, that scaling folded into the weights."""
    from sklearn.linear_model import LogisticRegression  # slow import: only when needed

    present = np.unique(labels)
    if len(present) < 2:
        raise CifarlabError("the training split has images of one class only; a classifier needs "
                            "at least 2 classes")
    # One scale for all features (not one per feature): a feature nearly constant on the few
    # training images would get a huge weight, and fine-tuning through it diverges.
    mean, std = features.mean(0), features.std() + 1e-6
    regression = LogisticRegression(C=HEAD_C, max_iter=2000, class_weight=class_weight,
                                    random_state=seed)
    regression.fit((features - mean) / std, labels)
    coef, intercept = regression.coef_, regression.intercept_
    if len(present) == 2:  # scikit-learn gives one row for two classes
        coef, intercept = np.concatenate([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    kernel = np.zeros((features.shape[1], num_classes))
    bias = np.full(num_classes, -30.0)  # a class without training images is never predicted
    kernel[:, present] = coef.T / std
    bias[present] = intercept - coef @ (mean / std)
    return kernel.astype(np.float32), bias.astype(np.float32)


def with_head(model: keras.Model, logits, temperature: float = 1.0) -> keras.Model:
    return keras.Model(model.input, softmax_head(logits, temperature), name=model.name)


def from_parent(parent: Parent, num_classes: int, train: Split, balanced: bool, seed: int) -> Start:
    """The parent's layers up to the features, then a new fitted head."""

    def build(policy: str) -> keras.Model:  # noqa: ARG001 - the parent's own float32
        backbone = keras.models.clone_model(parent.model)  # its variables in the caller's scope
        backbone.set_weights(parent.model.get_weights())
        features = features_with_mirrors(backbone, train.images)
        kernel, bias = fit_head(features, np.concatenate([train.labels] * 2), num_classes,
                                "balanced" if balanced else None, seed)
        logits = keras.layers.Dense(num_classes, name=LOGITS)
        model = with_head(backbone, logits(backbone.get_layer(LOGITS).input))
        logits.set_weights([kernel, bias])
        return model

    def finish(model: keras.Model, temperature: float) -> keras.Model:
        return with_head(model, model.get_layer(LOGITS).output, temperature)

    return Start(build, finish, parent.meta.mean, parent.meta.std, parent.path,
                 f"logistic regression on scaled features of the images and their mirror images, C={HEAD_C}")


def check_continues(cfg, parent: Parent, class_names: tuple[str, ...]) -> None:
    """A parent that `from_weights` can start the recipe's network from: same architecture,
    classes and weight shapes (checked on an uninitialised build, before anything is written)."""
    if parent.meta.model != cfg.model:
        raise CifarlabError(f"--from {parent.path} is a {parent.meta.model} model and --recipe "
                            f"{cfg.recipe} trains {cfg.model}; give a recipe of the parent's architecture")
    if tuple(parent.meta.class_names) != tuple(class_names):
        raise CifarlabError(f"--from {parent.path} knows {', '.join(parent.meta.class_names)}; the data "
                            f"has {', '.join(class_names)}; to learn other classes drop --recipe "
                            f"(--from then fits a new head)")
    zeros = np.zeros(3)
    recipe_network = build_model(cfg.model, parent.meta.input_size, len(class_names), zeros, zeros + 1,
                                 **cfg.model_options())
    shapes = [w.shape for w in feature_model(recipe_network).weights]
    if shapes != [w.shape for w in feature_model(parent.model).weights]:
        widths = parent.meta.recipe.get("widths")
        raise CifarlabError(f"--from {parent.path}: its weights do not fit the network of --recipe "
                            f"{cfg.recipe}; give the parent's --widths"
                            f"{' ' + ','.join(map(str, widths)) if widths else ''}")


def from_weights(cfg, parent: Parent, num_classes: int, train: Split,
                 adjust: Callable[[keras.Model], None]) -> Start:
    """The recipe's network from scratch, then every weight of the parent up to its logits copied
    into it (`check_continues` first)."""
    scratch = from_scratch(cfg, parent.meta.input_size, num_classes, train, adjust,
                           stats=(np.asarray(parent.meta.mean), np.asarray(parent.meta.std)))
    parent_weights = feature_model(parent.model).get_weights()

    def build(policy: str) -> keras.Model:
        model = scratch.build(policy)
        feature_model(model).set_weights(parent_weights)
        return model

    def mix_in_parent(model: keras.Model) -> None:
        share, classifier = cfg.keep_parent, feature_model(model)
        classifier.set_weights([(1 - share) * mine + share * theirs
                                for mine, theirs in zip(classifier.get_weights(), parent_weights)])

    return replace(scratch, build=build, parent=parent.path,
                   describe=f"every weight up to the logits from {parent.path}"
                            + (f", {cfg.keep_parent:.0%} of them mixed back in after training" if cfg.keep_parent else ""),
                   settle=mix_in_parent if cfg.keep_parent else None)
