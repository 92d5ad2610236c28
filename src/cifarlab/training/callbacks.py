"""The callbacks of a training run: NaN guard, lookahead, early stopping and plateau (when the
recipe asks), CSV log, TensorBoard, curves.png, and the resumable checkpoint."""

from __future__ import annotations

from pathlib import Path

import keras

from cifarlab.training.checkpoint import Checkpointer
from cifarlab.training.curves import CURVES_FILE, Curves
from cifarlab.training.distribute import is_chief
from cifarlab.training.optim import LookaheadReset

CHECKPOINT_INTERVAL = 10.0  # seconds: short (small-data) epochs are not each checkpointed
VALIDATIONS = 10            # without early stopping/plateau, validate about this often per run


def make_callbacks(cfg, ckpt_dir: Path, state: dict | None,
                   record: dict | None = None) -> tuple[list, Checkpointer]:
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
                      Curves(cfg.out / CURVES_FILE, cfg.out / "log.csv", title=f"{cfg.recipe}: {cfg.out}")]
    checkpointer = Checkpointer(ckpt_dir, stateful, early, state, min_interval=CHECKPOINT_INTERVAL,
                                record=record)
    return callbacks + [checkpointer], checkpointer


def validation_freq(cfg) -> int:
    """Validate every epoch when a callback watches val_loss, else about VALIDATIONS times per
    run (hundreds of tiny small-data epochs would spend their time validating)."""
    if cfg.early_stopping_patience or cfg.schedule == "plateau":
        return 1
    return max(1, cfg.epochs // VALIDATIONS)
