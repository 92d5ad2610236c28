"""Training images/second of each preset and precision, side by side in one run.

    python bench/train_throughput.py --data ../shared/datasets/cifar10-jpeg --steps 200

Each variant runs its preset's real training step (model, optimizer, loss, batch size, tf.data
augmentation) for `--warmup` steps, then `--steps` timed steps. The `+xla` variants compile the
same step with XLA (`jit_compile=True`), which Keras leaves off on CPU-only machines; they are
here to show whether that default is right on this CPU. Variants alternate in rounds so
machine noise hits all of them alike; the JSON keeps every round and the median, rewritten
after every round (a run cut short keeps what it measured).
Writes bench/results/train_throughput.json (`--quick`: 2 steps at batch 16 on random images, three variants).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import keras
import numpy as np

from cifarlab.data import load_dataset
from cifarlab.data.stats import channel_stats
from cifarlab.models.registry import build_model
from cifarlab.training.config import TrainConfig
from cifarlab.training.pipeline import Augment, train_dataset
from cifarlab.training.precision import POLICIES
from cifarlab.training.optim import make_optimizer

import record
from _common import CIFAR10_JPEG, tiny_images

BASE = "baseline/float32"  # the variant every ratio is taken to


def make_variant(preset: str, precision: str, images: np.ndarray, labels: np.ndarray, classes: int,
                 xla: bool = False, batch_size: int | None = None):
    cfg = TrainConfig(data="", model=preset, precision=precision, batch_size=batch_size).resolved()
    mean, std = channel_stats(images)
    model = build_model(preset, images.shape[1:3], classes, mean, std, dtype_policy=POLICIES[precision],
                        init_images=images, **cfg.model_options())
    steps = len(labels) // cfg.batch_size
    model.compile(optimizer=make_optimizer(cfg, steps),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                  jit_compile=xla)
    data = train_dataset(images, labels, classes, cfg.batch_size, 0, 0, 1000, Augment.of(cfg))
    return model, iter(data.repeat()), cfg.batch_size


def time_steps(model, batches, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        x, y = next(batches)
        model.train_on_batch(x, y)
    return time.perf_counter() - start


VARIANTS = {f"{preset}/{precision}{'+xla' * xla}": (preset, precision, xla)
            for preset, xla in (("baseline", False), ("fast", False), ("fast", True))
            for precision in ("float32", "bfloat16")}
QUICK_VARIANTS = (BASE, "fast/bfloat16", "fast/bfloat16+xla")  # each kind of step, in seconds


def make_variants(images: np.ndarray, labels: np.ndarray, batch_size: int | None,
                  names=tuple(VARIANTS)) -> dict:
    return {name: make_variant(VARIANTS[name][0], VARIANTS[name][1], images, labels, 10,
                               xla=VARIANTS[name][2], batch_size=batch_size) for name in names}


def summary(rates: dict[str, list[float]], args) -> dict:
    """The record's results from the rounds measured so far."""
    medians = {name: statistics.median(r) for name, r in rates.items() if r}
    return {
        "settings": {k: v for k, v in vars(args).items() if k != "quick"},
        "rounds_done": min(len(r) for r in rates.values()),
        "images_per_second_median": {k: round(v, 1) for k, v in medians.items()},
        f"ratio_to_{BASE.replace('/', '_')}": {k: round(v / medians[BASE], 2) for k, v in medians.items()},
        "rounds": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "epoch_seconds_50k": {k: round(50000 / v, 1) for k, v in medians.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CIFAR10_JPEG))
    parser.add_argument("--steps", type=int, default=200, help="timed steps per variant (split over rounds)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=10)
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    if args.quick:
        args.steps, args.rounds, args.warmup = 2, 1, 1
        images, labels = tiny_images(64, 10)
    else:
        train = load_dataset(args.data).split("train")
        images, labels = train.images, train.labels
    variants = (make_variants(images, labels, 16, QUICK_VARIANTS) if args.quick else
                make_variants(images, labels, None))
    for model, batches, _ in variants.values():
        time_steps(model, batches, args.warmup)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    per_round = max(1, args.steps // args.rounds)
    out = run.path("train_throughput.json")
    for _ in range(args.rounds):
        for name, (model, batches, batch_size) in variants.items():
            rates[name].append(per_round * batch_size / time_steps(model, batches, per_round))
        run.write(out, summary(rates, args))
    print(json.dumps(summary(rates, args)["images_per_second_median"], indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
