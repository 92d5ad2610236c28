"""Train a recipe and record test accuracy and training wall time after every epoch.

    python bench/time_to_accuracy.py --recipe fast --data ../shared/datasets/cifar10-jpeg
    python bench/time_to_accuracy.py --recipe baseline --data ../shared/datasets/cifar10-jpeg

Writes bench/results/time_to_accuracy-<name>.json and .png (accuracy vs training minutes).
Test evaluation time is excluded from the training time. Resumable: rerun the same command.
The last record also scores the saved model (`final_model`: float32, lookahead average applied).
Before and after training it times the default `fast` network's conv-only twin
(bench/step_profile.py), a measure of this machine's speed whatever the recipe, and scales the
training time to a reference machine whose conv-only twin runs at `REFERENCE_CONV_RATE`: the
same run on a machine half as fast reads the same there (docs/results.md, "Minutes scaled to a
reference convolution rate").
`--quick`: one epoch at batch 32 on 256 random images, run folder and record in a temp folder.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from cifarlab.data import CIFAR10_CLASSES, load_dataset
from cifarlab.evaluation.tta import predict_tta
from cifarlab.models.io import load_keras_model
from cifarlab.models.openset import without_ood_score
from cifarlab.training import config as train_config
from cifarlab.training.train import train

import record
from _common import CIFAR10_JPEG, save_plot, tiny_dataset, tiny_images
from step_profile import conv_only_rate  # noqa: E402

REFERENCE_CONV_RATE = 1401.0  # images/s: the low end of the reference machine's conv-only rate (1,401-1,572)


def test_accuracies(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> dict:
    """Test accuracy, plain and with `evaluate --tta`'s 6-view test-time augmentation."""

    def predict(batch):
        return model.predict(batch, batch_size=500, verbose=0)

    return {"test_accuracy": float((predict(images).argmax(1) == labels).mean()),
            "test_accuracy_tta": float((predict_tta(predict, images).argmax(1) == labels).mean())}


class TestAccuracyLog(keras.callbacks.Callback):
    """After each epoch: test accuracy (plain and with `evaluate --tta`'s 6-view test-time
    augmentation), cumulative training seconds."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, path: Path, every: int, epochs: int,
                 run: record.BenchRun):
        super().__init__()
        self.images, self.labels, self.path, self.every, self.epochs = images, labels, path, every, epochs
        self.run = run
        previous = record.results_of(json.loads(path.read_text())) if path.exists() else {}
        self.records = previous.get("epochs", [])
        self.notes = {k: v for k, v in previous.items() if k not in ("command", "epochs")}
        self.train_seconds = self.records[-1]["train_seconds"] if self.records else 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self.start
        if (epoch + 1) % self.every and epoch + 1 != self.epochs:
            return self.record(epoch + 1, {})

        self.record(epoch + 1, {**test_accuracies(self.model, self.images, self.labels),
                                "val_accuracy": float(logs.get("val_accuracy", float("nan")))})

    def record(self, epoch: int, measured: dict) -> None:
        self.records = [r for r in self.records if r["epoch"] < epoch] + [
            {"epoch": epoch, "train_seconds": round(self.train_seconds, 1), **measured}]
        self.save()

    def save(self):
        self.run.write(self.path, {"epochs": self.records, **self.notes})


def measure_conv_rate(log: TestAccuracyLog, when: str, quick: bool) -> None:
    """Record the conv-only twin's images/s at `when` ("before"/"after" training), once per run."""
    rates = log.notes.setdefault("conv_only_images_per_second", {})
    if when not in rates:
        images, labels = tiny_images(1024, 10)
        options = dict(batch_size=8, widths=(8, 16, 16), warmup=1, steps=1) if quick else {}
        rates[when] = round(conv_only_rate(images, labels, **options), 1)
        log.save()


def at_reference_machine(log: TestAccuracyLog) -> None:
    """The last record's training minutes scaled to `REFERENCE_CONV_RATE`."""
    rates = log.notes["conv_only_images_per_second"]
    rate = sum(rates.values()) / len(rates)
    log.records[-1]["train_minutes_at_reference_conv_rate"] = round(
        log.records[-1]["train_seconds"] / 60 * rate / REFERENCE_CONV_RATE, 2)


def plot(records: list[dict], title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in records if "test_accuracy" in r]
    minutes = [r["train_seconds"] / 60 for r in records]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(minutes, [100 * r["test_accuracy"] for r in records], "o-", label="test")
    ax.plot(minutes, [100 * r["test_accuracy_tta"] for r in records], "s--", label="test, 6-view TTA")
    save_plot(fig, ax, path, xlabel="training wall time (minutes, 2-core CPU)", ylabel="accuracy (%)",
              title=title)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CIFAR10_JPEG))
    parser.add_argument("--name", default=None, help="result name (default: the recipe or model name)")
    parser.add_argument("--eval-every", type=int, default=1, metavar="N",
                        help="measure test accuracy every N epochs (and after the last)")
    train_config.add_arguments(parser)  # every `cifarlab train` option (--out default: runs/bench-NAME)
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    name = args.name or args.recipe or args.model or train_config.from_args(args, data=args.data).resolved().recipe
    overrides = {"out": args.out or Path(f"runs/bench-{name}")}
    if args.quick:
        overrides = {"epochs": 1, "batch_size": 32, "out": Path(tempfile.mkdtemp(prefix="bench-tta-")) / name}
    dataset = tiny_dataset(CIFAR10_CLASSES, {"train": 256, "test": 64}) if args.quick else None
    test = (dataset or load_dataset(args.data)).split("test")
    config = train_config.from_args(args, data=args.data, command=shlex.join(["python", *sys.argv]), **overrides)
    resolved = config.resolved()
    path = run.path(f"time_to_accuracy-{name}.json")
    log = TestAccuracyLog(test.images, test.labels, path, args.eval_every, resolved.epochs, run)
    saved = resolved.out / "model.keras"
    measure_conv_rate(log, "before", args.quick)
    if not saved.exists():  # rerunning a finished run only measures its saved model again
        summary = train(config, extra_callbacks=[log], dataset=dataset)
        log.records[-1]["final_val_metrics"] = summary["val_metrics"]
    measure_conv_rate(log, "after", args.quick)
    at_reference_machine(log)
    # What `cifarlab evaluate` scores: the saved float32 model, the lookahead average applied last.
    final, _ = load_keras_model(saved)
    final = without_ood_score(final)
    log.records[-1]["final_model"] = test_accuracies(final, test.images, test.labels)
    log.save()
    plot(log.records, f"{name}: CIFAR-10 (JPEG q75 copy) test accuracy", path.with_suffix(".png"))
    print(json.dumps(log.records[-1]))


if __name__ == "__main__":
    main()
