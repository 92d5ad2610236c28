"""`Curves`: a Keras callback that draws the run's learning curves into `curves.png`.

Loss and accuracy per epoch, training and validation side by side, redrawn after every epoch
(at most once every `min_interval` seconds, so runs of many tiny epochs do not spend their time
plotting; always after the last epoch). Epochs of an earlier part of a resumed run are read
back from its `log.csv`. The file is replaced atomically: a viewer never sees half a PNG.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import keras

from cifarlab.atomic import write_atomic

CURVES_FILE = "curves.png"


class Curves(keras.callbacks.Callback):
    def __init__(self, path: str | Path, log_csv: str | Path | None = None, title: str = "",
                 min_interval: float = 5.0):
        super().__init__()
        self.path, self.log_csv, self.title = Path(path), log_csv, title
        self.min_interval = min_interval
        self.history: dict[int, dict[str, float]] = {}
        self._last_draw = -math.inf
        self._pending = False

    def on_train_begin(self, logs=None):
        # a resumed run: its earlier epochs
        self.history = read_log(self.log_csv) if self.log_csv and Path(self.log_csv).is_file() else {}

    def on_epoch_end(self, epoch, logs=None):
        self.history[epoch] = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        self._pending = True
        if time.monotonic() - self._last_draw >= self.min_interval:
            self.draw()

    def on_train_end(self, logs=None):
        if self._pending:
            self.draw()

    def draw(self) -> Path:
        write_atomic(self.path, render(self.history, self.title))
        self._last_draw, self._pending = time.monotonic(), False
        return self.path


def read_log(path: str | Path) -> dict[int, dict[str, float]]:
    """The epochs of a run's log.csv (Keras CSVLogger): {epoch: {metric: value}}."""
    history = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                epoch = int(row.pop("epoch"))
            except (KeyError, TypeError, ValueError):
                continue
            history[epoch] = {k: float(v) for k, v in row.items() if _is_number(v)}
    return history


def _is_number(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def render(history: dict[int, dict[str, float]], title: str = "") -> bytes:
    """PNG bytes: loss (left) and accuracy (right) per epoch, train and validation."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    epochs = sorted(history)
    fig = Figure(figsize=(9, 3.5))
    for ax, metric, label in zip(fig.subplots(1, 2), ("loss", "accuracy"), ("loss", "accuracy")):
        for key, name, style in ((metric, "train", "o-"), (f"val_{metric}", "validation", "s--")):
            points = [(e + 1, history[e][key]) for e in epochs if key in history[e]]
            if points:
                ax.plot(*zip(*points), style, markersize=3, label=name)
        ax.set(xlabel="epoch", ylabel=label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


if __name__ == "__main__":  # python -m cifarlab.training.curves RUN/log.csv OUT.png [TITLE]
    import sys

    log, out, *title = sys.argv[1:]
    write_atomic(out, render(read_log(log), " ".join(title)))
