"""Refitting a trained model file on other photos (`cifarlab openset`, `cifarlab calibrate`): the
file, and the photos relabelled to its classes with a validation split to fit on."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cifarlab.errors import CifarlabError

if TYPE_CHECKING:
    import keras

    from cifarlab.data import Dataset
    from cifarlab.models.metadata import ModelMetadata


@dataclasses.dataclass
class Refit:
    path: Path             # the model file
    model: keras.Model     # as loaded
    meta: ModelMetadata
    data: Dataset          # the photos: the model's class list, with a "val" split when one was drawn
    seed: int              # the model's recipe seed

    def save(self, model: keras.Model, meta: ModelMetadata, out=None) -> Path:
        """Write `model` atomically to `out` (default: over the file it came from)."""
        from cifarlab.models.io import save_model_file

        return save_model_file(model, Path(out) if out else self.path, meta)


def open_refit(model_path, data, purpose: str, val_fraction: float | None = None) -> Refit:
    """The model file and `data` (a `Dataset` read at the model's input size) with a validation
    split: the data's own val split, else the share of train the model's recipe held out (same
    fraction and seed: the images it did not train on, for a CIFAR-style source)."""
    from cifarlab.data import with_validation
    from cifarlab.models.io import load_keras_model, require_keras_file

    path = require_keras_file(model_path, purpose)
    model, meta = load_keras_model(path)
    data = in_model_classes(data, list(meta.class_names))
    fraction = val_fraction if val_fraction is not None else meta.recipe.get("val_fraction", 0.02)
    seed = int(meta.recipe.get("seed", 0))
    return Refit(path, model, meta, with_validation(data, fraction or 0.0, seed), seed)


def in_model_classes(data, class_names: list[str]):
    """`data` labelled by the model's class list: a source may hold photos of only some of the
    classes (a threshold fitted on your own photos of a few of them), none of other classes."""
    unknown = [name for name in data.class_names if name not in class_names]
    if unknown:
        raise CifarlabError(f"--data has classes the model does not know: {', '.join(unknown[:6])} (the "
                            f"model's: {', '.join(class_names[:6])}...); pass the data the model was "
                            "trained on, or photos of some of its classes")
    index = np.array([class_names.index(name) for name in data.class_names], np.int64)
    splits = {name: dataclasses.replace(split, labels=index[split.labels]) for name, split in data.splits.items()}
    return dataclasses.replace(data, class_names=list(class_names), splits=splits)
