"""The small-data adjustment: recipe values adapted to the number of training images.

Only options not given on the command line change, and on CIFAR-sized data none does. Its
constants are each recipe's `SmallData` (training/recipes.py).
"""

from __future__ import annotations

import math

from cifarlab.training.optim import SGD_STEPPED
from cifarlab.training.recipes import SmallData

RULE = (
    "Small data: the batch size, learning rate, epochs, BatchNorm momentum and validation share "
    "adapt to the number of training images. (1) Validation share, when the source has no val "
    "split: the recipe's, raised to hold 5 images per class, at most 20%. (2) Batch size: the "
    "recipe's, lowered to the largest power of two with at least 4 steps per epoch (at least 8). "
    "(3) With a batch below the recipe's: SGD learning rate scaled by batch/recipe batch (the "
    "linear scaling rule), and epochs raised so the run takes at least 300 steps (at most 400 "
    "epochs). (4) BatchNorm momentum: at most 1 - 10/(steps of the run), so the statistics used "
    "at test time average over the last tenth of the run. Transfer recipes (--from) keep their "
    "learning rate and always take 300 steps. The values chosen are printed and recorded.")


def _validation_share(given: float | None, recipe_share: float, n: int, num_classes: int,
                      rule: SmallData, chosen: dict) -> float:
    share = given if given is not None else recipe_share
    if given is None and n and rule.val_images_per_class:
        wanted = min(rule.max_val_share, rule.val_images_per_class * num_classes / n)
        if wanted > share:
            share = round(wanted, 4)
            chosen["val_fraction"] = (share, f"{rule.val_images_per_class} images per class, at most "
                                             f"{rule.max_val_share:.0%}")
    return share


def _batch(given: int | None, recipe_batch: int, n: int, rule: SmallData, chosen: dict) -> int:
    batch = given or recipe_batch
    if given is None and n < rule.min_steps_per_epoch * batch:
        batch = max(min(rule.smallest_batch, n),
                    2 ** int(math.log2(max(1, n // rule.min_steps_per_epoch))))
        if batch < recipe_batch:
            chosen["batch_size"] = (batch, f"{n} images: at least {rule.min_steps_per_epoch} "
                                           "steps per epoch")
    return batch


def small_data_defaults(config, train_images: int, num_classes: int,
                        val_from_train: bool) -> dict[str, tuple[object, str]]:
    """{field: (value, why)} for the recipe fields the adjustment changes.

    config: the unresolved TrainConfig (None = not set by hand); train_images: the images of the
    train split before any validation share is taken from it."""
    recipe = config.recipe_entry()
    values, rule = recipe.values, recipe.small_data
    chosen: dict[str, tuple[object, str]] = {}
    n = train_images
    if val_from_train:
        share = _validation_share(config.val_fraction, values["val_fraction"], n, num_classes,
                                  rule, chosen)
        if share > 0:
            n -= math.ceil(share * n)  # what with_validation leaves (sklearn rounds the test share up)
    if config.limit_train:
        n = min(n, config.limit_train)
    batch = _batch(config.batch_size, values["batch_size"], n, rule, chosen)
    lowered = batch < values["batch_size"]
    optimizer = config.optimizer or values["optimizer"]
    if lowered and rule.scale_lr and config.lr is None and optimizer in SGD_STEPPED:
        lr = round(values["lr"] * batch / values["batch_size"], 6)
        chosen["lr"] = (lr, f"recipe {values['lr']} x {batch}/{values['batch_size']}")
    steps = max(1, n // batch)
    epochs = config.epochs or values["epochs"]
    if (lowered or rule.min_steps_at_any_batch) and config.epochs is None and values["epochs"] \
            and epochs * steps < rule.min_steps:
        epochs = min(rule.max_epochs, math.ceil(rule.min_steps / steps))
        chosen["epochs"] = (epochs, f"{steps} steps per epoch: at least {rule.min_steps} steps")
    if rule.warmup_share is not None and config.warmup_epochs is None and epochs:
        chosen["warmup_epochs"] = (round(rule.warmup_share * epochs, 6),
                                   f"{rule.warmup_share:.0%} of {epochs} epochs")
    if rule.bn_windows and config.bn_momentum is None:
        total = steps * epochs
        cap = round(max(0.5, 1 - rule.bn_windows / total), 4)
        if cap < 0.99:  # Keras' default, the highest any registered model uses
            chosen["bn_momentum"] = (cap, f"at most 1 - {rule.bn_windows}/{total} steps")
    return chosen
