"""`train(config)`: the one training path. It wires data, the network's start (from scratch or
`--from` a trained model: training/start.py), optimizer, schedule, callbacks and logging into one
run, and writes the run folder (training/run_folder.py): model.keras (with metadata),
checkpoint/ (resume), log.csv, tensorboard/, curves.png, summary.json.

Options the user did not set come from the recipe (training/recipes.py) and adapt to small data
(training/small_data.py; the values chosen are recorded and reused on resume).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from cifarlab.atomic import write_json_atomic
from cifarlab.data import Dataset, Split, load_dataset, with_validation
from cifarlab.errors import CifarlabError
from cifarlab.models.io import save_model_file
from cifarlab.training import run_folder
from cifarlab.training.batchnorm import frozen_batchnorm, set_bn_momentum
from cifarlab.training.calibration import MIN_CALIBRATION_IMAGES, fit_temperature, probability_metrics
from cifarlab.training.callbacks import make_callbacks, validation_freq
from cifarlab.training.checkpoint import read_state
from cifarlab.training.config import TrainConfig
from cifarlab.training.curves import CURVES_FILE
from cifarlab.training.distribute import (
    fix_keras_multiworker_build,
    is_chief,
    make_strategy,
    same_on_all_workers,
    shard_by_data,
)
from cifarlab.training.loss import make_loss
from cifarlab.training.openset import add_open_set
from cifarlab.training.optim import make_optimizer
from cifarlab.training.pipeline import Augment, eval_dataset, train_dataset
from cifarlab.training.precision import dtype_policy
from cifarlab.training.rollback import LR_FACTOR, MAX_ROLLBACKS, with_scaled_learning_rate
from cifarlab.training.rollback import describe as describe_rollback
from cifarlab.training.small_data import small_data_defaults
from cifarlab.training.start import (Parent, check_continues, check_image_size, from_parent, from_scratch,
                                     from_weights, open_parent)

log = logging.getLogger(__name__)
IMBALANCE = 1.5  # classes are weighted when the largest has more than this x the smallest's images


def subset(split: Split, n: int | None, seed: int) -> Split:
    if not n or n >= len(split):
        return split
    index = np.sort(np.random.default_rng(seed).permutation(len(split))[:n])
    return split.select(index)


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A run's every option resolved, with what it was resolved from."""

    cfg: TrainConfig               # every field filled in
    chosen: dict                   # {field: (value, why)} set by the small-data rule
    parent: Parent | None          # the --from model
    data: Dataset | None           # the dataset (None: resolved without data)


def resolve(config: TrainConfig, dataset: Dataset | None = None, with_data: bool = True) -> Resolved:
    """Each option's value, from (first wins) the flag, the small-data rule for this dataset (or
    the choices recorded in the run folder when resuming), the recipe, the field's off value;
    transfer recipes take the --from model's architecture. `dataset`: arrays instead of reading
    `config.data`; with_data=False: without the small-data rule (nothing is read)."""
    parent = open_parent(config.resolved().from_model) if config.is_transfer else None
    architecture = parent.meta.model if parent else None
    if parent:
        check_image_size(config.image_size, parent)
    base = config.resolved(architecture)
    if not with_data:
        return Resolved(base, {}, parent, None)
    data = run_folder.load_data(base, dataset, image_size=parent.side if parent else None)
    if parent and data.image_size != parent.meta.input_size:
        raise CifarlabError(f"the data's images are {data.image_size[0]}x{data.image_size[1]}, the "
                            f"model's input {parent.side}x{parent.side}; read them at the model's size")
    chosen = run_folder.saved_choices(base.out) if run_folder.is_resuming(base.out) else None
    if chosen is None:
        chosen = small_data_defaults(config, len(data.split("train")), data.num_classes,
                                     val_from_train="val" not in data.splits)
    cfg = dataclasses.replace(config, **{k: v for k, (v, _) in chosen.items()}).resolved(architecture)
    return Resolved(cfg, chosen, parent, data)


def split_data(cfg: TrainConfig, data: Dataset) -> Dataset:
    """Carve the validation share (if the source has no val split) and apply --limit-train."""
    data = with_validation(data, cfg.val_fraction, cfg.seed)
    data.splits["train"] = subset(data.split("train"), cfg.limit_train, cfg.seed)
    return data


def describe_choices(chosen: dict, train_images: int) -> str:
    shown = [f"{key.replace('_', ' ')} {value} ({why})" for key, (value, why) in chosen.items()]
    return f"small data ({train_images} training images): " + "; ".join(shown)


def class_balance(data: Dataset) -> tuple[str, dict | None]:
    """A line with the training images per class, and balanced class weights when the classes
    are imbalanced (the largest has more than IMBALANCE x the images of the smallest)."""
    counts = np.bincount(data.split("train").labels, minlength=data.num_classes)
    present = counts[counts > 0]
    weights = data.class_weights() if present.max() > IMBALANCE * present.min() else None
    pairs = [f"{name} {n}" for name, n in zip(data.class_names, counts)]
    if len(pairs) > 20:
        pairs = [f"{len(pairs)} classes, {present.min()} to {present.max()} each"]
    line = "training images per class: " + ", ".join(pairs)
    if weights:
        line += (f"; imbalanced, so classes are weighted (balanced: "
                 f"{min(weights.values()):.2f} to {max(weights.values()):.2f})")
    return line, weights


def check_augmentation(cfg: TrainConfig, side: int) -> None:
    for name, pixels in (("translate", cfg.translate), ("cutout", cfg.cutout)):
        if not 0 <= pixels < side:
            raise CifarlabError(f"--{name} {pixels} must be between 0 and {side - 1} for {side}-pixel images")
    if cfg.outliers and cfg.outlier_kind == "real" and not cfg.outliers_data:
        raise CifarlabError(f"recipe {cfg.recipe} learns 'none of my classes' from real photos: add "
                            "--outliers-data SOURCE (a folder of images that are none of your "
                            "classes, or cifar100), or --outliers 0")
    if cfg.outliers_data and not cfg.outliers:
        raise CifarlabError(f"--outliers-data {cfg.outliers_data} needs the share of each batch to "
                            "draw from it: add --outliers SHARE (e.g. 0.2)")
    if cfg.energy_margin and cfg.logit_norm:
        raise CifarlabError(f"--energy-margin {cfg.energy_margin} and --logit-norm {cfg.logit_norm} are "
                            "two training losses: give one of them")
    if cfg.energy_margin and not cfg.outliers:
        raise CifarlabError(f"--energy-margin {cfg.energy_margin} pushes the energy of outliers up: add "
                            "--outliers SHARE (with --outliers-data SOURCE for real photos)")


def outlier_images(cfg: TrainConfig, data: Dataset) -> np.ndarray | None:
    """Every image of --outliers-data, read at the training size; None without it."""
    if not cfg.outliers_data:
        return None
    outliers = load_dataset(cfg.outliers_data, image_size=data.image_size[0], labels=cfg.labels,
                            cache_dir=cfg.cache_dir, use_cache=cfg.use_cache, progress=not cfg.quiet)
    shared = sorted(set(outliers.class_names) & set(data.class_names))
    if shared:
        raise CifarlabError(f"--outliers-data {cfg.outliers_data} has classes that are training "
                            f"classes too: {', '.join(shared)}; outliers must be none of them, so "
                            "remove those folders from it")
    images = np.concatenate([np.asarray(split.images) for split in outliers.splits.values()])
    log.info(f"outlier exposure: {len(images)} images of {outliers.num_classes} classes from "
             f"{cfg.outliers_data}, {cfg.outliers:.0%} of each batch")
    return images


def train(config: TrainConfig, extra_callbacks: list | None = None,
          dataset: Dataset | None = None) -> dict:
    """Train (or resume) one run and write its outputs; returns the summary dict.

    dataset: use these arrays instead of reading `config.data` (benchmarks)."""
    run = resolve(config, dataset)
    cfg, chosen, parent, data = run.cfg, run.chosen, run.parent, run.data
    data = split_data(cfg, data)
    check_augmentation(cfg, min(data.image_size))
    if parent and not cfg.transfer:
        check_continues(cfg, parent, tuple(data.class_names))
    elif cfg.keep_parent:
        raise CifarlabError(f"--keep-parent {cfg.keep_parent} mixes in the weights of the model training "
                            "went on from: add --from MODEL with a recipe that trains from scratch")
    ckpt_dir, state = run_folder.prepare_out(cfg)
    if is_chief() and state is None:  # a fresh run records its split and choices for a resume
        run_folder.record_start(cfg, data, chosen)
    shown = {k: v for k, v in chosen.items() if k != "bn_momentum"}  # printed once the model shows it
    if shown:
        log.info(describe_choices(shown, len(data.split("train"))))
    if parent:
        log.info(f"learning {data.num_classes} classes from {parent.path} ({parent.meta.model}, "
              f"{parent.side}x{parent.side}), recipe {cfg.recipe}")
    try:
        return _train(cfg, data, ckpt_dir, state, extra_callbacks, chosen, parent,
                      bn_by_hand=config.bn_momentum is not None)
    finally:
        if not is_chief():
            shutil.rmtree(ckpt_dir, ignore_errors=True)


def _train(cfg: TrainConfig, data: Dataset, ckpt_dir: Path, state: dict | None,
           extra_callbacks: list | None, chosen: dict, parent: Parent | None,
           bn_by_hand: bool = False) -> dict:
    train_split = data.split("train")
    val_split = data.splits.get("val")
    if val_split is not None and len(val_split) == 0:
        val_split = None
    keras.utils.set_random_seed(cfg.seed)
    strategy = make_strategy(cfg.strategy)
    if len(train_split) < cfg.batch_size:
        raise CifarlabError(f"{len(train_split)} training images is fewer than one batch of "
                            f"{cfg.batch_size}; lower --batch-size")
    steps = len(train_split) // cfg.batch_size
    balance, class_weight = class_balance(data)
    bn_changed: list[float] = []

    def adjust(model: keras.Model) -> None:
        if cfg.bn_momentum is not None:
            bn_changed[:] = set_bn_momentum(model, cfg.bn_momentum, at_most=not bn_by_hand)

    if parent and cfg.transfer:
        start = from_parent(parent, data.num_classes, train_split, bool(class_weight), cfg.seed)
    elif parent:
        start = from_weights(cfg, parent, data.num_classes, train_split, adjust)
    else:
        start = from_scratch(cfg, data.image_size, data.num_classes, train_split, adjust)

    def initial_model(state: dict | None) -> keras.Model:
        with strategy.scope():
            if state:
                return keras.saving.load_model(ckpt_dir / "last.keras", safe_mode=True)
            return start.build(dtype_policy(cfg.precision))

    started = time.perf_counter()
    model = initial_model(state)
    start_seconds = 0.0 if state else time.perf_counter() - started
    log.info(balance)
    if bn_changed and not state:
        log.info(f"BatchNorm momentum {cfg.bn_momentum} (model: {', '.join(map(str, sorted(set(bn_changed))))}"
                 f"{'' if bn_by_hand else '; small data: at most 1 - 10/steps of the run'})")
    epochs_run, train_seconds = 0, start_seconds
    rollbacks = list(state.get("rollbacks", [])) if state else []
    outliers = outlier_images(cfg, data) if cfg.epochs else None
    while cfg.epochs:
        checkpointer = fit(cfg, model, strategy, data, ckpt_dir, state, steps, class_weight,
                           extra_callbacks, val_split, rollbacks, outliers)
        if checkpointer.nan_epoch is None:
            epochs_run = checkpointer.state["epoch"]
            train_seconds += checkpointer.state["train_seconds"]
            break
        rollbacks.append(roll_back(checkpointer, ckpt_dir, len(rollbacks)))
        state = read_state(ckpt_dir)
        model = initial_model(state)
    model = finalize(model, start, val_split, cfg.calibrate)
    val_metrics = probability_metrics(model, val_split) if val_split is not None else {}
    open_set = None
    if cfg.ood_score != "none":
        model, open_set = add_open_set(model, train_split, val_split, data.num_classes, cfg.ood_score,
                                       seed=cfg.seed, mirror=cfg.ood_mirror)
    summary = {
        "out": str(cfg.out), "model": cfg.model, "recipe": cfg.recipe, "transfer": cfg.transfer,
        "parent": str(start.parent) if start.parent else None, "epochs_run": epochs_run,
        "train_seconds": train_seconds, "session_seconds": time.perf_counter() - started,
        "val_metrics": val_metrics, "train_images": len(train_split),
        "val_images": len(val_split) if val_split is not None else 0,
        "dataset_fingerprint": data.fingerprint, "command": cfg.command, "class_weights": class_weight,
        "small_data": {k: v for k, (v, _) in chosen.items() if k != "bn_momentum" or bn_changed},
        "curves": CURVES_FILE if (cfg.out / CURVES_FILE).exists() else None,
        "open_set": dataclasses.asdict(open_set) if open_set else None,
        "rollbacks": rollbacks,
    }
    meta = run_folder.metadata(cfg, data, start, val_metrics).with_changes(open_set=open_set)
    if is_chief():
        save_model_file(model, cfg.out / "model.keras", meta)
        write_json_atomic(cfg.out / "summary.json", summary)
    else:  # must save too (collective reads), but only the chief writes into --out
        save_model_file(model, ckpt_dir / "model.keras", meta)
    log.info(json.dumps({"model": str(cfg.out / "model.keras"), **val_metrics}))
    return summary


def roll_back(checkpointer, ckpt_dir: Path, tries: int) -> dict:
    """The record of going back to the last good checkpoint after a NaN/inf loss; an error once
    MAX_ROLLBACKS tries have failed."""
    good = checkpointer.state["epoch"]
    if tries >= MAX_ROLLBACKS:
        kept = (f"the last good checkpoint (epoch {good}) is kept in {ckpt_dir}; lower --lr and resume"
                if good else "no epoch finished, so there is no checkpoint; lower --lr and rerun")
        raise CifarlabError(f"loss became NaN/inf in epoch {checkpointer.nan_epoch + 1} after "
                            f"{tries} rollbacks at lower learning rates; {kept}")
    rollback = {"diverged_in_epoch": checkpointer.nan_epoch + 1, "back_to_epoch": good,
                "lr_scale": LR_FACTOR ** (tries + 1), "try": tries + 1}
    log.warning(describe_rollback(rollback))
    return rollback


def compile_model(cfg: TrainConfig, model: keras.Model, strategy, state: dict | None, steps: int,
                  lr_scale: float) -> None:
    """A fresh run's optimizer; after a rollback, the learning rate scaled to `lr_scale` (the
    checkpoint's optimizer holds the scale it was saved with)."""
    held = state.get("lr_scale", 1.0) if state else 1.0
    with strategy.scope():
        # jit_compile stays Keras's "auto" (no XLA on CPU): XLA trains `fast` slower
        # here than TensorFlow's oneDNN kernels (bench/results/train_throughput.json).
        if not state:
            model.compile(optimizer=make_optimizer(cfg, steps), metrics=["accuracy"], loss=make_loss(cfg))
        if lr_scale != held:
            optimizer = with_scaled_learning_rate(model.optimizer, model.trainable_variables, lr_scale / held)
            model.compile(optimizer=optimizer, metrics=["accuracy"], loss=make_loss(cfg))


def fit(cfg: TrainConfig, model: keras.Model, strategy, data: Dataset, ckpt_dir: Path,
        state: dict | None, steps: int, class_weight: dict | None, extra_callbacks: list | None,
        val_split: Split | None, rollbacks: list[dict], outliers: np.ndarray | None = None):
    """Compile (unless resuming) and fit from the checkpoint's epoch; the Checkpointer (epochs
    done, seconds, the epoch whose loss became NaN/inf if one did)."""
    train_split = data.split("train")
    lr_scale = LR_FACTOR ** len(rollbacks)
    with frozen_batchnorm(model, cfg.freeze_batchnorm):
        compile_model(cfg, model, strategy, state, steps, lr_scale)
        fix_keras_multiworker_build(model, strategy)
        first_epoch = state["epoch"] if state else 0
        same_on_all_workers(strategy, first_epoch, "the checkpoint epoch to resume from")
        # Killed after the last epoch's checkpoint but before model.keras: just write the outputs.
        finished = first_epoch >= cfg.epochs and not (cfg.out / "model.keras").exists()
        if first_epoch >= cfg.epochs and not finished:
            raise CifarlabError(f"{cfg.out}: this run already finished (epoch {first_epoch} of "
                                f"{cfg.epochs}, model.keras written); choose another --out to train again")
        callbacks, checkpointer = make_callbacks(cfg, ckpt_dir, state,
                                                 record={"lr_scale": lr_scale, "rollbacks": list(rollbacks)})
        train_ds = shard_by_data(train_dataset(train_split.rows, train_split.labels, data.num_classes,
                                               cfg.batch_size, cfg.seed, first_epoch, cfg.epochs,
                                               Augment.of(cfg), outliers))
        val_ds = (shard_by_data(eval_dataset(val_split.rows, val_split.labels, data.num_classes, 512))
                  if val_split is not None else None)
        if state:
            log.info(f"resuming {cfg.out} after epoch {first_epoch}")
        try:
            if finished:  # what fit() does last: e.g. lookahead's averaged weights become the model
                model.optimizer.finalize_variable_values(model.trainable_weights)
            else:
                model.fit(train_ds, epochs=cfg.epochs, initial_epoch=first_epoch, steps_per_epoch=steps,
                          shuffle=False, validation_data=val_ds, class_weight=class_weight,
                          validation_freq=validation_freq(cfg),
                          callbacks=callbacks + (extra_callbacks or []), verbose=cfg.verbose)
        except KeyboardInterrupt:
            raise CifarlabError(f"interrupted; the checkpoint after epoch {checkpointer.state['epoch']} "
                                f"is kept in {ckpt_dir}: rerun the same command to resume") from None
    return checkpointer


def finalize(model: keras.Model, start, val_split: Split | None, calibrate: bool) -> keras.Model:
    """The model that ships: float32 (whatever precision trained it), temperature-calibrated
    (training/calibration.py; with too few validation images the temperature stays 1)."""
    temperature = 1.0
    if start.settle:
        start.settle(model)
    if calibrate and val_split is not None:
        if len(val_split) >= MIN_CALIBRATION_IMAGES:
            temperature = fit_temperature(model, val_split)
        else:
            log.info(f"temperature 1 (not fitted: {len(val_split)} validation images, fewer than "
                     f"{MIN_CALIBRATION_IMAGES})")
    return start.finish(model, temperature)


def describe_run(config: TrainConfig) -> str:
    """`--print-config`: the resolved config and where each value came from; with `config.data`
    the small-data rule is applied to that dataset."""
    from cifarlab.training.config import print_config

    run = resolve(config, with_data=bool(config.data))
    text = print_config(config, run.chosen, run.parent.meta.model if run.parent else None)
    return text if config.data else text + "\n(small-data rule not applied: no --data)"
