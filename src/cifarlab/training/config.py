"""`TrainConfig`: every training option, declared once with its help text and choices.

The `cifarlab train` command line and the benchmark scripts are generated from these fields
(`add_arguments` / `from_args`). Recipe fields default to None, meaning "the model's registered
recipe" (models/fast.py, models/baseline.py); `resolved()` fills them in. Fields marked with
`models=` are architecture options that only some models take.
"""

from __future__ import annotations

import argparse
import inspect
import math
import shlex
import sys
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from cifarlab.errors import CifarlabError
from cifarlab.models.registry import get_entry, model_entries

STRATEGIES = ("auto", "one", "mirrored", "multiworker")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("triangle", "warmup-cosine", "constant", "plateau")
TRANSFER_MODES = ("head", "finetune")
DEFAULT_TRANSFER = "finetune"  # measured: bench/results/transfer.json, why in training/transfer.py

# The small-data rule (`small_data_defaults`): its constants.
MIN_STEPS_PER_EPOCH = 4      # the batch size is lowered until an epoch has at least this many steps
SMALLEST_BATCH = 8
MIN_STEPS = 300              # a run whose batch was lowered takes at least this many steps...
MAX_EPOCHS = 400             # ...within at most this many epochs
VAL_IMAGES_PER_CLASS = 5     # validation share: at least this many images per class...
MAX_VAL_SHARE = 0.2          # ...but never more than this share of the training images
BN_WINDOWS = 10              # BatchNorm momentum at most 1 - this/(steps of the run)


def option(default=None, help: str = "", *, choices=None, recipe: bool = False, models=None,
           cli: bool = True, metavar: str | None = None, flag: str | None = None,
           const: str | None = None):
    """A TrainConfig field with what the command line needs to offer it.

    flag: the option's name when it is not the field's (`--from` for `from_model`); const: the
    value of the option given without one (the option's argument becomes optional).
    """
    meta = dict(help=help, choices=choices, recipe=recipe, models=models, cli=cli, metavar=metavar,
                flag=flag, const=const)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def recipe(help: str, **kwargs):
    return option(None, help, recipe=True, **kwargs)


@dataclass
class TrainConfig:
    # The dataset options (data, image_size, labels, cache) are shared with other commands and
    # declared in cli/common.py's dataset group.
    data: str = option("", "dataset source", cli=False)
    image_size: int | None = option(None, "image side", cli=False)
    labels: str = option("fine", "CIFAR-100 label set", cli=False)
    cache_dir: Path | None = option(None, "decoded-array cache", cli=False)
    use_cache: bool = option(True, "use the decoded-array cache", cli=False)

    model: str = option("fast", "architecture + its default recipe (see the recipe group)")
    out: Path | None = option(None, "run folder for model.keras, checkpoints and logs (default runs/MODEL)")
    resume: bool = option(False, "continue from the last finished epoch in --out (rerunning into the "
                                 "same --out resumes too; this flag insists there is a checkpoint)")
    seed: int = option(0, "random seed (same seed, same weights on CPU)")
    strategy: str = option("auto", "tf.distribute strategy: auto = multiworker if TF_CONFIG is set, "
                                   "mirrored with several GPUs, else one device", choices=STRATEGIES)
    precision: str = option("auto", "compute precision: auto = bfloat16 on CPUs with native BF16 "
                                    "(AVX512-BF16/AMX), float16 on GPUs, else float32; the saved model "
                                    "is float32 either way", choices=PRECISIONS)
    limit_train: int | None = option(None, "train on a seeded random subset of N training images",
                                     metavar="N")
    quiet: bool = option(False, "no progress bar, nothing printed")
    from_model: str | None = option(
        None, "learn these classes from a trained cifarlab model: its backbone is kept, a new head "
              "is made for the classes of --data, and the data is read at the model's input size; "
              "--from alone = $CIFARLAB_MODEL or the shipped models/cifar10-fast.keras",
        flag="from", const="", metavar="MODEL")
    transfer: str | None = option(
        None, f"with --from: head = train only a new head on features computed once (seconds; "
              f"for a live camera); finetune = start from that head, then train the whole network "
              f"300 steps with a small learning rate, flips and 2-pixel shifts (under a minute for "
              f"500 images; default: {DEFAULT_TRANSFER}, 4-5 points more accurate than head at 10 "
              f"to 100 images per class, bench/results/transfer.json). finetune takes --epochs, "
              f"--batch-size, --lr, --label-smoothing and --translate; head takes none",
        choices=TRANSFER_MODES)
    bn_momentum: float | None = option(
        None, "BatchNorm momentum (Keras: the weight of the old statistics) for every BatchNorm "
              "layer (default: the model's, lowered for small data, see the recipe group)",
        metavar="M")
    command: str = option("", "the command line, recorded in the model", cli=False)

    epochs: int | None = recipe("epochs (baseline: maximum; early stopping may end sooner)")
    batch_size: int | None = recipe("global batch size")
    lr: float | None = recipe("(peak) learning rate, for the mean loss of one batch")
    optimizer: str | None = recipe("optimizer", choices=OPTIMIZERS)
    momentum: float | None = recipe("SGD Nesterov momentum")
    bias_scaler: float | None = recipe("SGD: learning-rate multiplier of BatchNorm biases")
    lookahead_steps: int | None = recipe("SGD: reset weights to their running average every N steps (0 = off)")
    schedule: str | None = recipe("learning-rate schedule", choices=SCHEDULES)
    warmup_epochs: float | None = recipe("warm-up epochs (warmup-cosine schedule)")
    weight_decay: float | None = recipe("decoupled weight decay: each step shrinks weights by lr x this")
    label_smoothing: float | None = recipe("label smoothing")
    calibrate: bool | None = recipe("fit a softmax temperature on the validation split")
    val_fraction: float | None = recipe("fraction of train held out as validation (if the source has no val split)")
    early_stopping_patience: int | None = recipe("epochs without a better val loss before stopping (0 = off)")
    plateau_patience: int | None = recipe("plateau schedule: epochs without a better val loss before lowering the LR")
    plateau_factor: float | None = recipe("plateau schedule: LR multiplier")
    flip: bool | None = recipe("horizontal flips: each image mirrored in every other epoch, starting "
                               "from a random half")
    translate: int | None = recipe("random translation in pixels (0 = off)")
    cutout: int | None = recipe("side in pixels of a square painted over each training image with the "
                                "mean colour (0 = off)")
    noise: float | None = recipe("robustness: Gaussian pixel noise on half the images, sigma uniform "
                                 "in [0, this] on the 0..1 scale (0 = off)")
    contrast: float | None = recipe("robustness: fraction of images whose contrast is scaled by a "
                                    "factor uniform in [0.15, 1] about their mean (0 = off)")
    blur: float | None = recipe("robustness: fraction of images blurred by a Gaussian of sigma "
                                "uniform in [0.3, 1] pixels at 32 px, scaled with size (0 = off)")
    widths: tuple[int, ...] | None = recipe("channels of the three conv blocks", models=("fast",),
                                            metavar="A,B,C")
    whitening_eps: float | None = recipe("added to the patch variances before whitening; larger "
                                         "values amplify high-frequency noise less", models=("fast",))
    dropout: float | None = recipe("dropout rate of the first block (later blocks +0.05, +0.1)",
                                   models=("baseline",))

    def __post_init__(self) -> None:
        if not self.command:
            self.command = shlex.join(["cifarlab", *sys.argv[1:]])

    @property
    def verbose(self) -> int:
        """Keras's verbosity: a progress bar on a terminal, one line per epoch in a log file."""
        return 0 if self.quiet else (1 if sys.stdout.isatty() else 2)

    def resolved(self) -> TrainConfig:
        """A copy with every recipe field filled from the model's registered recipe, checked."""
        entry = get_entry(self.model)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(self):
            allowed = f.metadata["models"]
            if allowed and self.model not in allowed and values[f.name] is not None:
                raise CifarlabError(f"--{flag(f.name)} applies to {' and '.join(allowed)} only, "
                                    f"not {self.model}; drop it")
        for key, default in entry.recipe.items():
            if values[key] is None:
                values[key] = default
        values["out"] = Path(values["out"] or f"runs/{self.model}")
        if values["transfer"] is not None and values["from_model"] is None:
            raise CifarlabError("--transfer applies with --from MODEL only; add --from or drop --transfer")
        return replace(self, **values)

    def model_options(self) -> dict:
        """The builder keyword arguments this model registered as its own options."""
        return {name: getattr(self, name) for name in get_entry(self.model).options}


def small_data_defaults(config: TrainConfig, train_images: int, num_classes: int,
                        val_from_train: bool) -> dict[str, tuple[object, str]]:
    """Small data: the batch size, learning rate, epochs, BatchNorm momentum and validation
    share adapt to the number of training images; only options not given on the command line
    change, and on CIFAR-sized data none does. (1) Validation share, when the source has no val
    split: the recipe's, raised to hold 5 images per class, at most 20%. (2) Batch size: the
    recipe's, lowered to the largest power of two with at least 4 steps per epoch (at least 8).
    (3) With a batch below the recipe's (lowered, or given by hand): SGD learning rate scaled by
    batch/recipe batch (the linear scaling rule; the large-batch rate diverges on small
    batches), and epochs raised so the run takes at least 300 steps (at most 400 epochs).
    (4) BatchNorm momentum: at most 1 - 10/(steps of the run), so the statistics used at test
    time forget their initial values and average over the last tenth of the run (the baseline's
    0.99 averages over 100 steps, more than a small run takes).

    config: the unresolved TrainConfig (None = not set by hand); train_images: the images of the
    train split before any validation share is taken from it. Returns {field: (value, why)}
    for the fields it changes; train() applies and prints them.
    """
    recipe = get_entry(config.model).recipe
    chosen: dict[str, tuple[object, str]] = {}
    n = train_images
    if val_from_train:
        share = config.val_fraction if config.val_fraction is not None else recipe["val_fraction"]
        if config.val_fraction is None and n:
            wanted = min(MAX_VAL_SHARE, VAL_IMAGES_PER_CLASS * num_classes / n)
            if wanted > share:
                share = round(wanted, 4)
                chosen["val_fraction"] = (share, f"{VAL_IMAGES_PER_CLASS} images per class, at most "
                                                 f"{MAX_VAL_SHARE:.0%}")
        if share > 0:
            n -= math.ceil(share * n)  # what with_validation leaves (sklearn rounds the test share up)
    if config.limit_train:
        n = min(n, config.limit_train)
    batch = config.batch_size or recipe["batch_size"]
    if config.batch_size is None and n < MIN_STEPS_PER_EPOCH * batch:
        batch = max(min(SMALLEST_BATCH, n), 2 ** int(math.log2(max(1, n // MIN_STEPS_PER_EPOCH))))
        if batch < recipe["batch_size"]:
            chosen["batch_size"] = (batch, f"{n} images: at least {MIN_STEPS_PER_EPOCH} steps per epoch")
    if batch < recipe["batch_size"]:
        if config.lr is None and (config.optimizer or recipe["optimizer"]) == "sgd":
            lr = round(recipe["lr"] * batch / recipe["batch_size"], 6)
            chosen["lr"] = (lr, f"recipe {recipe['lr']} x {batch}/{recipe['batch_size']}")
        steps = max(1, n // batch)
        if config.epochs is None and recipe["epochs"] * steps < MIN_STEPS:
            epochs = min(MAX_EPOCHS, math.ceil(MIN_STEPS / steps))
            chosen["epochs"] = (epochs, f"{steps} steps per epoch: at least {MIN_STEPS} steps")
    if config.bn_momentum is None:
        epochs = chosen["epochs"][0] if "epochs" in chosen else (config.epochs or recipe["epochs"])
        total = max(1, n // batch) * epochs
        cap = round(max(0.5, 1 - BN_WINDOWS / total), 4)
        if cap < 0.99:  # Keras' default, the highest any registered model uses
            chosen["bn_momentum"] = (cap, f"at most 1 - {BN_WINDOWS}/{total} steps")
    return chosen


def flag(name: str) -> str:
    return name.replace("_", "-")


def _base_type(annotation: str):
    hint = typing.get_type_hints(TrainConfig)[annotation]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]
    return hint


def _parse_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _recipe_defaults(name: str) -> str:
    shown = [f"{m}: {entry.recipe[name]}" for m, entry in model_entries().items() if name in entry.recipe]
    return f" [{'; '.join(shown)}]" if shown else ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One command-line option per TrainConfig field (except those marked cli=False)."""
    rule = " ".join(inspect.getdoc(small_data_defaults).split("\n\n")[0].split())
    recipe_group = parser.add_argument_group(
        "recipe (default: the model's registered recipe, shown per model in brackets)",
        f"{rule[0].upper()}{rule[1:]} The values chosen are printed.")
    for f in fields(TrainConfig):
        meta = f.metadata
        if not meta["cli"]:
            continue
        kind = _base_type(f.name)
        target = recipe_group if meta["recipe"] else parser
        text = meta["help"] + (_recipe_defaults(f.name) if meta["recipe"] else "")
        kwargs = dict(default=None if meta["recipe"] else f.default, help=text, dest=f.name)
        if meta["const"] is not None:
            kwargs.update(nargs="?", const=meta["const"])
        if f.name == "model":
            kwargs["choices"] = list(model_entries())
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction if meta["recipe"] else "store_true"
        else:
            kwargs["type"] = _parse_ints if typing.get_origin(kind) is tuple else kind
            kwargs["metavar"] = meta["metavar"]
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
        target.add_argument(f"--{meta['flag'] or flag(f.name)}", **kwargs)


def from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """The TrainConfig of parsed arguments (fields missing from `args` keep their defaults)."""
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
              if f.metadata["cli"] and hasattr(args, f.name)}
    return TrainConfig(**{**values, **overrides})


def check_recipes() -> None:
    """Every registered recipe sets every recipe field its model uses, with a value of its type."""
    hints = typing.get_type_hints(TrainConfig)
    recipe_fields = {f.name: f for f in fields(TrainConfig) if f.metadata["recipe"]}
    for name, entry in model_entries().items():
        for key, value in entry.recipe.items():
            if key not in recipe_fields:
                raise TypeError(f"recipe of {name!r} sets {key!r}, which is not a TrainConfig recipe field")
            kind = _base_type(key)
            origin = typing.get_origin(kind) or kind
            if not isinstance(value, origin) or (origin is float and isinstance(value, bool)):
                raise TypeError(f"recipe of {name!r}: {key}={value!r} is not {hints[key]}")
        needed = {n for n, f in recipe_fields.items()
                  if not f.metadata["models"] or name in f.metadata["models"]}
        missing = needed - set(entry.recipe)
        if missing:
            raise TypeError(f"recipe of {name!r} does not set {sorted(missing)}")


check_recipes()
