"""`train(config)`: compose data, model, optimizer, schedule, callbacks and logging into one run.

Outputs in `config.out`: model.keras (with metadata), checkpoint/ (resume), log.csv,
tensorboard/, curves.png, summary.json; for ROOT/<class>/<image> data also splits.json (which
file is in which split: a resumed run, or a rerun into the same --out, reads it back, so its
val and test images stay out of training even after images were added). Options the user did
not set adapt to small data (`config.small_data_defaults`; the values chosen are recorded in
small_data.json and reused on resume). `--from MODEL` runs are transfers: training/transfer.py.
"""

from __future__ import annotations

import dataclasses
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
from cifarlab.data import (
    Dataset,
    Split,
    load_dataset,
    save_split_record,
    with_validation,
)
from cifarlab.data.stats import channel_stats
from cifarlab.errors import CifarlabError
from cifarlab.models.io import save_model_file
from cifarlab.models.metadata import ModelMetadata
from cifarlab.models.registry import build_model
from cifarlab.training.calibration import fit_temperature, probability_metrics
from cifarlab.training.checkpoint import Checkpointer, read_state
from cifarlab.training.config import TrainConfig, small_data_defaults
from cifarlab.training.curves import CURVES_FILE, Curves
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


CHECKPOINT_INTERVAL = 10.0  # seconds: short (small-data) epochs are not each checkpointed
VALIDATIONS = 10            # without early stopping/plateau, validate about this often per run


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
                      keras.callbacks.TensorBoard(str(cfg.out / "tensorboard")),
                      Curves(cfg.out / CURVES_FILE, cfg.out / "log.csv", title=f"{cfg.model}: {cfg.out}")]
    checkpointer = Checkpointer(ckpt_dir, stateful, early, state, min_interval=CHECKPOINT_INTERVAL)
    return callbacks + [checkpointer], checkpointer


def validation_freq(cfg: TrainConfig) -> int:
    """Validate every epoch when a callback watches val_loss, else about VALIDATIONS times per
    run (hundreds of tiny small-data epochs would spend their time validating)."""
    if cfg.early_stopping_patience or cfg.schedule == "plateau":
        return 1
    return max(1, cfg.epochs // VALIDATIONS)


def finalize(model: keras.Model, build, val_split: Split | None, calibrate: bool) -> keras.Model:
    """The model that ships: float32 (whatever precision trained it), temperature-calibrated."""
    temperature = fit_temperature(model, val_split) if calibrate and val_split is not None else 1.0
    final = build("float32", temperature)
    final.set_weights(model.get_weights())
    return final


SPLITS_FILE = "splits.json"          # the run's split record (ROOT/<class>/<image> data)
SMALL_DATA_FILE = "small_data.json"  # the small-data values chosen at the start of the run
IMBALANCE = 1.5  # classes are weighted when the largest has more than this x the smallest's images


def load_data(cfg: TrainConfig, dataset: Dataset | None = None, image_size: int | None = None) -> Dataset:
    """The dataset (a copy of `dataset` if given); a ROOT/<class>/<image> folder's splits are
    drawn with the run's seed, or read back from the run's splits.json when it has one."""
    if dataset is None:
        record = cfg.out / SPLITS_FILE
        dataset = load_dataset(cfg.data, image_size=image_size or cfg.image_size, labels=cfg.labels,
                               cache_dir=cfg.cache_dir, use_cache=cfg.use_cache,
                               progress=not cfg.quiet, split_seed=cfg.seed,
                               split_record=record if record.is_file() else None)
    return dataclasses.replace(dataset, splits=dict(dataset.splits))


def adapt_to_data(config: TrainConfig, data: Dataset, resuming: bool) -> tuple[TrainConfig, dict]:
    """The resolved config with the small-data values for the options not set by hand (the
    values recorded in the run folder when resuming), and {field: (value, why)} chosen."""
    saved = config.resolved().out / SMALL_DATA_FILE
    if resuming and saved.is_file():
        chosen = {k: tuple(v) for k, v in json.loads(saved.read_text())["chosen"].items()}
    else:
        chosen = small_data_defaults(config, len(data.split("train")), data.num_classes,
                                     val_from_train="val" not in data.splits)
    return dataclasses.replace(config, **{k: v for k, (v, _) in chosen.items()}).resolved(), chosen


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


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer, nested models' layers included."""
    return [inner for layer in model.layers
            for inner in ([layer] + (all_layers(layer) if isinstance(layer, keras.Model) else []))]


def set_bn_momentum(model: keras.Model, momentum: float, at_most: bool) -> list[float]:
    """Set (or with at_most, cap) the momentum of every BatchNormalization layer; returns the
    previous values of the layers it changed."""
    changed = []
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.momentum != momentum and not (at_most and layer.momentum <= momentum):
                changed.append(layer.momentum)
                layer.momentum = momentum
    return changed


def metadata(cfg: TrainConfig, data: Dataset, mean, std, val_metrics: dict) -> ModelMetadata:
    return ModelMetadata(
        splits=data.split_record() or {},
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


def train(config: TrainConfig, extra_callbacks: list | None = None,
          dataset: Dataset | None = None) -> dict:
    """Train (or resume) one run and write its outputs; returns the summary dict.

    dataset: use these arrays instead of reading `config.data` (benchmarks). A config with
    `from_model` set is a transfer run: `cifarlab.training.transfer.transfer(config)`.
    """
    if config.from_model is not None:
        raise CifarlabError("this config learns from a trained model (--from): run it with "
                            "cifarlab.training.transfer.transfer(config)")
    resuming = read_state(config.resolved().out / "checkpoint") is not None
    data = load_data(config.resolved(), dataset)
    cfg, chosen = adapt_to_data(config, data, resuming)
    data = split_data(cfg, data)
    check_augmentation(cfg, min(data.image_size))
    ckpt_dir, state = prepare_out(cfg)
    if is_chief() and state is None:  # a fresh run records its split and choices for a resume
        if data.split_record() is not None:
            save_split_record(data, cfg.out / SPLITS_FILE)
        write_json_atomic(cfg.out / SMALL_DATA_FILE,
                          {"train_images": len(data.split("train")), "chosen": chosen})
    shown = {k: v for k, v in chosen.items() if k != "bn_momentum"}  # printed once the model shows it
    if cfg.verbose and shown:
        print(describe_choices(shown, len(data.split("train"))))
    try:
        return _train(cfg, data, ckpt_dir, state, extra_callbacks, chosen,
                      bn_by_hand=config.bn_momentum is not None)
    finally:
        if not is_chief():
            shutil.rmtree(ckpt_dir, ignore_errors=True)


def _train(cfg: TrainConfig, data: Dataset, ckpt_dir: Path, state: dict | None,
           extra_callbacks: list | None, chosen: dict, bn_by_hand: bool = False) -> dict:
    train_split = data.split("train")
    val_split = data.splits.get("val")
    keras.utils.set_random_seed(cfg.seed)
    strategy = make_strategy(cfg.strategy)
    if len(train_split) < cfg.batch_size:
        raise CifarlabError(f"{len(train_split)} training images is fewer than one batch of "
                            f"{cfg.batch_size}; lower --batch-size")
    steps = len(train_split) // cfg.batch_size
    mean, std = channel_stats(train_split.images)

    balance, class_weight = class_balance(data)
    bn_changed: list[float] = []

    def build(policy: str, temperature: float = 1.0) -> keras.Model:
        model = build_model(cfg.model, data.image_size, data.num_classes, mean, std, dtype_policy=policy,
                            temperature=temperature, init_images=train_split.images,
                            **cfg.model_options())
        if cfg.bn_momentum is not None:
            bn_changed[:] = set_bn_momentum(model, cfg.bn_momentum, at_most=not bn_by_hand)
        return model

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
    if cfg.verbose:
        print(balance)
        if bn_changed and not state:
            print(f"BatchNorm momentum {cfg.bn_momentum} (model: {', '.join(map(str, sorted(set(bn_changed))))}"
                  f"{'' if bn_by_hand else '; small data: at most 1 - 10/steps of the run'})")
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
                      shuffle=False, validation_data=val_ds, class_weight=class_weight,
                      validation_freq=validation_freq(cfg),
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
        "class_weights": class_weight,
        "small_data": {k: v for k, (v, _) in chosen.items() if k != "bn_momentum" or bn_changed},
        "curves": CURVES_FILE if (cfg.out / CURVES_FILE).exists() else None,
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
