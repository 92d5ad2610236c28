"""Every number `cifarlab evaluate` reports, computed from (true labels, class probabilities).

scikit-learn computes everything it has (accuracy, top-k, log-loss, Brier, precision / recall /
F1 / support, confusion matrices, ROC / AUC, PR / average precision). Only the expected
calibration error is computed here, because scikit-learn has no multiclass version of it.

Conventions:
- Brier score (multiclass): mean over samples of the SUM over classes of the squared error
  between the probability and the one-hot label, range [0, 2] (scikit-learn's
  `brier_score_loss(..., scale_by_half=False)`; not halved even for two classes).
- ROC / PR are one-vs-rest per class. A class with no positive (or no negative) example in the
  split has no defined AUC / AP: it is reported as null and left out of the macro average.
  `micro` pools every (sample, class) decision into one binary problem; `macro` is the unweighted
  mean over classes (the macro ROC curve is the mean TPR on a common FPR grid, the macro PR curve
  the mean precision on a common recall grid).
- ECE: top-1 confidence split into 15 equal-width bins ((0, 1/15], ..., (14/15, 1]);
  ECE = sum over bins of (bin count / N) * |accuracy in bin - mean confidence in bin|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

ECE_BINS = 15
TOP_K = (2, 5)
WORST_EXAMPLES = 25


@dataclass
class Curves:
    """Curve points for the plots (not written to metrics.json: they can be 100k points)."""

    roc: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (fpr, tpr); names: class, micro, macro
    pr: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (recall, precision)


def as_probabilities(probs: np.ndarray) -> np.ndarray:
    """float64 rows that sum to exactly 1 (float32 softmax output is off by ~1e-7)."""
    probs = np.asarray(probs, dtype=np.float64)
    total = probs.sum(axis=1, keepdims=True)
    return probs / np.where(total > 0, total, 1.0)


def onehot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, C) 0/1 matrix (label_binarize gives one column for two classes; we want two)."""
    out = label_binarize(labels, classes=list(range(max(num_classes, 3))))[:, :num_classes]
    return out.astype(np.int8)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> tuple[float, list[dict]]:
    """(ECE, per-bin table) over top-1 confidence with `bins` equal-width bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.digitize(confidence, edges[1:-1], right=True)  # (lo, hi]; 0 lands in bin 0
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    acc_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    n = max(len(labels), 1)
    ece = 0.0
    table = []
    for b in range(bins):
        row = {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(count[b]),
               "accuracy": None, "confidence": None}
        if count[b]:
            acc, conf = acc_sum[b] / count[b], conf_sum[b] / count[b]
            ece += count[b] / n * abs(acc - conf)
            row.update(accuracy=float(acc), confidence=float(conf))
        table.append(row)
    return float(ece), table


def _defined(column: np.ndarray) -> bool:
    """A one-vs-rest problem has a defined AUC / AP only with both positives and negatives."""
    return 0 < column.sum() < len(column)


def roc_pr(labels: np.ndarray, probs: np.ndarray, num_classes: int) -> tuple[dict, Curves]:
    y = onehot(labels, num_classes)
    roc_auc: dict[str, float | None] = {}
    ap: dict[str, float | None] = {}
    roc: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pr: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    grid = np.linspace(0.0, 1.0, 201)
    tpr_sum, prec_sum, defined = np.zeros_like(grid), np.zeros_like(grid), 0
    for c in range(num_classes):
        if not _defined(y[:, c]):
            roc_auc[str(c)] = ap[str(c)] = None
            continue
        fpr, tpr, _ = skm.roc_curve(y[:, c], probs[:, c])
        precision, recall, _ = skm.precision_recall_curve(y[:, c], probs[:, c])
        roc[str(c)], pr[str(c)] = (fpr, tpr), (recall, precision)
        roc_auc[str(c)] = float(skm.roc_auc_score(y[:, c], probs[:, c]))
        ap[str(c)] = float(skm.average_precision_score(y[:, c], probs[:, c]))
        tpr_sum += np.interp(grid, fpr, tpr)
        # recall decreases along precision_recall_curve's output; interp needs increasing x
        prec_sum += np.interp(grid, recall[::-1], precision[::-1])
        defined += 1
    flat_y, flat_p = y.ravel(), probs.ravel()
    summary: dict = {"roc_auc": {}, "average_precision": {}}
    if _defined(flat_y):
        fpr, tpr, _ = skm.roc_curve(flat_y, flat_p)
        precision, recall, _ = skm.precision_recall_curve(flat_y, flat_p)
        roc["micro"], pr["micro"] = (fpr, tpr), (recall, precision)
        summary["roc_auc"]["micro"] = float(skm.roc_auc_score(flat_y, flat_p))
        summary["average_precision"]["micro"] = float(skm.average_precision_score(flat_y, flat_p))
    else:
        summary["roc_auc"]["micro"] = summary["average_precision"]["micro"] = None
    if defined:
        tpr_mean = tpr_sum / defined
        tpr_mean[0] = 0.0
        roc["macro"], pr["macro"] = (grid, tpr_mean), (grid, prec_sum / defined)
        summary["roc_auc"]["macro"] = float(np.mean([v for v in roc_auc.values() if v is not None]))
        summary["average_precision"]["macro"] = float(np.mean([v for v in ap.values() if v is not None]))
    else:
        summary["roc_auc"]["macro"] = summary["average_precision"]["macro"] = None
    summary["roc_auc"]["per_class"] = roc_auc
    summary["average_precision"]["per_class"] = ap
    return summary, Curves(roc, pr)


def compute_metrics(labels: np.ndarray, probs: np.ndarray, class_names: list[str],
                    worst: int = WORST_EXAMPLES) -> tuple[dict, Curves]:
    """(JSON-ready metrics dict, curve points for plots) for integer labels and (N, C) probs."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = as_probabilities(probs)
    num_classes = len(class_names)
    if probs.ndim != 2 or probs.shape != (len(labels), num_classes):
        raise ValueError(f"probabilities of shape {probs.shape} do not match {len(labels)} labels "
                         f"x {num_classes} classes")
    classes = list(range(num_classes))
    pred = probs.argmax(axis=1)
    confidence = probs.max(axis=1)

    out: dict = {"num_samples": int(len(labels)), "num_classes": num_classes}
    out["accuracy"] = float(skm.accuracy_score(labels, pred))
    out["top_k_accuracy"] = {
        str(k): float(skm.top_k_accuracy_score(labels, probs, k=k, labels=classes))
        for k in TOP_K if k < num_classes
    }
    out["log_loss"] = float(skm.log_loss(labels, probs, labels=classes))
    out["brier_score"] = float(skm.brier_score_loss(labels, probs, labels=classes, scale_by_half=False))
    out["brier_score_definition"] = ("mean over samples of the sum over classes of "
                                     "(probability - one-hot label)^2; range 0..2")

    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, pred, labels=classes, zero_division=0)
    counts = skm.confusion_matrix(labels, pred, labels=classes)
    normalized = skm.confusion_matrix(labels, pred, labels=classes, normalize="true")
    out["macro"] = {"precision": float(precision.mean()), "recall": float(recall.mean()),
                    "f1": float(f1.mean())}
    out["balanced_accuracy"] = float(recall[support > 0].mean()) if (support > 0).any() else 0.0

    curves_summary, curves = roc_pr(labels, probs, num_classes)
    out["roc_auc"] = {k: v for k, v in curves_summary["roc_auc"].items() if k != "per_class"}
    out["average_precision"] = {k: v for k, v in curves_summary["average_precision"].items()
                                if k != "per_class"}
    out["per_class"] = [
        {"class": name, "index": c, "support": int(support[c]),
         "accuracy": float(recall[c]) if support[c] else None,  # per-class accuracy == recall
         "recall": float(recall[c]), "precision": float(precision[c]), "f1": float(f1[c]),
         "roc_auc": curves_summary["roc_auc"]["per_class"][str(c)],
         "average_precision": curves_summary["average_precision"]["per_class"][str(c)]}
        for c, name in enumerate(class_names)
    ]
    out["confusion_matrix"] = {"rows": "true class", "columns": "predicted class",
                               "counts": counts.tolist(),
                               "normalized": np.round(normalized, 6).tolist()}
    ece, bins = expected_calibration_error(labels, probs)
    out["calibration"] = {"ece": ece, "bins": ECE_BINS, "confidence": "top-1 probability",
                          "mean_confidence": float(confidence.mean()) if len(labels) else 0.0,
                          "table": bins}
    wrong = np.flatnonzero(pred != labels)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:worst]
    out["most_confident_errors"] = [
        {"index": int(i), "true": class_names[labels[i]], "pred": class_names[pred[i]],
         "confidence": float(confidence[i])}
        for i in wrong
    ]
    out["num_errors"] = int((pred != labels).sum())
    return out, curves


def weakest_classes(metrics: dict, n: int = 3) -> list[dict]:
    """The n classes with the lowest accuracy (recall), among classes present in the split."""
    present = [row for row in metrics["per_class"] if row["support"]]
    return sorted(present, key=lambda row: (row["accuracy"], row["index"]))[:n]
