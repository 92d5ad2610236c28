"""How well a model's out-of-distribution score separates its test images from outside images,
and what rejecting by it costs on the test images (metrics.json's `open_set` section)."""

from __future__ import annotations

import numpy as np

from cifarlab.inference.rejection import HOW_TO_ADD, Rejection

KEEP = 0.95  # FPR95: the share of outside images accepted when this share of the test images is


def ood_metrics(inside: np.ndarray, outside: np.ndarray, threshold: float | None = None) -> dict:
    """AUROC (outside images as positives, higher score = more outside), FPR at 95% TPR of the
    inside images, and with `threshold` the share of each set flagged unknown (score above it)."""
    from sklearn.metrics import roc_auc_score

    inside, outside = np.asarray(inside, np.float64), np.asarray(outside, np.float64)
    labels = np.concatenate([np.zeros(len(inside)), np.ones(len(outside))])
    cut = np.quantile(inside, KEEP)
    result = {"auroc": float(roc_auc_score(labels, np.concatenate([inside, outside]))),
              "fpr95": float((outside <= cut).mean()),
              "inside_images": len(inside), "outside_images": len(outside)}
    if threshold is not None:
        result["flagged_inside"] = float((inside > threshold).mean())
        result["flagged_outside"] = float((outside > threshold).mean())
    return result


def no_score_section(model_path: str) -> dict:
    return {"available": False,
            "note": f"no open-set score; {HOW_TO_ADD.format(path=model_path)}"}


def accepted_accuracy(labels: np.ndarray, probs: np.ndarray, accepted: np.ndarray) -> float | None:
    """Top-1 accuracy on the accepted images (None when every image is rejected)."""
    if not accepted.any():
        return None
    return float((np.argmax(probs[accepted], axis=1) == labels[accepted]).mean())


def open_set_section(rejection: Rejection, labels: np.ndarray, probs: np.ndarray,
                     scores: np.ndarray | None, outside: np.ndarray | None, model_path: str,
                     tta: bool = False) -> dict:
    """metrics.json's `open_set`: the score, its threshold and where it came from, what rejecting
    costs on the split (the share rejected, the accuracy on the rest) and, with the `outside`
    scores, how well it tells them from the split (`ood_metrics`)."""
    if scores is None or not rejection.score:
        return no_score_section(model_path)
    rejected = rejection.unknown(scores)
    section = {"available": True, "score": rejection.score, "threshold": rejection.threshold,
               "threshold_source": rejection.source, "rejection": rejection.describe(),
               "test_images": len(scores), "rejected_share": float(rejected.mean()),
               "accepted_accuracy": accepted_accuracy(np.asarray(labels), probs, ~rejected)}
    if tta:
        section["tta_note"] = ("Scores are those of the plain images; the test-time augmentation "
                               "views average the probabilities only")
    if outside is not None:
        found = ood_metrics(scores, outside, rejection.threshold)
        section.update(outside_images=found["outside_images"], auroc=found["auroc"],
                       fpr95=found["fpr95"], flagged_outside=found.get("flagged_outside"))
    return section
