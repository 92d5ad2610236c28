"""`evaluate(EvaluateConfig)`: predict a dataset split with a model and write metrics.json, PNG
plots and report.html (each atomically) to the output folder."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cifarlab.atomic import write_atomic
from cifarlab.data.corruptions import parse_corruptions, parse_severities
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import plots as P
from cifarlab.evaluation.metrics import compute_metrics, weakest_classes
from cifarlab.evaluation.report import render_report
from cifarlab.evaluation.robustness import CorruptionPlan, score_corruptions
from cifarlab.evaluation.tta import predict_tta


@dataclass
class EvaluateConfig:
    data: str | Path
    model: Path | None = None  # None: $CIFARLAB_MODEL or the shipped model
    split: str = "test"
    tta: bool = False  # average over mirrored and 1-pixel-shifted views (evaluation/tta.py)
    out: Path | None = None  # default runs/eval-<model stem>-<split>
    batch_size: int = 256
    backend: str = "auto"  # see cifarlab.inference.open_classifier
    corruptions: str | None = None  # "all", "main" or a comma list (cifarlab.data.corruptions)
    severities: str = "1-5"
    corruption_samples: int | None = None  # a seeded stratified subset of the split per cell
    corruptions_data: Path | None = None   # official CIFAR-10-C files instead of generating them
    image_size: int | None = None  # dataset decode size; default: the model's input size
    labels: str = "fine"
    cache_dir: Path | None = None
    use_cache: bool = True
    progress: bool = True


@dataclass
class EvaluateResult:
    out_dir: Path
    metrics: dict
    files: list[Path] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.out_dir / "report.html"

    @property
    def weakest(self) -> list[dict]:
        return weakest_classes(self.metrics)


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


def predict_probabilities(classifier, images: np.ndarray, batch_size: int, tta: bool,
                          progress: bool) -> np.ndarray:
    from tqdm import tqdm

    if batch_size < 1:
        raise CifarlabError(f"--batch-size must be at least 1, got {batch_size}")
    out = []
    with tqdm(total=len(images), desc="predicting" + (" (x6 test-time augmentation)" if tta else ""), unit="img",
              disable=not progress, file=sys.stderr, leave=False) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            out.append(predict_tta(classifier.predict, batch) if tta
                       else np.asarray(classifier.predict(batch), dtype=np.float64))
            bar.update(len(batch))
    return np.concatenate(out)


GALLERY_MAPS = 12  # errors shown with their maps


def error_maps(model_path: Path, images: np.ndarray, metrics: dict,
               class_names: list[str]) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """(predicted-class map, true-class map) of the most confident errors, from the .keras model
    (exported files carry no layers to explain: None)."""
    from cifarlab.inference.cam import CamExplainer
    from cifarlab.models.io import load_keras_model

    errors = metrics["most_confident_errors"][:GALLERY_MAPS]
    if model_path.suffix.lower() != ".keras" or not errors:
        return None
    explainer = CamExplainer(load_keras_model(model_path)[0])
    shown = images[[e["index"] for e in errors]]
    by_pred, _ = explainer.explain(shown, np.array([class_names.index(e["pred"]) for e in errors]))
    by_true, _ = explainer.explain(shown, np.array([class_names.index(e["true"]) for e in errors]))
    return list(zip(by_pred, by_true))


def corruption_plan(config: EvaluateConfig) -> CorruptionPlan | None:
    if config.corruptions is None:
        if config.corruptions_data or config.corruption_samples:
            raise CifarlabError("--corruptions-data and --corruption-samples need --corruptions "
                                "(e.g. --corruptions all)")
        return None
    return CorruptionPlan(tuple(parse_corruptions(config.corruptions)),
                          tuple(parse_severities(config.severities)), config.corruption_samples,
                          Path(config.corruptions_data) if config.corruptions_data else None)


def _clean(value):
    """JSON-safe: numpy scalars to Python, non-finite floats to null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluate(config: EvaluateConfig) -> EvaluateResult:
    from cifarlab.data import load_dataset
    from cifarlab.data.images import resize_rgb
    from cifarlab.inference import open_classifier
    from cifarlab.models.io import resolve_model_path

    started = time.perf_counter()
    plan = corruption_plan(config)  # parsed before the long work, so a typo fails fast
    seconds: dict[str, float] = {}
    model_path = resolve_model_path(config.model)
    if not model_path.is_file():
        raise CifarlabError(f"{model_path}: no such model file; pass an existing .keras/.tflite/.onnx "
                            "file (train one with `cifarlab train`)")
    classifier = open_classifier(model_path, config.backend)
    input_size = tuple(int(v) for v in classifier.input_size)
    seconds["load_model"] = time.perf_counter() - started

    t = time.perf_counter()
    decode_size = config.image_size or (input_size[0] if input_size[0] == input_size[1] else None)
    dataset = load_dataset(config.data, image_size=decode_size, labels=config.labels,
                           cache_dir=config.cache_dir, use_cache=config.use_cache,
                           progress=config.progress)
    split = dataset.split(config.split)  # missing / empty split -> CifarlabError
    check_class_names(classifier.class_names, dataset.class_names, model_path, str(config.data))
    images = split.images
    resized = images.shape[1:3] != input_size
    if resized:
        images = np.stack([resize_rgb(image, input_size) for image in images])
    seconds["load_data"] = time.perf_counter() - t

    t = time.perf_counter()
    probs = predict_probabilities(classifier, images, config.batch_size, config.tta, config.progress)
    seconds["predict"] = time.perf_counter() - t

    t = time.perf_counter()
    class_names = list(dataset.class_names)
    metrics, curves = compute_metrics(split.labels, probs, class_names)
    seconds["metrics"] = time.perf_counter() - t
    if plan is not None:
        t = time.perf_counter()
        metrics["corruptions"] = score_corruptions(classifier, images, split.labels, plan,
                                                   metrics["accuracy"], progress=config.progress)
        seconds["corruptions"] = time.perf_counter() - t

    out_dir = Path(config.out or Path("runs") / f"eval-{model_path.stem}-{config.split}")
    t = time.perf_counter()
    cm = metrics["confusion_matrix"]
    figures = {
        "confusion_matrix.png": ("Confusion matrix, counts",
                                 lambda: P.confusion_matrix_png(np.array(cm["counts"]), class_names, False)),
        "confusion_matrix_normalized.png": (
            "Confusion matrix, each row divided by the class's image count",
            lambda: P.confusion_matrix_png(np.array(cm["normalized"]), class_names, True)),
        "per_class_accuracy.png": ("Accuracy per class (red: below overall accuracy)",
                                   lambda: P.per_class_accuracy_png(metrics)),
        "roc.png": ("ROC curves, one-vs-rest" + (" per class," if len(class_names) <= P.PER_CLASS_CURVES_MAX
                                                 else "") + " with micro and macro averages",
                    lambda: P.roc_png(curves, metrics, class_names)),
        "pr.png": ("Precision-recall curves, one-vs-rest" + (" per class," if len(class_names) <= P.PER_CLASS_CURVES_MAX
                                                             else "") + " with micro and macro averages",
                   lambda: P.pr_png(curves, metrics, class_names)),
        "reliability.png": (f"Reliability diagram: accuracy vs top-1 confidence, "
                            f"{metrics['calibration']['bins']} equal-width bins",
                            lambda: P.reliability_png(metrics["calibration"])),
        "misclassified.png": ("Most confidently wrong images (upscaled, nearest neighbour): "
                              "index, true class, predicted class (confidence)"
                              + ("; beside each, the class-activation maps of the predicted "
                                 "and of the true class" if model_path.suffix.lower() == ".keras" else ""),
                              lambda: P.misclassified_png(images, metrics["most_confident_errors"],
                                                          error_maps(model_path, images, metrics,
                                                                     class_names))),
    }
    if "corruptions" in metrics:
        figures["corruptions.png"] = ("Accuracy under CIFAR-10-C corruptions, per corruption and severity "
                                      "(no test-time augmentation)",
                                      lambda: P.corruption_heatmap_png(metrics["corruptions"]))
    rendered = {name: (caption, draw()) for name, (caption, draw) in figures.items()}
    seconds["plots"] = time.perf_counter() - t

    files = [write_atomic(out_dir / name, png) for name, (_, png) in rendered.items()]
    seconds["total"] = time.perf_counter() - started
    metrics["evaluation"] = {
        "model_path": str(model_path.resolve()),
        "model_name": model_path.stem,
        "input_size": list(input_size),
        "dataset_source": str(Path(config.data).expanduser().resolve()),
        "dataset_format": dataset.format,
        "dataset_fingerprint": dataset.fingerprint,
        "dataset_cache": dataset.cache,
        "split": config.split,
        "image_size_in_dataset": list(split.images.shape[1:3]),
        "resized_to_model_input": bool(resized),
        "tta": config.tta,
        "batch_size": config.batch_size,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "seconds_note": "total covers everything up to writing the files (report excluded)",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
    }
    metrics["model_metadata"] = classifier.metadata.to_dict()
    metrics["plots"] = list(rendered)
    metrics["curves_note"] = ("ROC / PR curve points are in the plots only; per-class curves are "
                              f"drawn for at most {P.PER_CLASS_CURVES_MAX} classes, beyond that "
                              "micro/macro averages only")
    metrics = _clean(metrics)
    weakest = [row["class"] for row in weakest_classes(metrics)]
    files.append(write_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2, allow_nan=False) + "\n"))
    files.append(write_atomic(out_dir / "report.html", render_report(metrics, rendered, weakest)))
    return EvaluateResult(out_dir, metrics, files)
