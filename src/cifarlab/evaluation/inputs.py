"""What `evaluate` measures: the model file opened with its runtime, the split decoded at the
model's input size (resized when the dataset's images differ), its classes checked against the
model's, and the outside images of `--ood`."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cifarlab.errors import CifarlabError

if TYPE_CHECKING:
    from cifarlab.data.dataset import Dataset, Split
    from cifarlab.evaluation.config import EvaluateConfig
    from cifarlab.inference import Classifier

log = logging.getLogger(__name__)
OOD_HINT = "pass image files, folders or glob patterns of images that are none of the model's classes"


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


def gather_outside(paths: list[str]) -> list[Path]:
    """The `--ood` image files (as `cifarlab predict` expands them), or a one-line error naming the
    first input that matches no image."""
    from cifarlab.data.files import gather_inputs

    items = gather_inputs(paths)
    unmatched = [(path, error) for path, error in items if error is not None]
    if unmatched:
        path, error = unmatched[0]
        raise CifarlabError(f"--ood {path}: {error}; {OOD_HINT}")
    return [path for path, _ in items]


def load_outside(files: list[Path], size: tuple[int, int]) -> np.ndarray:
    """The files at `size`, decoded in threads; unreadable ones are skipped with one log line,
    none readable is an error."""
    from cifarlab.data.files import load_resized

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        loaded = list(pool.map(lambda path: load_resized(path, size), files))
    images = [x for x in loaded if isinstance(x, np.ndarray)]
    failed = [(path, x) for path, x in zip(files, loaded) if isinstance(x, str)]
    if not images:
        raise CifarlabError(f"--ood: none of the {len(files)} files could be read as an image "
                            f"(first: {failed[0][0]}: {failed[0][1]}); {OOD_HINT}")
    if failed:
        log.warning("--ood: skipped %d of %d files that could not be read (first: %s: %s)",
                    len(failed), len(files), *failed[0])
    return np.stack(images)
