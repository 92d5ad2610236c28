"""Open-set recognition on the CIFAR10 6/4 protocol: train on 6 classes, score the other 4.

    python bench/open_set.py --data ../shared/datasets/cifar10-jpeg --recipe fast

For each class split, trains the recipe on the 6 known classes (resumable run folders in
runs/bench-openset-<recipe>-<split>), then scores every out-of-distribution score of
`cifarlab.models.openset` side by side, with the statistics fitted on training images as
`cifarlab train` does:
- near: the 4 unknown classes' test images against the 6 known classes' test images;
- far, built here (no image collection of another package): uniform noise, smooth colour blobs
  (walls, desks), and the known test images cut into 8x8 tiles and shuffled (their colours and
  textures without their objects).
AUROC (higher is better) and FPR95 (share of the outside images accepted when 95% of the known
test images are; lower is better). Writes bench/results/open_set-<recipe>.json.
`--seeds 0,1,2`: also the ensemble of three runs per split.
`--quick`: one epoch on tiny generated data, the first split, two seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

from cifarlab.data import CIFAR10_CLASSES, Dataset, Split, load_dataset
from cifarlab.evaluation.openset import ood_metrics
from cifarlab.models import openset
from cifarlab.models.io import load_keras_model
from cifarlab.training.config import TrainConfig
from cifarlab.training.openset import STATISTICS_IMAGES, training_features
from cifarlab.training.train import train

import record
from _common import CIFAR10_JPEG, tiny_dataset

# Known classes of each split (the rest are unknown): animals and vehicles mixed on both sides.
SPLITS = {"a": (0, 1, 2, 4, 5, 9), "b": (0, 3, 5, 7, 8, 9)}
FAR_IMAGES = 2000


def known_only(data: Dataset, known: tuple[int, ...]) -> tuple[Dataset, Split, Split]:
    """The dataset of the known classes (labels renumbered), its test split and the unknown test."""
    remap = np.full(data.num_classes, -1)
    remap[list(known)] = np.arange(len(known))

    def pick(split: Split, keep: bool) -> Split:
        positions = np.flatnonzero((remap[split.labels] >= 0) == keep)
        chosen = split.select(positions)
        return dataclasses.replace(chosen, labels=remap[chosen.labels] if keep else chosen.labels)

    splits = {"train": pick(data.split("train"), True), "test": pick(data.split("test"), True)}
    names = [data.class_names[c] for c in known]
    subset = dataclasses.replace(data, class_names=names, splits=splits,
                                 fingerprint=f"{data.fingerprint}-known-{'-'.join(map(str, known))}")
    return subset, splits["test"], pick(data.split("test"), False)


def far_sets(images: np.ndarray, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    import cv2

    rng = np.random.default_rng(seed)
    side = images.shape[1]
    noise = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
    blobs = np.stack([cv2.GaussianBlur(cv2.resize(s, (side, side), interpolation=cv2.INTER_CUBIC), (5, 5), 0)
                      for s in small])
    tiles = images[rng.permutation(len(images))[:n]].reshape(n, side // 8, 8, side // 8, 8, 3)
    tiles = tiles.transpose(0, 1, 3, 2, 4, 5).reshape(n, -1, 8, 8, 3)
    order = np.argsort(rng.random(tiles.shape[:2]), axis=1)
    shuffled = np.take_along_axis(tiles, order[:, :, None, None, None], axis=1)
    grid = side // 8
    shuffled = shuffled.reshape(n, grid, grid, 8, 8, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n, side, side, 3)
    return {"noise": noise, "blobs": blobs, "shuffled-tiles": shuffled}


def score_all(model, statistics: dict, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every score; with "+flip", of the features and logits averaged over the image and its mirror
    image; "knn-10k" with a bank of all the fitted training images instead of the default bank."""
    extractor = openset.feature_model(model)
    plain = extractor.predict(images, batch_size=500, verbose=0)
    mirrored = extractor.predict(images[:, :, ::-1], batch_size=500, verbose=0)
    both = [(a + b) / 2 for a, b in zip(plain, mirrored)]
    scores = {}
    for suffix, (features, logits) in (("", plain), ("+flip", both)):
        for kind, (base, stats) in statistics.items():
            scores[kind + suffix] = np.asarray(openset.score(base, features, logits, stats.arrays(base)))
    return scores


def parse_overrides(pairs: list[str]) -> dict:
    """KEY=VALUE recipe overrides (values read as JSON, else as text): label_smoothing=0 epochs=20."""
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
        if isinstance(overrides[key], list):
            overrides[key] = tuple(overrides[key])
    return overrides


def trained_member(subset: Dataset, recipe: str, out: Path, seed: int, overrides: dict):
    """The model of one run (trained unless its folder holds one) and its fitted statistics."""
    config = TrainConfig(data="(bench)", recipe=recipe, out=out, seed=seed, **overrides)
    if not (out / "model.keras").exists():
        train(config, dataset=subset)
    model, _ = load_keras_model(out / "model.keras")
    model = openset.without_ood_score(model)
    classes = subset.num_classes
    sample, features, _ = training_features(model, subset.split("train"), STATISTICS_IMAGES, seed=0)
    fitted = openset.fit_statistics(features, sample.labels, classes)
    statistics = {kind: (kind, fitted) for kind in openset.SCORES}
    statistics["knn-10k"] = ("knn", openset.fit_statistics(features, sample.labels, classes,
                                                           bank_size=len(features)))
    return model, statistics


def member_folder(out: Path, seed: int) -> Path:
    return out if seed == 0 else out.with_name(f"{out.name}-s{seed}")


def measure_split(name: str, known: tuple[int, ...], data: Dataset, recipe: str, out: Path,
                  quick: bool, overrides: dict, seeds: tuple[int, ...] = (0,)) -> dict:
    """Scores of the first seed's model, and with several seeds also of their ensemble: each score
    averaged over the independently trained models (probabilities averaged for the closed-set accuracy)."""
    subset, known_test, unknown_test = known_only(data, known)
    overrides = {**overrides, "epochs": 1, "batch_size": 32} if quick else overrides
    outside = {"near (4 unknown classes)": unknown_test.images,
               **far_sets(known_test.images, 64 if quick else FAR_IMAGES)}
    samples = {"inside": known_test.images, **outside}
    members = [trained_member(subset, recipe, member_folder(out, seed), seed, overrides) for seed in seeds]
    scored = [{sample: score_all(model, statistics, images) for sample, images in samples.items()}
              for model, statistics in members]
    probs = [model.predict(known_test.images, batch_size=500, verbose=0) for model, _ in members]
    result = {"known": [data.class_names[c] for c in known], "seeds": list(seeds),
              "closed_set_accuracy": float((probs[0].argmax(1) == known_test.labels).mean()),
              "scores": {}}
    if len(members) > 1:
        result["ensemble_closed_set_accuracy"] = float((np.mean(probs, 0).argmax(1) == known_test.labels).mean())
        scored.append({sample: {f"{kind} (ensemble of {len(members)})": np.mean([m[sample][kind] for m in scored], 0)
                                for kind in scored[0][sample]} for sample in samples})
        scored = [scored[0], scored[-1]]
    for member in scored:
        for kind in member["inside"]:
            result["scores"][kind] = {set_name: ood_metrics(member["inside"][kind], member[set_name][kind])
                                      for set_name in outside}
    return result


def summary_table(splits: dict) -> dict:
    """Mean AUROC / FPR95 over the splits, per score and outside set."""
    first = next(iter(splits.values()))["scores"]
    return {kind: {set_name: {metric: float(np.mean([s["scores"][kind][set_name][metric] for s in splits.values()]))
                              for metric in ("auroc", "fpr95")}
                   for set_name in sets}
            for kind, sets in first.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CIFAR10_JPEG))
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--splits", default=",".join(SPLITS), help=f"class splits ({', '.join(SPLITS)})")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="recipe overrides, e.g. label_smoothing=0 epochs=20")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds; several add the "
                        "scores of their ensemble (runs of seed N > 0 in <run folder>-sN)")
    parser.add_argument("--name", help="names the record and run folders (default: the recipe)")
    record.add_quick_option(parser)
    args = parser.parse_args()
    name = args.name or args.recipe
    overrides = parse_overrides(args.set)
    seeds = tuple(int(seed) for seed in args.seeds.split(","))
    seeds = (0, 1) if args.quick and len(seeds) == 1 else seeds
    splits = args.splits.split(",")[:1] if args.quick else args.splits.split(",")
    run = record.begin(args.quick)
    data = (tiny_dataset(CIFAR10_CLASSES, {"train": 600, "test": 200}) if args.quick
            else load_dataset(args.data))
    root = Path(tempfile.mkdtemp(prefix="bench-openset-")) if args.quick else Path("runs")
    path = run.path(f"open_set-{name}.json")
    results = {"protocol": "CIFAR10 6/4 (Neal et al. 2018): train on 6 classes, the other 4 unknown",
               "command": shlex.join(["python", *sys.argv]), "recipe": args.recipe,
               "overrides": overrides, "seeds": list(seeds), "splits": {}}
    for split in splits:
        results["splits"][split] = measure_split(split, SPLITS[split], data, args.recipe,
                                                 root / f"bench-openset-{name}-{split}", args.quick, overrides,
                                                 seeds)
        results["mean"] = summary_table(results["splits"])
        run.write(path, results)
    print(json.dumps(results["mean"], indent=1))


if __name__ == "__main__":
    main()
