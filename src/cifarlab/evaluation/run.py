"""`evaluate(EvaluateConfig)`: predict a dataset split with a model and write metrics.json, PNG
plots and report.html (each atomically) to the output folder."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cifarlab import RUNS_DIR
from cifarlab.atomic import write_atomic
from cifarlab.data import resolve_source
from cifarlab.evaluation.config import EvaluateConfig
from cifarlab.evaluation.corruptions import parse_corruptions, parse_severities
from cifarlab.evaluation.explain import error_maps
from cifarlab.evaluation.inputs import (EvaluatedSplit, gather_outside, input_size, load_outside,
                                        load_split, open_model)
from cifarlab.evaluation.metrics import compute_metrics, weakest_classes
from cifarlab.evaluation.openset import open_set_section
from cifarlab.evaluation.plots import PER_CLASS_CURVES_MAX, render_figures, render_open_set_figure
from cifarlab.evaluation.predict import predict_scored_split
from cifarlab.evaluation.report import render_report
from cifarlab.evaluation.robustness import CorruptionPlan, score_corruptions
from cifarlab.evaluation.timing import StageTimer
from cifarlab.inference.rejection import rejection_for

log = logging.getLogger(__name__)

__all__ = ["EvaluateConfig", "EvaluateResult", "evaluate"]


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


def corruption_plan(config: EvaluateConfig) -> CorruptionPlan | None:
    if config.corruptions is None:
        return None
    return CorruptionPlan(tuple(parse_corruptions(config.corruptions)),
                          tuple(parse_severities(config.severities)), config.corruption_samples,
                          Path(config.corruptions_data) if config.corruptions_data else None)


def output_folder(config: EvaluateConfig, model_path: Path) -> Path:
    return Path(config.out or Path(RUNS_DIR) / f"eval-{model_path.stem}-{config.split}")


def score_outside(config: EvaluateConfig, classifier, files: list[Path], timer: StageTimer):
    """The outside images' scores (plain images, no test-time augmentation)."""
    with timer.stage("open_set"):
        images = load_outside(files, input_size(classifier))
        return classifier.predict_scored(images, config.batch_size)[1].astype(np.float64)


def evaluate(config: EvaluateConfig) -> EvaluateResult:
    timer = StageTimer()
    plan = corruption_plan(config)  # parsed before the long work, so a typo fails fast
    outside_files = gather_outside(config.ood) if config.ood else []
    # a dataset's name: its archive is downloaded now, before the model is loaded
    config = replace(config, data=str(resolve_source(config.data, config.progress)))
    with timer.stage("load_model"):
        model_path, classifier = open_model(config)
    # no score: the open-set section and the command's summary say so, not a log line
    rejection = rejection_for(classifier, config.ood_threshold, str(model_path), say=log.debug)
    with timer.stage("load_data"):
        data = load_split(config, classifier, model_path)
    with timer.stage("predict"):
        probs, scores = predict_scored_split(classifier, data.images, config.batch_size, config.tta,
                                             config.progress)
    with timer.stage("metrics"):
        metrics, curves = compute_metrics(data.split.labels, probs, data.class_names)
    outside = (score_outside(config, classifier, outside_files, timer)
               if outside_files and rejection.score else None)
    metrics["open_set"] = open_set_section(rejection, data.split.labels, probs, scores, outside,
                                           str(model_path), config.tta)
    if plan is not None:
        with timer.stage("corruptions"):
            metrics["corruptions"] = score_corruptions(classifier, data.images, data.split.labels, plan,
                                                       metrics["accuracy"], progress=config.progress)
    out_dir = output_folder(config, model_path)
    with timer.stage("plots"):
        maps = error_maps(model_path, data.images, metrics)
        figures = render_figures(metrics, curves, data.images, maps, out_dir)
        figures.update(render_open_set_figure(metrics["open_set"], scores, outside, out_dir))
    metrics = json_safe({**metrics, **run_sections(config, model_path, classifier, data,
                                                   timer.finish(), list(figures))})
    files = [out_dir / name for name in figures] + write_results(out_dir, metrics, figures)
    log.debug("evaluation of %s written to %s", model_path.name, out_dir)
    return EvaluateResult(out_dir, metrics, files)


def run_sections(config: EvaluateConfig, model_path: Path, classifier, data: EvaluatedSplit,
                 seconds: dict[str, float], plots: list[str]) -> dict:
    """The sections of metrics.json after the metrics: the run, the model's metadata, the plots."""
    return {
        "evaluation": run_record(config, model_path, input_size(classifier), data, seconds),
        "model_metadata": classifier.metadata.to_dict(),
        "plots": plots,
        "curves_note": ("ROC / PR curve points are in the plots only; per-class curves are drawn "
                        f"for at most {PER_CLASS_CURVES_MAX} classes, beyond that micro/macro "
                        "averages only"),
    }


def run_record(config: EvaluateConfig, model_path: Path, size: tuple[int, int], data: EvaluatedSplit,
               seconds: dict[str, float]) -> dict:
    """metrics.json's `evaluation` section: what was evaluated, how, and how long each stage took."""
    return {
        "model_path": str(model_path.resolve()),
        "model_name": model_path.stem,
        "input_size": list(size),
        "dataset_source": str(Path(config.data).expanduser().resolve()),
        "dataset_format": data.dataset.format,
        "dataset_fingerprint": data.dataset.fingerprint,
        "dataset_cache": data.dataset.cache,
        "split": config.split,
        "image_size_in_dataset": list(data.split.images.shape[1:3]),
        "resized_to_model_input": bool(data.resized),
        "tta": config.tta,
        "batch_size": config.batch_size,
        "seconds": seconds,
        "seconds_note": "total covers everything up to writing the files (report excluded)",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
    }


def write_results(out_dir: Path, metrics: dict, figures: dict[str, tuple[str, bytes]]) -> list[Path]:
    """metrics.json and report.html (the figures are written already)."""
    weakest = [row["class"] for row in weakest_classes(metrics)]
    return [write_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2, allow_nan=False) + "\n"),
            write_atomic(out_dir / "report.html", render_report(metrics, figures, weakest))]


def json_safe(value):
    """JSON-safe: numpy scalars to Python, non-finite floats to null."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
