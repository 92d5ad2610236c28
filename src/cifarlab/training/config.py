"""`TrainConfig`: every training option, declared once with its help text and choices.

The `cifarlab train` command line and the benchmark scripts are generated from these fields
(`cifarlab.options`). Recipe fields default to None, meaning "the recipe's value"
(training/recipes.py); `resolved()` fills them in, `sources()` says where each value came from
(`cifarlab train --print-config`). Fields marked with `models=` are architecture options that
only some models take.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import typing
from dataclasses import dataclass, fields, replace
from pathlib import Path

from cifarlab import options
from cifarlab.data.source import DATA_OPTIONS, DataSource
from cifarlab.errors import CifarlabError
from cifarlab.models.layers import LAYER_SETS
from cifarlab.models.openset import DEFAULT_SCORE, SCORES
from cifarlab.models.registry import get_entry, model_names
from cifarlab.options import between, option
from cifarlab.training.pipeline import OUTLIER_KINDS
from cifarlab.training.recipes import DEFAULT_TRANSFER, TRANSFER_MODES, Recipe, get_recipe, recipes
from cifarlab.training.run_folder import default_out
from cifarlab.training.small_data import RULE

STRATEGIES = ("auto", "one", "mirrored", "multiworker")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
OPTIMIZERS = ("sgd", "muon", "adam")
SCHEDULES = ("triangle", "linear", "warmup-cosine", "constant", "plateau")
MODEL_NAMES = tuple(model_names())
RECIPE_NAMES = tuple(recipes())
LAYER_SET_NAMES = tuple(LAYER_SETS)
RECIPE_GROUP = "recipe (default: the recipe's value, shown per recipe in brackets)"


NEEDED = object()  # a recipe field every recipe (of the models it applies to) must set


def recipe_field(help: str, unset=NEEDED, **kwargs):
    """A field whose value comes from the recipe; `unset`: its value when the recipe does not set
    it (the technique off), so a recipe lists only what its run uses."""
    return option(None, help, recipe=True, unset=unset, group=RECIPE_GROUP,
                  models=kwargs.pop("models", None), **kwargs)


@dataclass
class TrainConfig(DataSource):
    model: str | None = option(None, "architecture (default: the recipe's; fast)", choices=MODEL_NAMES)
    recipe: str | None = option(None, "named recipe (training/recipes.py; default: the one named like "
                                      "--model, or with --from the --transfer mode)",
                                choices=RECIPE_NAMES)
    out: Path | None = option(None, "run folder for model.keras, checkpoints and logs (default runs/RECIPE)")
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
    quiet: bool = option(False, "no progress bar, nothing printed", cli=False)
    from_model: str | None = option(
        None, "learn these classes from a trained cifarlab model: its backbone is kept, a new head "
              "is made for the classes of --data, and the data is read at the model's input size; "
              "with a --recipe that trains from scratch, that recipe's network starts from every "
              "weight of MODEL instead (same architecture, widths and classes); "
              "--from alone = $CIFARLAB_MODEL or the shipped models/cifar10-fast.keras",
        flag="from", const="", metavar="MODEL")
    transfer: str | None = option(
        None, "with --from: head = fit only a new head on features computed once (seconds; for a "
              "live camera); finetune = start from that head, then train the whole network 300 "
              f"steps at a small learning rate (default: {DEFAULT_TRANSFER}); the recipes of the "
              "same names", choices=TRANSFER_MODES)
    bn_momentum: float | None = option(
        None, "BatchNorm momentum (Keras: the weight of the old statistics) for every BatchNorm "
              "layer (default: the model's, lowered for small data, see the recipe group)",
        metavar="M")
    ood_score: str | None = recipe_field("the model's out-of-distribution score for 'none of my "
                                         "classes' (models/openset.py), fitted after training; none "
                                         "= no open-set output", choices=(*SCORES, "none"),
                                         unset=DEFAULT_SCORE)
    ood_mirror: bool | None = recipe_field("the out-of-distribution score averaged over each image and "
                                           "its mirror image: steadier on real photos, at a second "
                                           "pass of the network per image", unset=False)
    command: str = option("", "the command line, recorded in the model", cli=False)

    epochs: int | None = recipe_field("epochs (baseline: maximum; early stopping may end sooner)")
    batch_size: int | None = recipe_field("global batch size")
    lr: float | None = recipe_field("(peak) learning rate, for the mean loss of one batch")
    optimizer: str | None = recipe_field("optimizer (muon: Muon on the conv filters, SGD on the rest)",
                                         choices=OPTIMIZERS)
    muon_lr: float | None = recipe_field("muon: the conv filters' (peak) learning rate (airbench94_muon's)", unset=0.24)
    muon_momentum: float | None = recipe_field("muon: the conv filters' Nesterov momentum", unset=0.6)
    momentum: float | None = recipe_field("SGD Nesterov momentum", unset=0.9)
    bias_scaler: float | None = recipe_field("SGD: learning-rate multiplier of BatchNorm biases", unset=1.0)
    lookahead_steps: int | None = recipe_field("SGD: reset weights to their running average every N steps (0 = off)", unset=0)
    schedule: str | None = recipe_field("learning-rate schedule", choices=SCHEDULES)
    warmup_epochs: float | None = recipe_field("warm-up epochs (warmup-cosine schedule)", unset=0.0)
    weight_decay: float | None = recipe_field("decoupled weight decay: each step shrinks weights by lr x this", unset=0.0)
    clip_norm: float | None = recipe_field("clip each step's gradients to this global norm: one bad "
                                           "batch cannot throw the weights far (0 = off)", unset=0.0)
    label_smoothing: float | None = recipe_field("label smoothing", unset=0.0)
    keep_parent: float | None = recipe_field(
        "with --from and a recipe that goes on training: the trained weights are mixed with the "
        "parent's, this share of the parent's, before calibration (weight-space ensembling, "
        "WiSE-FT: keeps much of the parent's robustness; 0 = off)",
        check=between(0, 1, open_high=True), unset=0.0)
    calibrate: bool | None = recipe_field("fit a softmax temperature on the validation split", unset=False)
    val_fraction: float | None = recipe_field("fraction of train held out as validation (if the source has no val split)")
    early_stopping_patience: int | None = recipe_field("epochs without a better val loss before stopping (0 = off)", unset=0)
    plateau_patience: int | None = recipe_field("plateau schedule: epochs without a better val loss before lowering the LR", unset=0)
    plateau_factor: float | None = recipe_field("plateau schedule: LR multiplier", unset=0.5)
    freeze_batchnorm: bool | None = recipe_field("BatchNorm layers in inference mode with frozen "
                                           "statistics and offsets while training", unset=False)
    flip: bool | None = recipe_field("horizontal flips: each image mirrored in every other epoch, starting "
                               "from a random half", unset=False)
    translate: int | None = recipe_field("random translation in pixels (0 = off)", unset=0)
    cutout: int | None = recipe_field("side in pixels of a square painted over each training image with the "
                                "mean colour (0 = off)", unset=0)
    zoom: float | None = recipe_field("real photos: each image scaled about a random point by a box "
                                      "of side U(1 - this, 1 + this) x the image's, aspect jittered "
                                      "(0 = off)", check=between(0, 0.9), unset=0.0)
    colour: float | None = recipe_field("real photos: each image's saturation and brightness scaled by "
                                        "U(1 - this, 1 + this) (0 = off)", check=between(0, 1), unset=0.0)
    noise: float | None = recipe_field("robustness: Gaussian pixel noise on half the images, sigma uniform "
                                 "in [0, this] on the 0..1 scale (0 = off)", check=between(0, 1), unset=0.0)
    contrast: float | None = recipe_field("robustness: fraction of images whose contrast is scaled by a "
                                    "factor uniform in [0.15, 1] about their mean (0 = off)",
                                          check=between(0, 1), unset=0.0)
    blur: float | None = recipe_field("robustness: fraction of images blurred by a Gaussian of sigma "
                                "uniform in [0.3, 1] pixels at 32 px, scaled with size (0 = off)",
                                      check=between(0, 1), unset=0.0)
    outliers: float | None = recipe_field("open set: share of each batch replaced by outliers with a "
                                          "uniform target (outlier exposure; 0 = off): images of "
                                          "--outliers-data, else synthetic ones (--outlier-kind)",
                                          check=between(0, 1, open_high=True), unset=0.0)
    outliers_data: str | None = recipe_field(
        "open set: real images of things that are none of the training classes (any --data source: "
        "a folder, cifar100, ...; every split is used), drawn for the --outliers share of each "
        "batch; a class name shared with --data is an error", metavar="SOURCE", unset="")
    outlier_kind: str | None = recipe_field("open set: what --outliers makes of an image: tiles = its "
                                            "4-pixel tiles shuffled (image side divisible by 8); "
                                            "mixup = blended half and half with an image of another "
                                            "class; cutmix = a square of one pasted in; real = "
                                            "images of --outliers-data (which it requires)",
                                            choices=OUTLIER_KINDS, unset="tiles")
    energy_margin: float | None = recipe_field(
        "open set: weight of the energy-margin loss (training/loss.py; Liu et al., 2020) on the "
        "images with the uniform target of --outliers: their energy is pushed above, the known "
        "images' below a margin (0 = off: outliers get the uniform-target cross-entropy)",
        check=between(0, 10), unset=0.0)
    logit_norm: float | None = recipe_field("open set: LogitNorm temperature T (training/loss.py): the "
                                            "loss sees the logits scaled to norm 1/T (0 = plain "
                                            "cross-entropy; the paper's CIFAR-10 T: 0.04)", unset=0.0)
    widths: tuple[int, ...] | None = recipe_field("channels of the three conv blocks", models=("fast",),
                                            metavar="A,B,C")
    whitening_eps: float | None = recipe_field("added to the patch variances before whitening; larger "
                                         "values amplify high-frequency noise less", models=("fast",))
    layers: str | None = recipe_field("normalisation + activation layers (models/layers.py): fused = "
                                      "fused BatchNorm + GELU, keras = Keras's BatchNormalization + "
                                      "GELU layers, fused-relu, fused-gelu-sigmoid (baseline: "
                                      "the BatchNorm only)", choices=LAYER_SET_NAMES,
                                      models=("fast", "baseline"), unset="fused")
    dropout: float | None = recipe_field("dropout rate of the first block (later blocks +0.05, +0.1)",
                                   models=("baseline",))

    def __post_init__(self) -> None:
        if not self.command:
            self.command = shlex.join(["cifarlab", *sys.argv[1:]])
        super().__post_init__()

    @property
    def verbose(self) -> int:
        """Keras's verbosity: a progress bar on a terminal, one line per epoch in a log file."""
        return 0 if self.quiet else (1 if sys.stdout.isatty() else 2)

    @property
    def is_transfer(self) -> bool:
        return self.from_model is not None or (self.recipe is not None and get_recipe(self.recipe).transfer)

    def recipe_entry(self) -> Recipe:
        """The recipe this run takes its defaults from."""
        if self.recipe is not None:
            return get_recipe(self.recipe)
        if self.from_model is not None:
            return get_recipe(self.transfer or DEFAULT_TRANSFER)
        return get_recipe(self.model or "fast")

    def check(self) -> None:
        if self.transfer is not None and self.from_model is None:
            raise CifarlabError("--transfer applies with --from MODEL only; add --from or drop --transfer")
        entry = self.recipe_entry()
        if entry.continues and self.from_model is None:
            raise CifarlabError(f"--recipe {entry.name} goes on training a model; add --from MODEL "
                                f"(a {entry.model} model with the widths {_shown(entry.values['widths'])})")
        if self.transfer is not None and self.recipe is not None and self.recipe != self.transfer:
            raise CifarlabError(f"--transfer {self.transfer} and --recipe {self.recipe} disagree; give one")
        if entry.model and self.model and self.model != entry.model:
            raise CifarlabError(f"--recipe {entry.name} trains the {entry.model} model, not "
                                f"--model {self.model}; drop one of them")

    def resolved(self, architecture: str | None = None) -> TrainConfig:
        """A copy with every recipe field filled from the recipe, checked. `architecture`: the
        --from model's (transfer recipes train the parent's architecture)."""
        entry = self.recipe_entry()
        model = self.model or entry.model or architecture or "fast"
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(self):
            allowed = f.metadata.get("models")
            if allowed and model not in allowed and values[f.name] is not None:
                raise CifarlabError(f"--{options.flag_name(f)} applies to {' and '.join(allowed)} "
                                    f"only, not {model}; drop it")
            if f.metadata.get("recipe") and values[f.name] is None:
                values[f.name] = entry.values.get(f.name, _unset(f))
        values.update(model=model, recipe=entry.name, out=Path(values["out"] or default_out(entry.name)))
        if entry.transfer:
            values.update(transfer=entry.name, from_model=self.from_model if self.from_model is not None else "")
        return replace(self, **values)

    def sources(self, chosen: dict | None = None) -> dict[str, str]:
        """Where each value of `self.resolved()` comes from: flag, recipe NAME, small-data rule
        (why) or default."""
        entry, found = self.recipe_entry(), {}
        for f in fields(self):
            if f.name in (chosen or {}):
                found[f.name] = f"small-data rule ({chosen[f.name][1]})"
            elif getattr(self, f.name) is not None and getattr(self, f.name) != f.default:
                found[f.name] = "flag"
            elif f.metadata.get("recipe") and f.name in entry.values:
                found[f.name] = f"recipe {entry.name}"
            elif f.name == "model" and entry.transfer:
                found[f.name] = "the --from model's architecture"
            elif f.name in ("model", "out") or (f.name == "transfer" and entry.transfer):
                found[f.name] = f"recipe {entry.name}"
            else:
                found[f.name] = "default"
        return found

    def model_options(self) -> dict:
        """The builder keyword arguments this model registered as its own options."""
        return {name: getattr(self, name) for name in get_entry(self.model).options}


def _unset(f):
    """A recipe field's value when the recipe does not set it (None: not used by that recipe)."""
    unset = f.metadata.get("unset", NEEDED)
    return None if unset is NEEDED else unset


def _recipe_defaults(f) -> str:
    if not f.metadata.get("recipe"):
        return ""
    unset = _unset(f)
    value = {name: r.values.get(f.name, unset) for name, r in recipes().items()}
    shown = [f"{name}: {_shown(v)}" for name, v in value.items()
             if v is not None and (name == "fast" or v != value["fast"])]
    return f" [{'; '.join(shown)}]" if shown else ""


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One command-line option per TrainConfig field (except those marked cli=False)."""
    recipe_defaults = {f.name: None for f in fields(TrainConfig) if f.metadata.get("recipe")}
    parser.add_argument_group(RECIPE_GROUP, RULE)
    options.add_arguments(parser, TrainConfig, skip=DATA_OPTIONS, defaults=recipe_defaults,
                          help_suffix=_recipe_defaults)


def from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """The TrainConfig of parsed arguments (fields missing from `args` keep their defaults)."""
    return options.from_args(TrainConfig, args, **overrides)


def print_config(config: TrainConfig, chosen: dict | None = None, architecture: str | None = None) -> str:
    """The table of `--print-config`: `config` with the small-data values `chosen` applied."""
    resolved = replace(config, **{k: v for k, (v, _) in (chosen or {}).items()}).resolved(architecture)
    sources = config.sources(chosen)
    rows = [(flag, value, sources[name]) for (flag, value, _), name in
            zip(options.describe(resolved), (f.name for f in fields(resolved)))
            if name not in ("command", "quiet", "no_cache")]
    return options.format_description(rows)


def check_recipes() -> None:
    """Every recipe sets every recipe field its model needs (those without an `unset` value), each
    with a value of its type."""
    hints = typing.get_type_hints(TrainConfig)
    recipe_fields = {f.name: f for f in fields(TrainConfig) if f.metadata.get("recipe")}
    for name, entry in recipes().items():
        for key, value in entry.values.items():
            if key not in recipe_fields:
                raise TypeError(f"recipe {name!r} sets {key!r}, which is not a TrainConfig recipe field")
            kind = options.base_type(TrainConfig, key)
            origin = typing.get_origin(kind) or kind
            if not isinstance(value, origin) or (origin is float and isinstance(value, bool)):
                raise TypeError(f"recipe {name!r}: {key}={value!r} is not {hints[key]}")
        needed = {n for n, f in recipe_fields.items() if f.metadata.get("unset", NEEDED) is NEEDED
                  and (not f.metadata.get("models") or (entry.model and entry.model in f.metadata["models"]))}
        missing = needed - set(entry.values)
        if missing:
            raise TypeError(f"recipe {name!r} does not set {sorted(missing)}")
