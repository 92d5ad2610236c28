"""Evaluation metrics on synthetic probabilities: perfect, hand-worked, scikit-learn agreement, ECE."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from cifarlab.evaluation.metrics import compute_metrics, expected_calibration_error, weakest_classes


def names(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def test_perfect_classifier():
    labels = np.arange(60) % 6
    probs = np.full((60, 6), 0.02)
    probs[np.arange(60), labels] = 0.9
    m, curves = compute_metrics(labels, probs, names(6))
    assert m["accuracy"] == 1.0
    assert m["top_k_accuracy"] == {"2": 1.0, "5": 1.0}
    assert m["roc_auc"]["micro"] == m["roc_auc"]["macro"] == 1.0
    assert m["average_precision"]["micro"] == m["average_precision"]["macro"] == 1.0
    assert all(r["roc_auc"] == 1.0 and r["average_precision"] == 1.0 for r in m["per_class"])
    assert all(r["precision"] == r["recall"] == r["f1"] == 1.0 for r in m["per_class"])
    counts = np.array(m["confusion_matrix"]["counts"])
    assert (counts == np.diag([10] * 6)).all()
    assert (np.array(m["confusion_matrix"]["normalized"]) == np.eye(6)).all()
    assert m["most_confident_errors"] == [] and m["num_errors"] == 0
    assert m["log_loss"] == pytest.approx(-math.log(0.9))
    assert m["brier_score"] == pytest.approx(0.1**2 + 5 * 0.02**2)
    assert m["calibration"]["ece"] == pytest.approx(0.1)  # all at 0.9 confidence, all right
    assert set(curves.roc) == {*map(str, range(6)), "micro", "macro"}


def test_hand_worked_example():
    # preds: 0 (right), 1 (right), 0 (wrong: true 2), 1 (wrong: true 0)
    labels = np.array([0, 1, 2, 0])
    probs = np.array([[0.7, 0.2, 0.1],
                      [0.3, 0.6, 0.1],
                      [0.5, 0.2, 0.3],
                      [0.2, 0.5, 0.3]])
    m, _ = compute_metrics(labels, probs, ["a", "b", "c"])
    assert m["accuracy"] == 0.5
    # top-2 sets {0,1} {1,0} {0,2} {1,2}: the last misses true class 0
    assert m["top_k_accuracy"] == {"2": 0.75}
    assert m["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.6) + math.log(0.3) + math.log(0.2)) / 4)
    # squared errors per sample: .09+.04+.01, .09+.16+.01, .25+.04+.49, .64+.25+.09
    assert m["brier_score"] == pytest.approx((0.14 + 0.26 + 0.78 + 0.98) / 4)
    assert m["confusion_matrix"]["counts"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert m["confusion_matrix"]["normalized"] == [[0.5, 0.5, 0], [0, 1, 0], [1, 0, 0]]
    a, b, c = m["per_class"]
    assert (a["recall"], a["precision"], a["f1"], a["support"]) == (0.5, 0.5, 0.5, 2)
    assert (b["recall"], b["precision"], b["f1"], b["support"]) == (1.0, 0.5, pytest.approx(2 / 3), 1)
    assert (c["recall"], c["precision"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 1)
    # AUC: class a positives (.7, .2) vs negatives (.3, .5): 2 of 4 pairs ordered right;
    # class b .6 beats .2 .2 .5; class c .3 beats .1 .1 and ties .3 (counts half)
    assert a["roc_auc"] == 0.5 and b["roc_auc"] == 1.0 and c["roc_auc"] == pytest.approx(2.5 / 3)
    assert m["roc_auc"]["macro"] == pytest.approx((0.5 + 1 + 2.5 / 3) / 3)
    # AP: class a ranks pos, neg, neg, pos: 0.5*1 + 0.5*(2/4); class c: tie at .3 -> P=.5 at R=1
    assert a["average_precision"] == 0.75 and b["average_precision"] == 1.0
    assert c["average_precision"] == 0.5
    errors = m["most_confident_errors"]
    assert [(e["index"], e["true"], e["pred"]) for e in errors] == [(2, "c", "a"), (3, "a", "b")]
    assert errors[0]["confidence"] == pytest.approx(0.5)
    assert [r["class"] for r in weakest_classes(m)] == ["c", "a", "b"]


def test_agrees_with_scikit_learn_on_random_probabilities():
    rng = np.random.default_rng(1)
    n, k = 700, 7
    labels = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k) * 0.7, n)
    probs[np.arange(n), labels] += rng.uniform(0, 0.6, n)  # better than chance
    probs /= probs.sum(1, keepdims=True)
    m, _ = compute_metrics(labels, probs, names(k))
    y = np.eye(k)[labels]
    pred = probs.argmax(1)
    assert m["accuracy"] == pytest.approx((pred == labels).mean())
    assert m["top_k_accuracy"]["5"] == pytest.approx(skm.top_k_accuracy_score(labels, probs, k=5))
    assert m["log_loss"] == pytest.approx(skm.log_loss(labels, probs))
    assert m["brier_score"] == pytest.approx(((probs - y) ** 2).sum(1).mean())
    assert m["roc_auc"]["macro"] == pytest.approx(skm.roc_auc_score(labels, probs, multi_class="ovr"))
    assert m["roc_auc"]["micro"] == pytest.approx(skm.roc_auc_score(y, probs, average="micro"))
    assert m["average_precision"]["macro"] == pytest.approx(skm.average_precision_score(y, probs))
    assert m["average_precision"]["micro"] == pytest.approx(skm.average_precision_score(y, probs, average="micro"))
    f1 = skm.f1_score(labels, pred, average=None)
    assert [r["f1"] for r in m["per_class"]] == pytest.approx(f1)
    assert m["macro"]["f1"] == pytest.approx(skm.f1_score(labels, pred, average="macro"))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, pred))
    assert np.array(m["confusion_matrix"]["counts"]).sum() == n
    # ECE straight from the definition, sample by sample
    conf = probs.max(1)
    ece = 0.0
    for b in range(15):
        inside = (conf > b / 15) & (conf <= (b + 1) / 15)
        if inside.any():
            ece += inside.mean() * abs((pred == labels)[inside].mean() - conf[inside].mean())
    assert m["calibration"]["ece"] == pytest.approx(ece)
    assert sum(row["count"] for row in m["calibration"]["table"]) == n


def test_ece_by_hand():
    labels = np.array([0, 1, 0, 0, 1])
    probs = np.array([
        [0.95, 0.03, 0.02],  # bin 14, right
        [0.95, 0.03, 0.02],  # bin 14, wrong  -> bin acc .5, conf .95, gap .45
        [0.55, 0.25, 0.20],  # bin 8 (.533, .6], right
        [0.55, 0.20, 0.25],  # bin 8, right   -> acc 1, conf .55, gap .45
        [0.35, 0.33, 0.32],  # bin 5 (.333, .4], wrong -> gap .35
    ])
    ece, table = expected_calibration_error(labels, probs)
    assert ece == pytest.approx((2 * 0.45 + 2 * 0.45 + 0.35) / 5)
    assert [row["count"] for row in table] == [0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 0, 0, 2]
    assert table[14]["accuracy"] == 0.5 and table[14]["confidence"] == pytest.approx(0.95)
    # confidence exactly 1 goes in the last bin
    ece, table = expected_calibration_error(np.array([0]), np.array([[1.0, 0.0]]))
    assert ece == 0.0 and table[-1]["count"] == 1


def test_two_classes_and_absent_class():
    m, _ = compute_metrics(np.array([0, 1, 1, 0]), np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]]),
                           ["x", "y"])
    assert m["top_k_accuracy"] == {}
    assert m["brier_score"] == pytest.approx((0.08 + 0.18 + 0.72 + 1.62) / 4)  # summed over both classes
    # class 2 never occurs: no AUC/AP for it, left out of the macro average, no crash
    labels = np.array([0, 1, 0, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    m, curves = compute_metrics(labels, probs, names(3))
    assert m["per_class"][2]["roc_auc"] is None and m["per_class"][2]["accuracy"] is None
    assert m["roc_auc"]["macro"] == pytest.approx(np.mean([m["per_class"][0]["roc_auc"], m["per_class"][1]["roc_auc"]]))
    assert "2" not in curves.roc
    assert [r["class"] for r in weakest_classes(m)] == ["c1", "c0"]


def test_plots_for_many_classes_draw_only_averages():
    from cifarlab.evaluation import plots

    rng = np.random.default_rng(0)
    k = 25
    labels = np.arange(250) % k
    probs = rng.dirichlet(np.ones(k), 250)
    m, curves = compute_metrics(labels, probs, names(k))
    drawn = []
    original = plots._png
    plots._png = lambda fig: drawn.append(fig) or original(fig)
    try:
        png = plots.roc_png(curves, m, names(k))
        plots.confusion_matrix_png(np.array(m["confusion_matrix"]["counts"]), names(k), False)
    finally:
        plots._png = original
    assert png[:4] == b"\x89PNG"
    roc_ax = drawn[0].axes[0]
    assert [t.get_text() for t in roc_ax.get_legend().get_texts()] == [
        f"micro average (AUC {m['roc_auc']['micro']:.3f})", f"macro average (AUC {m['roc_auc']['macro']:.3f})"]
    assert not drawn[1].axes[0].texts  # no per-cell numbers beyond 20 classes
