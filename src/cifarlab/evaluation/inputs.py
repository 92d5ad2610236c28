"""What `evaluate` measures: the model file opened with its runtime, and the split decoded at the
model's input size (resized when the dataset's images differ), its classes checked against the
model's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cifarlab.errors import CifarlabError

if TYPE_CHECKING:
    from cifarlab.data.dataset import Dataset, Split
    from cifarlab.evaluation.config import EvaluateConfig
    from cifarlab.inference import Classifier


@dataclass
class EvaluatedSplit:
    dataset: Dataset
    split: Split
    images: np.ndarray  # the split's images at the model's input size
    resized: bool

    @property
    def class_names(self) -> list[str]:
        return list(self.dataset.class_names)


def open_model(config: EvaluateConfig) -> tuple[Path, Classifier]:
    from cifarlab.inference import open_classifier
    from cifarlab.models.io import resolve_model_path

    model_path = resolve_model_path(config.model)
    if not model_path.is_file():
        raise CifarlabError(f"{model_path}: no such model file; pass an existing .keras/.tflite/.onnx "
                            "file (train one with `cifarlab train`)")
    return model_path, open_classifier(model_path, config.backend)


def input_size(classifier: Classifier) -> tuple[int, int]:
    return tuple(int(v) for v in classifier.input_size)


def load_split(config: EvaluateConfig, classifier: Classifier, model_path: Path) -> EvaluatedSplit:
    from cifarlab.data import load_dataset
    from cifarlab.data.images import resize_rgb

    size = input_size(classifier)
    decode_size = config.image_size or (size[0] if size[0] == size[1] else None)
    dataset = load_dataset(config.data, image_size=decode_size, labels=config.labels,
                           cache_dir=config.cache_dir, use_cache=config.use_cache,
                           progress=config.progress)
    split = dataset.split(config.split)  # missing / empty split -> CifarlabError
    check_class_names(classifier.class_names, dataset.class_names, model_path, str(config.data))
    resized = split.images.shape[1:3] != size
    images = np.stack([resize_rgb(image, size) for image in split.images]) if resized else split.images
    return EvaluatedSplit(dataset, split, images, resized)


def _short_list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)} classes)"


def check_class_names(model_names: list[str], data_names: list[str], model_path: Path, source: str) -> None:
    if list(model_names) == list(data_names):
        return
    first = next((i for i, (a, b) in enumerate(zip(model_names, data_names)) if a != b),
                 min(len(model_names), len(data_names)))
    raise CifarlabError(
        f"{model_path.name} was trained on classes {_short_list(model_names)} but {source} has "
        f"{_short_list(data_names)} (first difference at position {first}); evaluate on a dataset "
        "with the model's classes in the same order, or pass the model trained on this dataset"
    )
