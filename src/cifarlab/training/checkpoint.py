"""Resumable training: an atomic checkpoint after every finished epoch (when epochs take
seconds, as on small data, at most one per `min_interval` seconds; always after the first and
the last epoch and at an epoch early stopping marks as best).

`last.keras` holds the model with its optimizer state (step counter, so the schedule resumes
too); `state.json` holds the epoch, the state of the callbacks that have memory (early
stopping, reduce-on-plateau) and the random state of dropout layers (their SeedGenerator
variables, which .keras files do not save), so a resumed run is identical to an uninterrupted
one; `best.keras` holds the best weights early stopping would restore.
A `kill -9` at any moment leaves the previous complete checkpoint (files are renamed into place).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras

from cifarlab.atomic import atomic_path, write_json_atomic

STATEFUL_FIELDS = ("wait", "best", "best_epoch", "cooldown_counter", "stopped_epoch")
EXPLODED_LOSS = 1e3  # a mean cross-entropy this high means the weights have blown up


def diverged(logs: dict) -> bool:
    """An epoch whose logs hold a NaN/inf value, or a loss that has blown up (still finite)."""
    return not all(math.isfinite(float(v)) and not ("loss" in k and float(v) > EXPLODED_LOSS)
                   for k, v in logs.items())


def save_keras_atomic(model: keras.Model, path: Path) -> None:
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def rng_variables(model: keras.Model) -> list:
    """The SeedGenerator states (dropout masks etc.): model variables a .keras file leaves out."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def callback_state(callback: keras.callbacks.Callback) -> dict:
    return {f: float(getattr(callback, f)) for f in STATEFUL_FIELDS
            if isinstance(getattr(callback, f, None), (int, float))}


class Checkpointer(keras.callbacks.Callback):
    """Saves last.keras/state.json each epoch; restores stateful callbacks on (re)start."""

    def __init__(self, directory: Path, stateful: dict[str, keras.callbacks.Callback],
                 early_stopping: keras.callbacks.EarlyStopping | None, restored_state: dict | None,
                 min_interval: float = 0.0, record: dict | None = None):
        super().__init__()
        self.record = record or {}  # written into every state.json (the rollbacks so far)
        self.min_interval = min_interval
        self.directory = directory
        self.stateful = stateful
        self.early_stopping = early_stopping
        self.state = restored_state or {"epoch": 0, "callbacks": {}, "train_seconds": 0.0}
        self.nan_epoch: int | None = None
        self._epoch_start = 0.0
        self._train_seconds = self.state["train_seconds"]
        self._last_save = time.perf_counter()

    def on_train_begin(self, logs=None):
        # Runs after the stateful callbacks' own on_train_begin reset them (it is listed last).
        for name, values in self.state["callbacks"].items():
            for field, value in values.items():
                setattr(self.stateful[name], field, value)
        for variable, value in zip(rng_variables(self.model), self.state.get("rng", [])):
            variable.assign(value)
        best = self.directory / "best.keras"
        if self.early_stopping is not None and best.exists() and self.state["epoch"] > 0:
            self.early_stopping.best_weights = keras.saving.load_model(best, compile=False).get_weights()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._train_seconds += time.perf_counter() - self._epoch_start
        if diverged(logs):
            self.nan_epoch = epoch
            self.model.stop_training = True
            return  # keep the last good checkpoint
        es = self.early_stopping
        best = es is not None and es.best_epoch == epoch
        due = (best or self.state["epoch"] == 0 or self.model.stop_training
               or epoch + 1 >= self.params.get("epochs", 0)
               or time.perf_counter() - self._last_save >= self.min_interval)
        if not due:
            return
        self._last_save = time.perf_counter()
        if best:
            save_keras_atomic(self.model, self.directory / "best.keras")
        save_keras_atomic(self.model, self.directory / "last.keras")
        self.state = {
            "epoch": epoch + 1,
            "callbacks": {name: callback_state(cb) for name, cb in self.stateful.items()},
            "train_seconds": self._train_seconds,
            "logs": {k: float(v) for k, v in logs.items()},
            "rng": [[int(x) for x in v.numpy()] for v in rng_variables(self.model)],
            **self.record,
        }
        write_json_atomic(self.directory / "state.json", self.state)


def read_state(directory: Path) -> dict | None:
    path = directory / "state.json"
    if not (path.is_file() and (directory / "last.keras").is_file()):
        return None
    return json.loads(path.read_text())
