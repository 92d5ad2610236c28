"""Every training recipe, by name, in one place (as timm's default configs, airbench's `hyp`).

A recipe holds values of `TrainConfig`'s recipe fields; it may inherit from another and override
fields. `cifarlab train --recipe NAME` picks one (default: the recipe named like `--model`), any
flag given by hand wins, and `cifarlab train --print-config` shows where each value came from.
The small-data adjustment (`SmallData`) is declared here too: its constants are part of a recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cifarlab.errors import CifarlabError
from cifarlab.options import choice_error


@dataclass(frozen=True)
class SmallData:
    """How a recipe adapts to few training images (applied by `training.small_data`)."""

    min_steps_per_epoch: int = 4     # the batch is lowered until an epoch has this many steps...
    smallest_batch: int = 8          # ...but not below this
    min_steps: int = 300             # a run whose batch was lowered takes at least this many steps...
    max_epochs: int = 400            # ...within at most this many epochs
    val_images_per_class: int = 5    # validation share raised to hold this many per class...
    max_val_share: float = 0.2       # ...but never above this share of the training images
    bn_windows: int | None = 10      # BatchNorm momentum at most 1 - this/(steps of the run)
    scale_lr: bool = True            # SGD learning rate x batch/recipe batch (linear scaling rule)
    min_steps_at_any_batch: bool = False  # epochs raised to min_steps even at the recipe's batch
    warmup_share: float | None = None     # warm-up epochs set to this share of the chosen epochs


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    model: str | None                # the architecture it trains; None: the --from model's
    values: dict = field(default_factory=dict)
    small_data: SmallData = SmallData()
    transfer: bool = False           # starts from a trained model (--from) with a new head
    continues: bool = False          # goes on training a --from model of its network and classes


_RECIPES: dict[str, Recipe] = {}


def declare(name: str, summary: str, *, base: str | None = None, model: str | None = None,
            small_data: SmallData | None = None, transfer: bool | None = None,
            continues: bool = False, **values) -> Recipe:
    """Register a recipe; with `base`, start from that recipe's values and override."""
    parent = _RECIPES[base] if base else None
    recipe = Recipe(
        name, summary, model if model or not parent else parent.model,
        {**(parent.values if parent else {}), **values},
        small_data or (parent.small_data if parent else SmallData()),
        transfer if transfer is not None else bool(parent and parent.transfer), continues)
    _RECIPES[name] = recipe
    return recipe


# airbench94's recipe (Keller Jordan), restated for a Keras mean loss. Each recipe lists only what
# its run uses: a field it does not set is off (training/config.py declares each field's off value).
declare(
    "fast-sgd", "airbench94's recipe: 10 epochs of the `fast` network (models/fast.py) with SGD",
    model="fast",
    epochs=10, batch_size=1024,
    widths=(64, 256, 256),   # airbench94's widths
    optimizer="sgd", lr=1.5,  # airbench's 11.5 per 1024 examples on a summed loss = 1.5 on a mean
    momentum=0.85,
    weight_decay=0.0089,     # decoupled: the same 1.3%-per-step shrink at peak as airbench's L2
    bias_scaler=64.0,        # BatchNorm biases at 64x the learning rate (training/optim.py)
    lookahead_steps=5,       # lookahead weight averaging, ramping in over the run
    schedule="triangle",     # linear warm-up over 23% of the steps, then linear decay
    label_smoothing=0.2,     # soft targets: better accuracy in few epochs...
    calibrate=True,          # ...but under-confident: a temperature fitted on val fixes that
    flip=True, translate=2,  # alternating flip + 2-pixel translation (training/pipeline.py)
    val_fraction=0.02,       # 1,000 CIFAR images: enough to calibrate and watch
    whitening_eps=5e-4,      # airbench's; larger values damp the noise-amplifying directions
)

# airbench94_muon's optimizer on airbench94's recipe: the same accuracy in 7 epochs instead of 10.
declare(
    "fast", "airbench94_muon's way: 7 epochs of the `fast` network, Muon on the conv filters",
    base="fast-sgd",
    optimizer="muon",        # Muon steps for the 3x3 filters, SGD for the rest (training/optim.py)
    schedule="linear",       # Muon needs no warm-up: straight down from the peak
    epochs=7,
)

# Robust to camera-like corruptions.
declare(
    "fast-robust", "`fast-sgd` for 18 epochs with noise, contrast and blur augmentation and a damped "
    "whitening stem", base="fast-sgd",
    epochs=18,
    noise=0.1, contrast=0.3, blur=0.3,  # camera-like corruptions, learned (training/pipeline.py)
    whitening_eps=0.1,       # the stem amplifies pixel noise far less (bench/whitening_noise.py)
)

# The shipped model's parent (scripts/ship_model.sh): the robust recipe on a wider network.
declare(
    "fast-robust-wide", "`fast-robust` on a 128/384/384 network for 24 epochs: more capacity for "
    "the clean and corrupted images at once: the shipped model's parent (`camera-tune`)", base="fast-robust",
    widths=(128, 384, 384),  # 2.5x the convolution work of 64/256/256
    epochs=24,
)

# What a camera sees (docs/results.md#real-photos): real photos of none of the classes as outliers,
# scored by energy. Train it on data that holds real photos of the classes too, or it learns the
# photo source instead of "none of my classes".
declare(
    "camera", "`fast` with outlier exposure from real photos (--outliers-data, required) and the "
    "energy score: 'unknown' for the real things that are none of the classes", base="fast",
    outliers=0.2, outlier_kind="real",  # a fifth of each batch: outlier photos, uniform target
    ood_score="energy",      # the best score after outlier exposure on real photos
    ood_mirror=True,         # ... averaged over the image and its mirror image
)

# The camera recipe on the wide, corruption-robust network: better on real photos than the shipped
# model, short of it on the corruptions (docs/results.md#the-camera-wide-model-measured-not-shipped).
declare(
    "camera-wide", "`camera` on the 128/384/384 network with `fast-robust`'s corruptions for 36 "
    "epochs, scored on one view", base="camera",
    widths=(128, 384, 384),
    noise=0.1, contrast=0.3, blur=0.3, whitening_eps=0.1,
    epochs=36,               # chosen against runs of 20 and 28 epochs (docs/results.md)
    ood_mirror=False,        # a second view doubles the wide network's per-frame cost
)

# The shipped model (scripts/ship_model.sh): `camera-wide`'s training continued from a trained
# `fast-robust-wide` model, which keeps its corruption robustness (docs/results.md#the-shipped-model).
declare(
    "camera-tune", "`camera-wide` as a fine-tune: 8 epochs of SGD at a tenth of `fast-robust-wide`'s "
    "learning rate from a trained fast-robust-wide model (--from, required), then 30% of its "
    "weights mixed back in", base="camera-wide",
    continues=True,
    optimizer="sgd", schedule="triangle",  # the parent's optimizer, warmed up again
    lr=0.15, epochs=8,
    keep_parent=0.3,         # chosen against 0 and 0.5 on real photos and corruptions (docs/results.md)
)

# The network and recipe the project was first described with.
declare(
    "baseline", "conv + batch norm + dropout + dense softmax; Adam, early stopping, LR reduction",
    model="baseline",
    epochs=60, batch_size=64, lr=1e-3, optimizer="adam", schedule="plateau",
    early_stopping_patience=8, plateau_patience=3,
    val_fraction=0.1,
    dropout=0.25,
)

# --from MODEL --transfer head: a new head fitted on features computed once (seconds; live `t`).
declare(
    "head", "learn new classes from a trained model: fit only a new head (logistic regression on "
    "the frozen features of each image and its mirror image)", transfer=True,
    epochs=0, batch_size=32, lr=0.005, optimizer="sgd", schedule="warmup-cosine",
    label_smoothing=0.1, calibrate=True, flip=True, translate=2,
    val_fraction=0.0,
    freeze_batchnorm=True,
    small_data=SmallData(val_images_per_class=0, bn_windows=None),
)

# --from MODEL --transfer finetune (the default): that head, then 300 steps of the whole network.
declare(
    "finetune", "learn new classes from a trained model: the head above, then the whole network "
    "for 300 steps at a small learning rate (bench/results/transfer.json)", base="head",
    epochs=10,               # at least; raised to 300 steps (SmallData below)
    lr=0.005,
    clip_norm=3.0,           # with BatchNorm frozen the net is not scale-invariant: bounded steps
    freeze_batchnorm=True,   # batches of 8-32 new images give noisy statistics; keep the parent's
    small_data=SmallData(max_epochs=100, val_images_per_class=0, bn_windows=None, scale_lr=False,
                         min_steps_at_any_batch=True, warmup_share=0.1),
)

TRANSFER_MODES = ("head", "finetune")
DEFAULT_TRANSFER = "finetune"  # more accurate than head (docs/results.md#learning-new-classes)


def recipes() -> dict[str, Recipe]:
    return dict(_RECIPES)


def get_recipe(name: str) -> Recipe:
    if name in _RECIPES:
        return _RECIPES[name]
    raise CifarlabError(choice_error(f"unknown recipe {name!r}", name, _RECIPES))
