"""Learning new classes from a trained model: from scratch vs head only vs full fine-tune.

    python bench/transfer.py --data ../shared/datasets/cifar10-jpeg                  # parent: fast
    python bench/transfer.py --parent baseline --modes finetune --name transfer-baseline
    python bench/transfer.py --parent models/cifar10-fast.keras --name transfer-shipped

`--parent RECIPE` (fast, fast-sgd, baseline, ...): a backbone is trained with that recipe on five
CIFAR-10 classes only (airplane, automobile, bird, cat, deer), cached in
runs/bench-transfer-backbone[-RECIPE] so reruns reuse it; the new classes are the other five
(dog, frog, horse, ship, truck), scored on their 5,000 test images. `--parent FILE.keras`: that
model (trained on all of CIFAR-10) learns 10 real-photo classes that are none of CIFAR-10's
(`--other-data`: the first 10 classes of ROOT/<class>/<image>, images 50 and on of each scored).
For k = 10, 25, 50, 100 training images per new class (a seeded sample), three ways of learning
them are scored, each with the wall time of its training:

- scratch: `cifarlab train` with the fast recipe and its small-data defaults, no pretraining;
- head: `cifarlab train --from BACKBONE --transfer head` (features computed once, new head);
- finetune: `cifarlab train --from BACKBONE --transfer finetune` (the whole network).

Every run trains on exactly the k images per class (no validation split is held out of them).
Writes bench/results/transfer.json (the command inside) and transfer.png. `--quick`: random
images, a 1-epoch backbone, k=2, one epoch per run, everything in a temp folder.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cifarlab.data import CIFAR10_CLASSES, Dataset, Split, load_dataset
from cifarlab.data.dataset import fingerprint_arrays
from cifarlab.data.images import read_image_rgb, resize_rgb
from cifarlab.models.io import load_keras_model
from cifarlab.models.openset import without_ood_score
from cifarlab.training import start as start_module
from cifarlab.training.config import TrainConfig
from cifarlab.training.train import train

import record
from _common import CIFAR10_JPEG, OUTLIER_CLASSES, save_plot, tiny_dataset
BASE = ("airplane", "automobile", "bird", "cat", "deer")
NEW = ("dog", "frog", "horse", "ship", "truck")
MODES = ("scratch", "head", "finetune")


def class_subset(data: Dataset, classes: tuple[str, ...], name: str) -> Dataset:
    """The train and test images of `classes` only, relabelled 0..len(classes)-1."""
    lookup = np.full(data.num_classes, -1, np.int64)
    lookup[[data.class_names.index(c) for c in classes]] = np.arange(len(classes))
    splits = {}
    for split in ("train", "test"):
        s = data.split(split)
        keep = lookup[s.labels] >= 0
        splits[split] = Split(s.images[keep], lookup[s.labels[keep]])
    return Dataset(list(classes), splits, data.format, f"{data.source} [{name}]",
                   fingerprint_arrays(list(classes), splits), "off")


def k_shot(data: Dataset, k: int, seed: int) -> Dataset:
    """k seeded training images per class (no val split: every mode trains on all k)."""
    train_split = data.split("train")
    rng = np.random.default_rng([seed, k])
    pick = np.sort(np.concatenate([rng.choice(np.flatnonzero(train_split.labels == c), k, replace=False)
                                   for c in range(data.num_classes)]))
    splits = {"train": Split(train_split.images[pick], train_split.labels[pick])}
    return Dataset(list(data.class_names), splits, data.format, f"{data.source} k={k}",
                   fingerprint_arrays(data.class_names, splits), "off")


def accuracy(model_path: Path, test: Split) -> float:
    model = without_ood_score(load_keras_model(model_path)[0])
    return float((model.predict(test.images, batch_size=500, verbose=0).argmax(1) == test.labels).mean())


def other_classes(root: Path, size: int, classes: int = 10, train_images: int = 50) -> Dataset:
    """The first `classes` classes of ROOT/<class>/<image>: each class's first `train_images`
    images (by name) to draw training images from, the rest to score."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir())[:classes]
    rows: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    for label, name in enumerate(names):
        for i, path in enumerate(sorted((root / name).iterdir())):
            images, labels = rows["train" if i < train_images else "test"]
            images.append(resize_rgb(read_image_rgb(path), (size, size)))
            labels.append(label)
    splits = {k: Split(np.stack(x), np.array(y, np.int64)) for k, (x, y) in rows.items()}
    return Dataset(names, splits, "folder", f"{root} [{classes} classes]", fingerprint_arrays(names, splits), "off")


def train_backbone(data: Dataset, recipe: str, out: Path, command: str, epochs: int | None) -> Path:
    if not (out / "model.keras").exists():
        started = time.perf_counter()
        train(TrainConfig(data=data.source, recipe=recipe, out=out, epochs=epochs, quiet=True,
                          command=f"{command} (backbone)"), dataset=data)
        print(f"backbone trained in {time.perf_counter() - started:.0f} s", flush=True)
    return out / "model.keras"


def run_one(mode: str, data: Dataset, backbone: Path, out: Path, seed: int, command: str,
            epochs: int | None = None, options: dict | None = None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    common = dict(data=data.source, out=out, seed=seed, quiet=True, command=f"{command} ({out.name})",
                  epochs=epochs)
    if mode == "scratch":  # the fast recipe with its small-data defaults; all k images train
        config = TrainConfig(model="fast", val_fraction=0.0, **common)
    else:
        config = TrainConfig(from_model=str(backbone), transfer=mode, **common, **(options or {}))
    summary = train(config, dataset=data)
    return {"rollbacks": summary["rollbacks"], "train_seconds": round(summary["train_seconds"], 1),
            "session_seconds": round(summary["session_seconds"], 1),
            "epochs": summary["epochs_run"], "settings": summary.get("small_data") or summary.get("recipe")}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for mode, style in zip(MODES, ("o-", "s-", "^-")):
        rows = sorted((r["k"], 100 * r["test_accuracy"]) for r in results if r["mode"] == mode)
        if rows:
            ax.plot(*zip(*rows), style, label=mode)
    ax.axhline(80, color="grey", lw=0.8, ls=":")
    ax.axhline(60, color="grey", lw=0.8, ls=":")
    save_plot(fig, ax, path, xscale="log", xticks=[10, 25, 50, 100], xticklabels=["10", "25", "50", "100"],
              xlabel="training images per new class (k)", ylabel="test accuracy, 5 new classes (%)",
              title="5 CIFAR-10 classes learned from a backbone trained on the other 5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CIFAR10_JPEG))
    parser.add_argument("--k", default="10,25,50,100", help="training images per class, comma-separated")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--backbone-only", action="store_true")
    parser.add_argument("--name", default="transfer", help="result file name (bench/results/NAME.json)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a training/start.py constant (tuning), e.g. HEAD_C=0.05")
    parser.add_argument("--parent", default="fast", help="a recipe (its backbone is trained on the "
                        "5 base classes) or a .keras model trained on CIFAR-10")
    parser.add_argument("--backbone-epochs", type=int, default=None,
                        help="epochs of the backbone's recipe (default: the recipe's)")
    parser.add_argument("--other-data", default=str(OUTLIER_CLASSES),
                        help="with a .keras --parent: ROOT/<class>/<image> of classes none of its own")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a numeric training option of the --from runs, e.g. clip_norm=0")
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    command = shlex.join(["python", *sys.argv])
    for item in args.set:
        name, value = item.split("=", 1)
        setattr(start_module, name, type(getattr(start_module, name))(value))
    epochs = None
    if args.quick:
        args.k, args.runs, epochs = "2", Path(tempfile.mkdtemp(prefix="bench-transfer-")), 1
    options = {k: float(v) for k, v in (item.split("=", 1) for item in args.option)}
    if args.parent.endswith(".keras"):
        backbone, results = Path(args.parent), {"backbone": args.parent}
        new = other_classes(Path(args.other_data), 32)
    else:
        full = (tiny_dataset(CIFAR10_CLASSES, {"train": 200, "test": 50}) if args.quick
                else load_dataset(args.data, progress=False))
        base = class_subset(full, BASE, "5 base classes")
        new = class_subset(full, NEW, "5 new classes")
        del full
        folder = "bench-transfer-backbone" + ("" if args.parent == "fast" else f"-{args.parent}")
        backbone = train_backbone(base, args.parent, args.runs / folder, command, epochs or args.backbone_epochs)
        results = {"backbone": str(backbone), "backbone_test_accuracy": accuracy(backbone, base.split("test")),
                   "base_classes": list(BASE)}
        print(json.dumps({"backbone_test_accuracy": results["backbone_test_accuracy"]}), flush=True)
    results.update(parent=args.parent, options=options, new_classes=list(new.class_names), runs=[])
    out = run.path(f"{args.name}.json")
    if args.backbone_only:
        return
    test = new.split("test")
    for k in (int(v) for v in args.k.split(",")):
        data = k_shot(new, k, args.seed)
        for mode in args.modes.split(","):
            folder = args.runs / "bench-transfer" / args.name / f"k{k}-{mode}"
            row = {"k": k, "mode": mode, **run_one(mode, data, backbone, folder, args.seed, command, epochs,
                                                   options)}
            model = without_ood_score(load_keras_model(folder / "model.keras")[0])
            probs = model.predict(test.images, batch_size=500, verbose=0)
            mirrored = model.predict(test.images[:, :, ::-1], batch_size=500, verbose=0)
            row["test_accuracy"] = float((probs.argmax(1) == test.labels).mean())
            row["test_accuracy_flip_tta"] = float(((probs + mirrored).argmax(1) == test.labels).mean())
            results["runs"].append(row)
            print(json.dumps({key: row[key] for key in ("k", "mode", "test_accuracy",
                                                         "test_accuracy_flip_tta", "train_seconds")}),
                  flush=True)
            run.write(out, results)
    plot(results["runs"], out.with_suffix(".png"))


if __name__ == "__main__":
    main()
