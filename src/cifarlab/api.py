"""The Python API: what `cifarlab predict`, `train` and `evaluate` do, from Python, through the
same code and contracts (`Row`, `TrainConfig`, `EvaluateConfig`).

    model = cifarlab.load()                      # the shipped model, or a .keras/.tflite/.onnx path
    rows = model.predict(images)                 # an array, a batch, files, folders or globs
    run = cifarlab.train(data="cifar10", epochs=1)
    result = cifarlab.evaluate(run.model_path)   # metrics, plots and report.html

Nothing heavy is imported until a function is called: `import cifarlab` stays light.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cifarlab import options
from cifarlab.data.download import DEFAULT_DATASET
from cifarlab.errors import CifarlabError

if TYPE_CHECKING:
    from cifarlab.evaluation.run import EvaluateResult
    from cifarlab.predict.core import Row

log = logging.getLogger(__name__)

__all__ = ["Model", "Run", "evaluate", "load", "register_keras_objects", "train"]


def register_keras_objects() -> None:
    """Register cifarlab's Keras layers, loss and schedules (importing their modules does), so
    `keras.saving.load_model` reads cifarlab's model files and checkpoints."""
    import cifarlab.models.layers  # noqa: F401
    import cifarlab.models.openset  # noqa: F401
    import cifarlab.training.loss  # noqa: F401
    import cifarlab.training.optim  # noqa: F401


def load(path: str | Path | None = None, backend: str = "auto", threads: int | None = None) -> Model:
    """Open a model made by cifarlab: a `.keras`, `.tflite` or `.onnx` file (default: $CIFARLAB_MODEL
    or the shipped models/cifar10-fast.keras), in the runtime `--backend` would pick."""
    from cifarlab.inference import open_classifier
    from cifarlab.models.io import resolve_model_path

    path = resolve_model_path(path)
    return Model(path, open_classifier(path, backend, threads))


class Model:
    """An opened model file; `model(x)` is `model.predict(x)`."""

    def __init__(self, path: Path, classifier):
        from cifarlab.inference.rejection import rejection_for

        self.path, self.classifier = Path(path), classifier
        self.rejection = rejection_for(classifier, "auto", str(path), say=log.warning)

    @property
    def class_names(self) -> list[str]:
        return self.classifier.class_names

    @property
    def input_size(self) -> tuple[int, int]:
        return self.classifier.input_size

    @property
    def metadata(self):
        return self.classifier.metadata

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, {self.classifier.backend}, {len(self.class_names)} classes)"

    def __call__(self, inputs, **kwargs) -> list[Row]:
        return self.predict(inputs, **kwargs)

    def predict(self, inputs, top_k: int = 1, ood_threshold: str | float = "auto",
                batch_size: int = 64) -> list[Row]:
        """One `cifarlab.predict.Row` per image (label, probability, top_k predictions, unknown,
        ood_score; `to_dict()` is the `--format json` row). inputs: an (H, W, 3) uint8 RGB array,
        an (N, H, W, 3) batch or a list of arrays (any size: resized as files are), or image
        files, folders (recursive) and glob patterns, one or a list."""
        from cifarlab.inference.rejection import parse_threshold, rejection_for

        setting = parse_threshold(ood_threshold)
        rejection = self.rejection if setting == "auto" else rejection_for(self.classifier, setting)
        k = max(1, min(top_k, len(self.class_names)))
        if isinstance(inputs, (str, Path)):
            inputs = [inputs]
        elif not isinstance(inputs, np.ndarray):
            inputs = list(inputs)
        images = _as_images(inputs)
        if images is not None:
            return self._predict_images(images, k, batch_size, rejection)
        from cifarlab.predict import gather_inputs, predict_files

        return list(predict_files(self.classifier, gather_inputs(inputs), k, batch_size,
                                  rejection=rejection))

    def _predict_images(self, images: list[np.ndarray], k: int, batch_size: int,
                        rejection) -> list[Row]:
        from cifarlab.data.images import resize_rgb
        from cifarlab.predict.core import classify_chunk

        resized = [resize_rgb(image, self.input_size) for image in images]
        names = [(f"array[{i}]", None) for i in range(len(images))]
        rows = []
        for start in range(0, len(images), batch_size):
            end = start + batch_size
            rows += classify_chunk(self.classifier, names[start:end], resized[start:end], k, rejection)
        return rows


def _as_images(inputs: np.ndarray | list) -> list[np.ndarray] | None:
    """The images of an array or a list of arrays (checked: uint8 RGB), or None for paths."""
    if isinstance(inputs, np.ndarray):
        batch = list(inputs) if inputs.ndim == 4 else [inputs]
    elif inputs and all(isinstance(x, np.ndarray) for x in inputs):
        batch = inputs
    else:
        return None
    for image in batch:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise CifarlabError(f"expected uint8 RGB images (H, W, 3), or a batch (N, H, W, 3); got "
                                f"{image.dtype} {image.shape}")
    return batch


@dataclass(frozen=True)
class Run:
    """A finished training run: its folder and `summary.json`'s content."""

    out: Path
    summary: dict

    @property
    def model_path(self) -> Path:
        return self.out / "model.keras"

    def load(self, **kwargs) -> Model:
        return load(self.model_path, **kwargs)


def train(data: str | Path = DEFAULT_DATASET, recipe: str | None = None, **settings) -> Run:
    """Train as `cifarlab train` does (resuming a run folder that has a checkpoint). data: a path
    or a dataset's name; settings: the command's options with _ for - (epochs=1, out="runs/x",
    from_model=... for --from)."""
    from cifarlab.training.config import TrainConfig
    from cifarlab.training.train import train as train_run

    values = {"data": str(data), "recipe": recipe, **settings}
    shown = ", ".join(f"{name}={value!r}" for name, value in values.items() if value is not None)
    values.setdefault("command", f"cifarlab.train({shown})")  # recorded in the model file
    summary = train_run(options.from_values(TrainConfig, "cifarlab.train", values))
    return Run(Path(summary["out"]), summary)


def evaluate(model: str | Path | Model | None = None, data: str | Path = DEFAULT_DATASET,
             **settings) -> EvaluateResult:
    """Evaluate as `cifarlab evaluate` does; returns its `EvaluateResult` (metrics, out_dir,
    files, report). model: a path, a `Model` (its file) or None (the shipped model)."""
    from cifarlab.evaluation.run import EvaluateConfig
    from cifarlab.evaluation.run import evaluate as evaluate_run

    path = model.path if isinstance(model, Model) else model
    values = {"model": path, "data": data, **settings}
    return evaluate_run(options.from_values(EvaluateConfig, "cifarlab.evaluate", values))
