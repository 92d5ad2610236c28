"""Accuracy under CIFAR-10-C's corruptions: generated from the evaluated split with the published
32x32 parameters (`cifarlab.evaluation.corruptions`), or read from the official files.

The result is the `corruptions` section of metrics.json: accuracy per corruption x severity, the
mean over the 15 main corruptions, the mean over all that were scored, and corrupted/clean.
Generation (numpy/OpenCV, one thread) and inference (the runtime's threads) overlap: the next
corrupted batch is made while the current one is classified.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.corruptions import CORRUPTIONS, corrupt, load_official


@dataclass(frozen=True)
class CorruptionPlan:
    names: tuple[str, ...]
    severities: tuple[int, ...]
    samples: int | None = None      # a seeded, stratified subset of the split (None: all of it)
    official: Path | None = None    # a folder of CIFAR-10-C files instead of generating them
    seed: int = 0


def stratified_subset(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded subset of n images with the classes in their proportions (all if None)."""
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    if n < 1:
        raise CifarlabError(f"--corruption-samples must be at least 1, got {n}")
    from cifarlab.data.sampling import seeded_sample

    counts = np.bincount(labels)
    stratify = labels if n >= np.count_nonzero(counts) and counts[counts > 0].min() >= 2 else None
    # the n left when the others are drawn out: the same subsets as scikit-learn's train_size=n
    _, index = seeded_sample(len(labels), len(labels) - n, seed, stratify)
    return index


def _corrupted_sets(plan: CorruptionPlan, images: np.ndarray, labels: np.ndarray, index: np.ndarray):
    """(name, severity, images, labels) for every cell of the plan, lazily."""
    if plan.official is None:
        for name in plan.names:
            for severity in plan.severities:
                yield name, severity, lambda n=name, s=severity: corrupt(images[index], n, s, plan.seed), labels[index]
        return
    official, official_labels = load_official(plan.official, plan.names)
    if len(official_labels) != len(labels) or (official_labels != labels).any():
        raise CifarlabError(f"{plan.official}/labels.npy does not match the evaluated split's labels "
                            f"({len(official_labels)} vs {len(labels)} images); CIFAR-10-C is made from "
                            "the official test split: evaluate --split test of the official data")
    for name in plan.names:
        for severity in plan.severities:
            cell = official[(name, severity)]
            if cell.shape[1:] != images.shape[1:]:
                raise CifarlabError(f"{plan.official}/{name}.npy holds {cell.shape[1]}x{cell.shape[2]} "
                                    f"images but the model takes {images.shape[1]}x{images.shape[2]}")
            yield name, severity, lambda c=cell: c[index], labels[index]


def score_corruptions(classifier, images: np.ndarray, labels: np.ndarray, plan: CorruptionPlan,
                      clean_accuracy: float, batch_size: int = 512, progress: bool = True) -> dict:
    """The `corruptions` section: accuracy for every corruption x severity of `plan`."""
    from tqdm import tqdm

    index = stratified_subset(labels, plan.samples, plan.seed)
    cells = list(_corrupted_sets(plan, images, labels, index))
    total = sum(len(cell_labels) for *_, cell_labels in cells)
    accuracy: dict[str, dict[str, float]] = {}
    with ThreadPoolExecutor(1) as maker, tqdm(total=total, unit="img", desc="corruptions", file=sys.stderr,
                                              disable=not progress, leave=False) as bar:
        pending = maker.submit(cells[0][2]) if cells else None
        for i, (name, severity, _, cell_labels) in enumerate(cells):
            batch_images = pending.result()
            pending = maker.submit(cells[i + 1][2]) if i + 1 < len(cells) else None
            bar.set_postfix_str(f"{name} {severity}")
            predicted = np.concatenate([classifier.predict(batch_images[j : j + batch_size]).argmax(1)
                                        for j in range(0, len(batch_images), batch_size)])
            accuracy.setdefault(name, {})[str(severity)] = float((predicted == cell_labels).mean())
            bar.update(len(cell_labels))
    return summarize(accuracy, clean_accuracy, plan, len(index) if plan.official is None else None)


def summarize(accuracy: dict[str, dict[str, float]], clean_accuracy: float, plan: CorruptionPlan,
              samples: int | None) -> dict:
    per_corruption = {name: float(np.mean(list(cells.values()))) for name, cells in accuracy.items()}
    main = [per_corruption[n] for n in CORRUPTIONS if n in per_corruption]
    mean_main = float(np.mean(main)) if len(main) == len(CORRUPTIONS) else None
    mean_all = float(np.mean(list(per_corruption.values())))
    return {
        "source": f"official files in {plan.official}" if plan.official else
                  "generated with CIFAR-10-C's 32x32 parameters (cifarlab.evaluation.corruptions)",
        "seed": plan.seed, "images_per_cell": samples,
        "severities": list(plan.severities), "corruptions": list(plan.names),
        "accuracy": accuracy, "mean_per_corruption": per_corruption,
        "mean_15": mean_main, "mean_all": mean_all, "clean_accuracy": clean_accuracy,
        "ratio_15": mean_main / clean_accuracy if mean_main is not None and clean_accuracy else None,
        "ratio_all": mean_all / clean_accuracy if clean_accuracy else None,
    }


def terminal_table(section: dict) -> str:
    """A short table: one row per corruption, one column per severity, then its mean."""
    severities = section["severities"]
    width = max(len(n) for n in section["accuracy"])
    lines = [f"{'corruption':<{width}}  " + "  ".join(f"  s{s}" for s in severities) + "   mean"]
    for name, cells in section["accuracy"].items():
        values = "  ".join(f"{100 * cells[str(s)]:4.1f}" for s in severities)
        lines.append(f"{name:<{width}}  {values}  {100 * section['mean_per_corruption'][name]:5.1f}")
    summary = [f"clean {section['clean_accuracy']:.2%}"]
    if section["mean_15"] is not None:
        summary.append(f"mean over the 15 {section['mean_15']:.2%} (x{section['ratio_15']:.3f} of clean)")
    summary.append(f"mean over all {len(section['accuracy'])} {section['mean_all']:.2%}")
    return "\n".join(lines + [", ".join(summary)])
