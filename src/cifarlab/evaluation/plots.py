"""The evaluation plots, each rendered to PNG bytes with matplotlib's Agg canvas (no pyplot, no
display, no global figure state); `render_figures` renders and writes every one of a run.

Kept cheap for many classes: per-class ROC / PR curves are drawn only for <= 20 classes (beyond
that only the micro and macro averages); confusion-matrix cells carry numbers only for <= 20
classes; curves are thinned to at most ~2,000 points each before drawing.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cifarlab.atomic import write_atomic
from cifarlab.evaluation.metrics import Curves

PER_CLASS_CURVES_MAX = 20
ANNOTATE_MAX = 20
MAX_CURVE_POINTS = 2000
DPI = 100
GRID_COLUMNS = 5
GRID_TILE = 96  # misclassified images are upscaled (nearest) to at least this many pixels
OOD_BINS = 40
OOD_PLOT = "open_set_scores.png"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= MAX_CURVE_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, MAX_CURVE_POINTS).astype(int))
    return x[keep], y[keep]


def _tick_size(n: int) -> float:
    return 9 if n <= 10 else 7 if n <= 20 else max(3.5, 9 - n / 15)


def confusion_matrix_png(matrix: np.ndarray, class_names: list[str], normalized: bool) -> bytes:
    n = len(class_names)
    side = float(np.clip(2.5 + 0.45 * n, 5, 16))
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalized else max(int(matrix.max()), 1),
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=_tick_size(n))
    ax.set_yticks(range(n), class_names, fontsize=_tick_size(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (row-normalized: recall per true class)" if normalized
                 else "Confusion matrix (counts)")
    if n <= ANNOTATE_MAX:
        threshold = (1 if normalized else matrix.max()) / 2
        for (r, c), value in np.ndenumerate(matrix):
            text = f"{value:.2f}" if normalized else str(int(value))
            ax.text(c, r, text, ha="center", va="center", fontsize=8 if n <= 10 else 6,
                    color="white" if value > threshold else "black")
    return _png(fig)


def _curves_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], scores: dict, per_class: list,
                class_names: list[str], kind: str) -> bytes:
    fig = Figure(figsize=(9.5, 6), layout="constrained")
    ax = fig.add_subplot()
    n = len(class_names)
    score_name = "AUC" if kind == "roc" else "AP"
    if n <= PER_CLASS_CURVES_MAX:
        for c, name in enumerate(class_names):
            if str(c) in curves:
                x, y = _thin(*curves[str(c)])
                ax.plot(x, y, lw=1, alpha=0.8, label=f"{name} ({score_name} {per_class[c]:.3f})")
    for key, style in (("micro", dict(color="black", ls="--", lw=2.2)),
                       ("macro", dict(color="crimson", ls=":", lw=2.2))):
        if key in curves:
            x, y = _thin(*curves[key])
            ax.plot(x, y, label=f"{key} average ({score_name} {scores[key]:.3f})", **style)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="-", alpha=0.5)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC, one-vs-rest" + ("" if n <= PER_CLASS_CURVES_MAX
                                           else f" ({n} classes: micro/macro only)"))
    else:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Precision-recall, one-vs-rest" + ("" if n <= PER_CLASS_CURVES_MAX
                                                         else f" ({n} classes: micro/macro only)"))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def roc_png(curves: Curves, metrics: dict, class_names: list[str]) -> bytes:
    per_class = [row["roc_auc"] for row in metrics["per_class"]]
    return _curves_png(curves.roc, metrics["roc_auc"], per_class, class_names, "roc")


def pr_png(curves: Curves, metrics: dict, class_names: list[str]) -> bytes:
    per_class = [row["average_precision"] for row in metrics["per_class"]]
    return _curves_png(curves.pr, metrics["average_precision"], per_class, class_names, "pr")


def reliability_png(calibration: dict) -> bytes:
    table = calibration["table"]
    fig = Figure(figsize=(6.5, 7), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    lower = np.array([b["lower"] for b in table])
    width = lower[1] - lower[0] if len(lower) > 1 else 1.0
    centers = lower + width / 2
    acc = np.array([b["accuracy"] if b["accuracy"] is not None else 0.0 for b in table])
    conf = np.array([b["confidence"] if b["confidence"] is not None else c
                     for b, c in zip(table, centers)])
    counts = np.array([b["count"] for b in table])
    filled = counts > 0
    top.bar(centers[filled], acc[filled], width=width * 0.95, color="steelblue", edgecolor="navy",
            label="accuracy in bin")
    top.bar(centers[filled], (conf - acc)[filled], bottom=acc[filled], width=width * 0.95,
            color="salmon", alpha=0.45, edgecolor="red", hatch="//", label="gap to confidence")
    top.plot([0, 1], [0, 1], color="grey", ls="--", label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(f"Reliability diagram ({len(table)} bins), ECE = {calibration['ece']:.4f}")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.bar(centers, counts, width=width * 0.95, color="grey")
    bottom.set_xlabel("top-1 confidence")
    bottom.set_ylabel("images")
    bottom.set_xlim(0, 1)
    return _png(fig)


def per_class_accuracy_png(metrics: dict) -> bytes:
    rows = metrics["per_class"]
    n = len(rows)
    fig = Figure(figsize=(7.5, float(np.clip(1 + 0.28 * n, 3, 26))), layout="constrained")
    ax = fig.add_subplot()
    acc = np.array([r["accuracy"] if r["accuracy"] is not None else 0.0 for r in rows])
    order = np.arange(n)[::-1]  # first class at the top
    colors = ["indianred" if a < metrics["accuracy"] else "seagreen" for a in acc]
    ax.barh(range(n), acc[order], color=[colors[i] for i in order])
    ax.set_yticks(range(n), [rows[i]["class"] for i in order], fontsize=_tick_size(n))
    ax.axvline(metrics["accuracy"], color="black", ls="--", lw=1,
               label=f"overall accuracy {metrics['accuracy']:.3f}")
    if n <= 40:
        for y, i in enumerate(order):
            ax.text(min(acc[i] + 0.01, 0.93), y, f"{acc[i]:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (recall) per true class")
    ax.set_title("Per-class accuracy")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def upscale_nearest(image: np.ndarray, tile: int = GRID_TILE) -> np.ndarray:
    factor = max(1, -(-tile // max(image.shape[:2])))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def misclassified_png(images: np.ndarray, errors: list[dict],
                      maps: list[tuple[np.ndarray, np.ndarray]] | None = None) -> bytes:
    """Grid of the most confidently wrong images, each titled true / pred / confidence; with
    `maps` (one (predicted-class map, true-class map) pair per error; None or empty: no maps), each
    image is followed by its two class-activation maps blended over it."""
    from cifarlab.inference.cam import overlay_heatmap

    panels = 3 if maps else 1
    per_row = 2 if maps else GRID_COLUMNS
    shown = errors[: per_row * (6 if maps else 5)]
    columns = panels * max(1, min(per_row, len(shown)))
    rows = max(1, -(-len(shown) * panels // columns))
    fig = Figure(figsize=(2.1 * columns, 2.35 * rows + 0.4), layout="constrained")
    fig.suptitle("Most confidently wrong" + (" (maps: predicted class, true class)" if maps else "")
                 if shown else "No misclassified images")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for i, err in enumerate(shown):
        image = upscale_nearest(images[err["index"]])
        cells = [(image, f"#{err['index']} true: {err['true']}\npred: {err['pred']} ({err['confidence']:.2f})")]
        if maps:
            cells += [(overlay_heatmap(image, cam), f"map: {name}") for cam, name in
                      zip(maps[i], (err["pred"], err["true"]))]
        for ax, (picture, title) in zip(axes[i * panels:], cells):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(title, fontsize=7.5)
    return _png(fig)


def corruption_heatmap_png(section: dict) -> bytes:
    """Accuracy per corruption (rows) x severity (columns), with the clean accuracy for reference."""
    names = list(section["accuracy"])
    severities = section["severities"]
    grid = np.array([[section["accuracy"][n][str(s)] for s in severities] for n in names]) * 100
    fig = Figure(figsize=(2.2 + 0.9 * len(severities), 1.2 + 0.32 * len(names)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="accuracy (%)", shrink=0.8)
    ax.set_xticks(range(len(severities)), [f"severity {s}" for s in severities], fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for (i, j), value in np.ndenumerate(grid):
        ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7)
    ratio = f", mean over the 15: {section['mean_15']:.1%}" if section["mean_15"] is not None else ""
    ax.set_title(f"Accuracy under corruptions (clean {section['clean_accuracy']:.1%}{ratio})", fontsize=9)
    return _png(fig)


def ood_histogram_png(inside: np.ndarray, outside: np.ndarray | None, threshold: float | None,
                      score: str) -> bytes:
    """Histograms of the split's and the outside images' scores over shared bins, each normalized
    to its own count, with the threshold as a vertical line."""
    both = inside if outside is None else np.concatenate([inside, outside])
    bins = np.histogram_bin_edges(both, bins=OOD_BINS)
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.add_subplot()
    weights = np.full(len(inside), 1 / len(inside))
    ax.hist(inside, bins, weights=weights, color="steelblue", alpha=0.6,
            label=f"test split ({len(inside):,} images)")
    if outside is not None:
        ax.hist(outside, bins, weights=np.full(len(outside), 1 / len(outside)), color="darkorange",
                alpha=0.6, label=f"outside images ({len(outside):,})")
    if threshold is not None:
        ax.axvline(threshold, color="crimson", ls="--", lw=1.6, label=f"threshold {threshold:.4g}")
    ax.set_xlabel(f"{score} score (higher: less like the training classes)")
    ax.set_ylabel("share of the set's images")
    ax.set_title("Open-set score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def render_open_set_figure(section: dict, inside: np.ndarray | None, outside: np.ndarray | None,
                           out_dir: str | Path) -> dict[str, tuple[str, bytes]]:
    """The score histogram, written atomically to out_dir/OOD_PLOT, and its name recorded in the
    open-set `section` as "plot" (nothing without a score)."""
    if not section.get("available"):
        return {}
    vs = " and of the outside images" if outside is not None else ""
    caption = (f"Open-set {section['score']} score of the test images{vs}; "
               f"above the dashed line an image is unknown" if section["threshold"] is not None
               else f"Open-set {section['score']} score of the test images{vs} (rejection off)")
    png = ood_histogram_png(inside, outside, section["threshold"], section["score"])
    write_atomic(Path(out_dir) / OOD_PLOT, png)
    section["plot"] = OOD_PLOT
    return {OOD_PLOT: (caption, png)}


def _curves_caption(title: str, num_classes: int) -> str:
    per_class = " per class," if num_classes <= PER_CLASS_CURVES_MAX else ""
    return f"{title}, one-vs-rest{per_class} with micro and macro averages"


def _misclassified_caption(explained: bool) -> str:
    maps = ("; beside each, the class-activation maps of the predicted and of the true class"
            if explained else "")
    return ("Most confidently wrong images (upscaled, nearest neighbour): index, true class, "
            "predicted class (confidence)" + maps)


def render_figures(metrics: dict, curves: Curves, images: np.ndarray,
                   maps: list[tuple[np.ndarray, np.ndarray]] | None,
                   out_dir: str | Path) -> dict[str, tuple[str, bytes]]:
    """Every figure of an evaluation, each written atomically to out_dir/NAME: NAME -> (caption,
    PNG bytes), in report order. corruptions.png only when `metrics` has a corruptions section;
    maps: those of misclassified_png (None: the model has no layers to explain)."""
    class_names = [row["class"] for row in metrics["per_class"]]
    matrix = metrics["confusion_matrix"]
    figures = {
        "confusion_matrix.png": ("Confusion matrix, counts",
                                 confusion_matrix_png(np.array(matrix["counts"]), class_names, False)),
        "confusion_matrix_normalized.png": (
            "Confusion matrix, each row divided by the class's image count",
            confusion_matrix_png(np.array(matrix["normalized"]), class_names, True)),
        "per_class_accuracy.png": ("Accuracy per class (red: below overall accuracy)",
                                   per_class_accuracy_png(metrics)),
        "roc.png": (_curves_caption("ROC curves", len(class_names)), roc_png(curves, metrics, class_names)),
        "pr.png": (_curves_caption("Precision-recall curves", len(class_names)),
                   pr_png(curves, metrics, class_names)),
        "reliability.png": (f"Reliability diagram: accuracy vs top-1 confidence, "
                            f"{metrics['calibration']['bins']} equal-width bins",
                            reliability_png(metrics["calibration"])),
        "misclassified.png": (_misclassified_caption(maps is not None),
                              misclassified_png(images, metrics["most_confident_errors"], maps)),
    }
    if "corruptions" in metrics:
        figures["corruptions.png"] = ("Accuracy under CIFAR-10-C corruptions, per corruption and severity "
                                      "(no test-time augmentation)",
                                      corruption_heatmap_png(metrics["corruptions"]))
    for name, (_, png) in figures.items():
        write_atomic(Path(out_dir) / name, png)
    return figures
