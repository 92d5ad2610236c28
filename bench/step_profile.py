"""Where a training step's time goes: the `fast` and `baseline` steps taken apart, in one run.

    python bench/step_profile.py             # on a machine doing nothing else
    python bench/step_profile.py --quick     # 1 step at batch 8, narrow widths, one variant of each kind

Each "twin" variant is a training step of the network's own layer shapes at batch 1024 in mixed
bfloat16 with SGD (Nesterov momentum 0.85) on one fixed random batch, built by the registered
builder with its normalisation and activation layers swapped (models/layers.py `LayerSet`):
none at all (`conv-only`: convolutions, whitening stem, pools and head, the limit every other
row is read against), Keras's BatchNormalization or the fused one, and each activation. The
`real-*` variants are cifarlab's own step (recipe optimizer, loss, batch size and tf.data
augmentation, as bench/train_throughput.py times it) with Keras's (`keras`) and cifarlab's
(`fused`) layer sets, and `fast/real-fused-sgd` the `fast-sgd` recipe's step (SGD instead of Muon);
the target is `ratio_to_conv_only` >= 0.85 for `fast/real-fused`.
Variants alternate in rounds so machine noise hits all of them alike; the record keeps every
round and the median, and is rewritten after each round.
Writes bench/results/step_profile.json (`--name NAME`: step_profile-NAME.json). `--variants` times
a subset (fnmatch patterns) with more steps each, for a steadier ratio on a noisy machine.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import itertools
import statistics
from collections.abc import Callable

import keras
import numpy as np

from cifarlab.data.stats import channel_stats
from cifarlab.models.layers import GELU, LAYER_SETS, FusedBatchNormalization, LayerSet
from cifarlab.models.registry import build_model
from cifarlab.training.config import TrainConfig
from cifarlab.training.optim import make_optimizer
from cifarlab.training.pipeline import Augment, train_dataset
from cifarlab.training.precision import POLICIES

import record
from _common import tiny_images
from train_throughput import time_steps  # noqa: E402

CLASSES = 10
POLICY = POLICIES["bfloat16"]
EPOCH_IMAGES = 50_000  # the real steps' learning-rate schedule is laid out for CIFAR-10 epochs
NORMS = {"none": lambda **_: keras.layers.Identity(), "keras-bn": keras.layers.BatchNormalization,
         "fused-bn": FusedBatchNormalization}
ACTIVATIONS = {
    "none": keras.layers.Identity,
    "keras-gelu": lambda: keras.layers.Activation("gelu"),
    "keras-gelu-tanh": lambda: keras.layers.Activation(functools.partial(keras.activations.gelu,
                                                                         approximate=True)),
    "relu": lambda: keras.layers.Activation("relu"),
    "gelu": GELU,  # cifarlab's: Keras's forward, XLA-fused analytic gradient
    "gelu-unfused": lambda: GELU(jit=False),  # the same analytic gradient as plain TF ops
    "gelu-sigmoid": lambda: GELU("sigmoid"),  # x * sigmoid(1.702 x)
}
FAST_TWINS = [("none", "none"), ("keras-bn", "none"), ("fused-bn", "none"),
              ("none", "keras-gelu"), ("none", "keras-gelu-tanh"), ("none", "relu"), ("none", "gelu"),
              ("none", "gelu-unfused"), ("none", "gelu-sigmoid"),
              ("keras-bn", "keras-gelu"), ("fused-bn", "relu"), ("fused-bn", "keras-gelu"),
              ("fused-bn", "gelu"), ("fused-bn", "gelu-sigmoid")]
BASELINE_TWINS = [("none", "none"), ("keras-bn", "none"), ("fused-bn", "none")]  # its ReLUs stay
# --quick builds one variant of each kind: each builder and both networks run, in seconds.
QUICK_VARIANTS = ("fast/conv-only", "fast/fused-bn+gelu", "fast/real-fused", "baseline/real-keras")


def twin_name(preset: str, norm: str, activation: str) -> str:
    if norm == activation == "none":
        return f"{preset}/conv-only"
    parts = [p for p in (norm, activation) if p != "none"]
    return f"{preset}/" + "+".join(parts)


def model_inputs(images: np.ndarray) -> dict:
    mean, std = channel_stats(images)
    return dict(input_size=images.shape[1:3], num_classes=CLASSES, mean=mean, std=std,
                init_images=images)


def twin_step(preset: str, layers: LayerSet, images, labels, batch_size: int, widths) -> tuple:
    """(model, endless batches, batch size) for a twin: plain SGD on one fixed random batch."""
    options = {"widths": widths} if preset == "fast" and widths else {}
    model = build_model(preset, dtype_policy=POLICY, layers=layers, **model_inputs(images), **options)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.85, nesterov=True),
                  keras.losses.CategoricalCrossentropy())
    x = keras.ops.convert_to_tensor(images[:batch_size])
    y = keras.ops.convert_to_tensor(keras.utils.to_categorical(labels[:batch_size], CLASSES))
    return model, itertools.repeat((x, y)), batch_size


def real_step(preset: str, layers: str, images, labels, batch_size: int | None, widths,
              recipe: str | None = None) -> tuple:
    """(model, endless batches, batch size) of cifarlab's own training step for `preset` (with
    `recipe`: that recipe's optimizer and augmentation instead of the default recipe's)."""
    cfg = TrainConfig(data="", model=preset, recipe=recipe, precision="bfloat16", batch_size=batch_size,
                      widths=widths if preset == "fast" else None, layers=layers).resolved()
    model = build_model(preset, dtype_policy=POLICY, **model_inputs(images), **cfg.model_options())
    model.compile(optimizer=make_optimizer(cfg, EPOCH_IMAGES // cfg.batch_size),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing))
    data = train_dataset(images, labels, CLASSES, cfg.batch_size, 0, 0, 1000, Augment.of(cfg))
    return model, iter(data.repeat()), cfg.batch_size


def make_variants(images, labels, batch_size: int, widths, real_batch: dict,
                  patterns: tuple[str, ...] = ("*",)) -> dict:
    """Every variant whose name matches one of `patterns` (fnmatch), built in the table's order."""
    builders = {}
    for preset, twins in (("fast", FAST_TWINS), ("baseline", BASELINE_TWINS)):
        for norm, activation in twins:
            layers = LayerSet(NORMS[norm], ACTIVATIONS[activation])
            builders[twin_name(preset, norm, activation)] = functools.partial(
                twin_step, preset, layers, images, labels, batch_size, widths)
        for layers in LAYER_SETS:
            builders[f"{preset}/real-{layers}"] = functools.partial(
                real_step, preset, layers, images, labels, real_batch.get(preset), widths)
    builders["fast/real-fused-sgd"] = functools.partial(  # the default before Muon
        real_step, "fast", "fused", images, labels, real_batch.get("fast"), widths, recipe="fast-sgd")
    chosen = [name for name in builders if any(fnmatch.fnmatch(name, p) for p in patterns)]
    if not chosen:
        raise SystemExit(f"--variants {' '.join(patterns)}: matches none of {', '.join(builders)}")
    return {name: builders[name]() for name in chosen}


def measure_in_rounds(variants: dict, warmup: int, steps: int, rounds: int,
                      after_round: Callable[[dict], object]) -> dict[str, list[float]]:
    """Images/s of every (model, batches, batch size) variant per round: `warmup` steps each,
    then `steps` split over `rounds`, the variants taking turns within each round."""
    for model, batches, _ in variants.values():
        time_steps(model, batches, warmup)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    per_round = max(1, steps // rounds)
    for _ in range(rounds):
        for name, (model, batches, batch_size) in variants.items():
            rates[name].append(per_round * batch_size / time_steps(model, batches, per_round))
        after_round(rates)
    return rates


def conv_only_rate(images, labels, batch_size: int = 1024, widths=None, warmup: int = 2,
                   steps: int = 6) -> float:
    """Images/s of the `fast` conv-only twin: the machine's limit for the `fast` step, which
    bench/time_to_accuracy.py measures beside each training run."""
    variants = make_variants(images, labels, batch_size, widths, {}, ("fast/conv-only",))
    return measure_in_rounds(variants, warmup, steps, 1, lambda rates: None)["fast/conv-only"][0]


def finite_weights(variants: dict) -> dict[str, bool]:
    """Whether each variant's weights are still finite (NaN or overflow would skew its rate)."""
    return {name: all(np.isfinite(w).all() for w in model.get_weights())
            for name, (model, _, _) in variants.items()}


def summary(rates: dict[str, list[float]], settings: dict, finite: dict | None = None) -> dict:
    """The record's results from the rounds measured so far."""
    medians = {name: statistics.median(r) for name, r in rates.items() if r}
    limit = {preset: medians.get(f"{preset}/conv-only") for preset in ("fast", "baseline")}
    return {
        "settings": settings,
        "finite_weights_after": finite or "not checked yet",
        "rounds_done": min(len(r) for r in rates.values()),
        "images_per_second_median": {k: round(v, 1) for k, v in medians.items()},
        "ratio_to_conv_only": {k: round(v / limit[k.split("/")[0]], 3) for k, v in medians.items()
                               if limit[k.split("/")[0]]},
        "rounds": {k: [round(x, 1) for x in v] for k, v in rates.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=1024, help="batch of the twin variants")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant (split over rounds)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--images", type=int, default=4096, help="random images the real steps augment")
    parser.add_argument("--variants", nargs="+", default=["*"], metavar="PATTERN",
                        help="only the variants matching these names or patterns (fnmatch), e.g. "
                             "'fast/conv-only' 'fast/real-*': fewer variants, more steps each")
    parser.add_argument("--name", default=None,
                        help="writes step_profile-NAME.json instead of step_profile.json")
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    widths, real_batch = None, {}
    if args.quick:
        args.batch_size, args.steps, args.rounds, args.warmup, args.images = 8, 1, 1, 1, 64
        widths, real_batch = (8, 16, 16), {"fast": 8, "baseline": 8}
        args.variants = QUICK_VARIANTS if args.variants == ["*"] else args.variants
    images, labels = tiny_images(max(args.images, args.batch_size), CLASSES)
    settings = {**{k: v for k, v in vars(args).items() if k not in ("quick", "name")}, "policy": POLICY,
                "widths": widths or "recipe", "optimizer (twins)": "SGD nesterov momentum 0.85"}
    variants = make_variants(images, labels, args.batch_size, widths, real_batch, tuple(args.variants))
    out = run.path(f"step_profile-{args.name}.json" if args.name else "step_profile.json")
    rates = measure_in_rounds(variants, args.warmup, args.steps, args.rounds,
                              lambda rates: run.write(out, summary(rates, settings)))
    result = summary(rates, settings, finite_weights(variants))
    run.write(out, result)
    for name, rate in result["images_per_second_median"].items():
        print(f"{name:28s} {rate:9.1f} images/s  {result['ratio_to_conv_only'].get(name, 0):6.3f} x conv-only")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
