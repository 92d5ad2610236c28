"""Open set after `train --from`: a few images of 3 classes learned from the shipped model; how
well each score tells the other 7 CIFAR-10 classes from them.

    python bench/open_set_few_shot.py --data ../shared/datasets/cifar10-jpeg

For k images per class (class folders written from the training split), `cifarlab train --from
--transfer head` (seconds, what `live`'s `t` runs), then every score of `cifarlab.models.openset`
with the statistics of those k x 3 images: AUROC of the 7 unseen classes' test images against the
3 known classes' test images, and for the model's own score and threshold (the small-validation
rule) the share of each set flagged. Writes bench/results/open_set_few_shot.json.
`--quick`: k = 5 on tiny generated data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from cifarlab.data import CIFAR10_CLASSES, load_dataset
from cifarlab.evaluation.openset import ood_metrics
from cifarlab.inference import open_classifier
from cifarlab.inference.rejection import rejection_for
from cifarlab.models import openset
from cifarlab.models.io import load_keras_model
from cifarlab.training.config import TrainConfig
from cifarlab.training.train import train

import record
from _common import CIFAR10_JPEG, tiny_image_folder

KNOWN = ("airplane", "automobile", "ship")
PER_CLASS = (10, 20, 50)


def write_known(source: Path, folder: Path, k: int) -> Path:
    for name in KNOWN:
        (folder / name).mkdir(parents=True)
        for image in sorted((source / "train" / name).iterdir())[:k]:
            shutil.copy(image, folder / name / image.name)
    return folder


def measure(data_folder: Path, test, out: Path, parent: Path | None) -> dict:
    train(TrainConfig(data=str(data_folder), from_model=str(parent) if parent else "", transfer="head", out=out))
    model, meta = load_keras_model(out / "model.keras")
    base = openset.without_ood_score(model)
    own = load_dataset(data_folder, image_size=32, use_cache=False).split("train")
    features, logits = openset.feature_model(base).predict(own.images, verbose=0)
    statistics = openset.fit_statistics(features, own.labels, len(KNOWN))
    known = np.isin(np.asarray(test.labels), [CIFAR10_CLASSES.index(c) for c in KNOWN])
    f_test, l_test = openset.feature_model(base).predict(test.images, batch_size=500, verbose=0)
    auroc = {}
    for kind in openset.SCORES:
        scores = np.asarray(openset.score(kind, f_test, l_test, statistics.arrays(kind)))
        auroc[kind] = ood_metrics(scores[known], scores[~known])["auroc"]
    classifier = open_classifier(out / "model.keras", "keras")
    flags = rejection_for(classifier).unknown(classifier.predict_scored(test.images)[1])
    return {"auroc_unseen_vs_known": auroc, "own_score": meta.open_set.score,
            "fitted_on": meta.open_set.fitted_on, "flagged_known_test": float(flags[known].mean()),
            "flagged_unseen_test": float(flags[~known].mean()), "train_images": len(own)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=CIFAR10_JPEG)
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    root = Path(tempfile.mkdtemp(prefix="bench-openset-few-"))
    parent = None
    if args.quick:
        args.data = tiny_image_folder(root / "cifar", CIFAR10_CLASSES, {"train": 100, "test": 100})
        parent = root / "parent"
        train(TrainConfig(data=str(args.data), model="fast", widths=(8, 16, 16), epochs=1, batch_size=16, out=parent))
        parent = parent / "model.keras"
    test = load_dataset(args.data).split("test")
    results = {"known": list(KNOWN), "parent": str(parent or "models/cifar10-fast.keras"), "per_class": {}}
    for k in (5,) if args.quick else PER_CLASS:
        folder = write_known(Path(args.data), root / f"k{k}", k)
        results["per_class"][str(k)] = measure(folder, test, root / f"run-k{k}", parent)
        run.write(run.path("open_set_few_shot.json"), results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
