"""Class-activation maps of the most confidently wrong images, for the misclassified figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GALLERY_MAPS = 12  # errors shown with their maps


def error_maps(model_path: Path, images: np.ndarray,
               metrics: dict) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """(predicted-class map, true-class map) of the most confident errors, from the .keras model;
    None for an exported file, which carries no layers to explain."""
    from cifarlab.inference.cam import CamExplainer
    from cifarlab.models.io import is_keras_file, load_keras_model

    if not is_keras_file(model_path):
        return None
    errors = metrics["most_confident_errors"][:GALLERY_MAPS]
    if not errors:
        return []
    class_names = [row["class"] for row in metrics["per_class"]]
    explainer = CamExplainer(load_keras_model(model_path)[0])
    shown = images[[e["index"] for e in errors]]
    by_pred, _ = explainer.explain(shown, np.array([class_names.index(e["pred"]) for e in errors]))
    by_true, _ = explainer.explain(shown, np.array([class_names.index(e["true"]) for e in errors]))
    return list(zip(by_pred, by_true))
