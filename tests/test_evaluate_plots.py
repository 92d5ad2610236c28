"""`plots.render_figures` and `StageTimer`: every figure of an evaluation written, each stage timed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cifarlab.evaluation.metrics import compute_metrics
from cifarlab.evaluation.plots import render_figures
from cifarlab.evaluation.timing import StageTimer

FIGURES = ["confusion_matrix.png", "confusion_matrix_normalized.png", "per_class_accuracy.png",
           "roc.png", "pr.png", "reliability.png", "misclassified.png"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def evaluation():
    """(metrics, curves, images) of random 4-class probabilities on 40 random 16x16 images."""
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 4
    probs = rng.dirichlet(np.ones(4), 40)
    metrics, curves = compute_metrics(labels, probs, ["a", "b", "c", "d"])
    return metrics, curves, rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)


def corruption_section() -> dict:
    accuracy = {"gaussian_noise": {"1": 0.5, "5": 0.25}, "contrast": {"1": 0.75, "5": 0.5}}
    return {"accuracy": accuracy, "severities": [1, 5], "clean_accuracy": 0.8, "mean_15": None}


def test_render_figures_writes_every_png_in_report_order(evaluation, tmp_path):
    metrics, curves, images = evaluation
    figures = render_figures(metrics, curves, images, None, tmp_path)
    assert list(figures) == FIGURES
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FIGURES)  # no temp files left
    for name, (caption, png) in figures.items():
        assert png[:8] == PNG and (tmp_path / name).read_bytes() == png, name
        assert caption, name
    assert "per class," in figures["roc.png"][0] and "per class," in figures["pr.png"][0]
    assert "class-activation maps" not in figures["misclassified.png"][0]


def test_render_figures_adds_the_corruption_heatmap_and_the_maps(evaluation, tmp_path):
    metrics, curves, images = evaluation
    metrics = {**metrics, "corruptions": corruption_section()}
    errors = metrics["most_confident_errors"]
    maps = [(np.ones((16, 16)), np.zeros((16, 16)))] * len(errors)
    figures = render_figures(metrics, curves, images, maps, tmp_path)
    assert list(figures) == [*FIGURES, "corruptions.png"]
    assert (tmp_path / "corruptions.png").read_bytes()[:8] == PNG
    assert figures["misclassified.png"][0].endswith(
        "the class-activation maps of the predicted and of the true class")
    without = render_figures(metrics, curves, images, None, tmp_path / "plain")["misclassified.png"][1]
    assert figures["misclassified.png"][1] != without  # the maps are drawn


def test_stage_timer_records_each_stage_and_the_total():
    timer = StageTimer()
    with timer.stage("load"):
        time.sleep(0.02)
    with pytest.raises(RuntimeError), timer.stage("fails"):
        raise RuntimeError("a stage that raises is timed too")
    with timer.stage("predict"):
        time.sleep(0.01)
    seconds = timer.finish()
    assert list(seconds) == ["load", "fails", "predict", "total"]
    assert seconds["load"] >= 0.02 and seconds["predict"] >= 0.01
    assert seconds["total"] >= seconds["load"] + seconds["fails"] + seconds["predict"]
    assert all(value == round(value, 3) for value in seconds.values())
