"""`train(config)`: compose data, model, optimizer, schedule, callbacks and logging into one run.

Outputs in `config.out`: model.keras (with metadata), checkpoint/ (resume), log.csv,
tensorboard/, summary.json.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from cifarlab import __version__
from cifarlab.atomic import write_json_atomic
from cifarlab.data import Dataset, Split, load_dataset, with_validation
from cifarlab.data.stats import channel_stats
from cifarlab.errors import CifarlabError
from cifarlab.models.io import save_model_file
from cifarlab.models.metadata import ModelMetadata
from cifarlab.models.registry import build_model
from cifarlab.training.calibration import fit_temperature, probability_metrics
from cifarlab.training.checkpoint import Checkpointer, read_state
from cifarlab.training.config import TrainConfig
from cifarlab.training.distribute import (
    fix_keras_multiworker_build,
    is_chief,
    make_strategy,
    same_on_all_workers,
    shard_by_data,
)
from cifarlab.training.optim import BiasBoostSGD, LookaheadReset, Triangle
from cifarlab.training.pipeline import Augment, eval_dataset, train_dataset
from cifarlab.training.precision import dtype_policy


def subset(split: Split, n: int | None, seed: int) -> Split:
    if not n or n >= len(split):
        return split
    index = np.sort(np.random.default_rng(seed).permutation(len(split))[:n])
    return Split(split.images[index], split.labels[index])


def make_schedule(cfg: TrainConfig, steps_per_epoch: int):
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.schedule == "triangle":
        return Triangle(cfg.lr, total_steps)
    if cfg.schedule == "warmup-cosine":
        warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=cfg.lr / 10, warmup_target=cfg.lr, warmup_steps=warmup,
            decay_steps=max(1, total_steps - warmup), alpha=0.0)
    if cfg.schedule in ("constant", "plateau"):
        return cfg.lr
    raise CifarlabError(f"unknown schedule {cfg.schedule!r}; use triangle, warmup-cosine, constant or plateau")


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr = make_schedule(cfg, steps_per_epoch)
    wd = cfg.weight_decay or None
    if cfg.optimizer == "sgd":
        return BiasBoostSGD(lr, momentum=cfg.momentum, bias_scaler=cfg.bias_scaler,
                            lookahead_steps=cfg.lookahead_steps, total_steps=cfg.epochs * steps_per_epoch,
                            weight_decay=wd)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=wd)
    raise CifarlabError(f"unknown optimizer {cfg.optimizer!r}; use sgd or adam")


def make_callbacks(cfg: TrainConfig, ckpt_dir: Path, state: dict | None) -> tuple[list, Checkpointer]:
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN(), LookaheadReset()]
    stateful: dict[str, keras.callbacks.Callback] = {}
    early = None
    if cfg.early_stopping_patience:
        early = keras.callbacks.EarlyStopping("val_loss", patience=cfg.early_stopping_patience,
                                              restore_best_weights=True, verbose=cfg.verbose)
        stateful["early_stopping"] = early
    if cfg.schedule == "plateau":
        stateful["reduce_lr"] = keras.callbacks.ReduceLROnPlateau(
            "val_loss", factor=cfg.plateau_factor, patience=cfg.plateau_patience, min_lr=1e-5,
            verbose=cfg.verbose)
    callbacks += list(stateful.values())
    if is_chief():
        callbacks += [keras.callbacks.CSVLogger(str(cfg.out / "log.csv"), append=True),
                      keras.callbacks.TensorBoard(str(cfg.out / "tensorboard"))]
    checkpointer = Checkpointer(ckpt_dir, stateful, early, state)
    return callbacks + [checkpointer], checkpointer


def finalize(model: keras.Model, build, val_split: Split | None, calibrate: bool) -> keras.Model:
    """The model that ships: float32 (whatever precision trained it), temperature-calibrated."""
    temperature = fit_temperature(model, val_split) if calibrate and val_split is not None else 1.0
    final = build("float32", temperature)
    final.set_weights(model.get_weights())
    return final


def load_data(cfg: TrainConfig) -> Dataset:
    data = load_dataset(cfg.data, image_size=cfg.image_size, labels=cfg.labels,
                        cache_dir=cfg.cache_dir, use_cache=cfg.use_cache)
    data = with_validation(data, cfg.val_fraction, cfg.seed)
    data.splits["train"] = subset(data.split("train"), cfg.limit_train, cfg.seed)
    return data


def metadata(cfg: TrainConfig, data: Dataset, mean, std, val_metrics: dict) -> ModelMetadata:
    return ModelMetadata(
        class_names=tuple(data.class_names), input_size=tuple(data.image_size),
        mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std),
        dataset_fingerprint=data.fingerprint, dataset_format=data.format,
        model=cfg.model, command=cfg.command, version=__version__, val_metrics=val_metrics,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        recipe={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()
                if k not in ("command", "cache_dir", "quiet")},
    )


def prepare_out(cfg: TrainConfig) -> tuple[Path, dict | None]:
    ckpt_dir = cfg.out / "checkpoint"
    state = read_state(ckpt_dir)
    if cfg.resume and state is None:
        raise CifarlabError(f"--resume: no checkpoint in {ckpt_dir}; start without --resume")
    if state is None and (cfg.out / "model.keras").exists():
        raise CifarlabError(f"{cfg.out} already holds a finished model; choose another --out")
    if is_chief():
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        return ckpt_dir, state
    # Multi-worker: every worker must save (saving reads distributed variables collectively), but
    # only the chief writes into --out; the others save into a private folder, seeded with the
    # chief's checkpoint when resuming.
    worker_dir = Path(tempfile.mkdtemp(prefix="cifarlab-worker-"))
    for name in ("state.json", "last.keras", "best.keras") if state else ():
        if (ckpt_dir / name).is_file():
            shutil.copy2(ckpt_dir / name, worker_dir / name)
    return worker_dir, state


def check_augmentation(cfg: TrainConfig, side: int) -> None:
    for name, pixels in (("translate", cfg.translate), ("cutout", cfg.cutout)):
        if not 0 <= pixels < side:
            raise CifarlabError(f"--{name} {pixels} must be between 0 and {side - 1} for {side}-pixel images")
    for name, share in (("noise", cfg.noise), ("contrast", cfg.contrast), ("blur", cfg.blur)):
        if not 0 <= share <= 1:
            raise CifarlabError(f"--{name} {share} must be between 0 and 1")


def train(config: TrainConfig, extra_callbacks: list | None = None) -> dict:
    """Train (or resume) one run and write its outputs; returns the summary dict."""
    cfg = config.resolved()
    data = load_data(cfg)
    check_augmentation(cfg, min(data.image_size))
    ckpt_dir, state = prepare_out(cfg)
    try:
        return _train(cfg, data, ckpt_dir, state, extra_callbacks)
    finally:
        if not is_chief():
            shutil.rmtree(ckpt_dir, ignore_errors=True)


def _train(cfg: TrainConfig, data: Dataset, ckpt_dir: Path, state: dict | None,
           extra_callbacks: list | None) -> dict:
    train_split = data.split("train")
    val_split = data.splits.get("val")
    keras.utils.set_random_seed(cfg.seed)
    strategy = make_strategy(cfg.strategy)
    if len(train_split) < cfg.batch_size:
        raise CifarlabError(f"{len(train_split)} training images is fewer than one batch of "
                            f"{cfg.batch_size}; lower --batch-size")
    steps = len(train_split) // cfg.batch_size
    mean, std = channel_stats(train_split.images)

    def build(policy: str, temperature: float = 1.0) -> keras.Model:
        return build_model(cfg.model, data.image_size, data.num_classes, mean, std, dtype_policy=policy,
                           temperature=temperature, init_images=train_split.images,
                           **cfg.model_options())

    with strategy.scope():
        if state:
            model = keras.saving.load_model(ckpt_dir / "last.keras", safe_mode=True)
        else:
            model = build(dtype_policy(cfg.precision))
            # jit_compile stays Keras's "auto" (no XLA on CPU): here XLA trains `fast` at 0.47-0.65x
            # the speed of TensorFlow's oneDNN kernels (bench/train_throughput.py, `+xla` rows).
            model.compile(optimizer=make_optimizer(cfg, steps),
                          loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                          metrics=["accuracy"])
    fix_keras_multiworker_build(model, strategy)
    first_epoch = state["epoch"] if state else 0
    same_on_all_workers(strategy, first_epoch, "the checkpoint epoch to resume from")
    # Killed after the last epoch's checkpoint but before model.keras: just write the outputs.
    finished = first_epoch >= cfg.epochs and not (cfg.out / "model.keras").exists()
    if first_epoch >= cfg.epochs and not finished:
        raise CifarlabError(f"{cfg.out}: this run already finished (epoch {first_epoch} of {cfg.epochs}, "
                            "model.keras written); choose another --out to train again")
    callbacks, checkpointer = make_callbacks(cfg, ckpt_dir, state)
    train_ds = shard_by_data(train_dataset(train_split.images, train_split.labels, data.num_classes,
                                           cfg.batch_size, cfg.seed, first_epoch, cfg.epochs,
                                           Augment.of(cfg)))
    val_ds = (shard_by_data(eval_dataset(val_split.images, val_split.labels, data.num_classes, 512))
              if val_split is not None else None)
    if state and cfg.verbose:
        print(f"resuming {cfg.out} after epoch {first_epoch}")
    started = time.perf_counter()
    try:
        if finished:  # what fit() does last: e.g. lookahead's averaged weights become the model
            model.optimizer.finalize_variable_values(model.trainable_weights)
        else:
            model.fit(train_ds, epochs=cfg.epochs, initial_epoch=first_epoch, steps_per_epoch=steps,
                      shuffle=False, validation_data=val_ds,
                      callbacks=callbacks + (extra_callbacks or []), verbose=cfg.verbose)
    except KeyboardInterrupt:
        raise CifarlabError(f"interrupted; the checkpoint after epoch {checkpointer.state['epoch']} is "
                            f"kept in {ckpt_dir}: rerun the same command to resume") from None
    if checkpointer.nan_epoch is not None:
        good = checkpointer.state["epoch"]
        kept = (f"the last good checkpoint (epoch {good}) is kept in {ckpt_dir}; lower --lr and resume"
                if good else "no epoch finished, so there is no checkpoint; lower --lr and rerun")
        raise CifarlabError(f"loss became NaN/inf in epoch {checkpointer.nan_epoch + 1}; {kept}")
    model = finalize(model, build, val_split, cfg.calibrate)
    val_metrics = probability_metrics(model, val_split) if val_split is not None else {}
    summary = {
        "out": str(cfg.out), "model": cfg.model, "epochs_run": checkpointer.state["epoch"],
        "train_seconds": checkpointer.state["train_seconds"],
        "session_seconds": time.perf_counter() - started, "val_metrics": val_metrics,
        "train_images": len(train_split), "val_images": len(val_split) if val_split is not None else 0,
        "dataset_fingerprint": data.fingerprint, "command": cfg.command,
    }
    meta = metadata(cfg, data, mean, std, val_metrics)
    if is_chief():
        save_model_file(model, cfg.out / "model.keras", meta)
        write_json_atomic(cfg.out / "summary.json", summary)
    else:  # must save too (collective reads), but only the chief writes into --out
        save_model_file(model, ckpt_dir / "model.keras", meta)
    if cfg.verbose:
        print(json.dumps({"model": str(cfg.out / "model.keras"), **val_metrics}))
    return summary
