"""Training is reproducible: same seed, same weights; kill -9 and rerun, same weights; NaN stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from cifarlab.cli.main import main
from cifarlab.errors import CifarlabError
from cifarlab.training.config import TrainConfig
from cifarlab.training.train import train

QUICK = dict(image_size=32, batch_size=32, quiet=True)


def weights(path) -> list[np.ndarray]:
    return keras.saving.load_model(path, compile=False).get_weights()


def assert_same_weights(a: list[np.ndarray], b: list[np.ndarray], atol: float = 0.0) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


# seed: dropout RNG and callback state; fast: lookahead averages mid-period (8 steps/epoch, k=5).
RUN = dict(epochs=3, seed=3, **QUICK)


@pytest.fixture(scope="module")
def reference_runs(shapes_folder, tmp_path_factory):
    """`reference_runs(model)`: the folder of one uninterrupted RUN of `model`, trained once."""
    runs = {}

    def run_of(model: str):
        if model not in runs:
            runs[model] = tmp_path_factory.mktemp(f"reference-{model}")
            train(TrainConfig(data=str(shapes_folder), model=model, out=runs[model], **RUN))
        return runs[model]
    return run_of


@pytest.mark.parametrize("model", ["fast", "baseline"])  # baseline has dropout: its RNG must replay too
@pytest.mark.slow
def test_same_config_twice_gives_identical_weights(shapes_folder, tmp_path, model, reference_runs):
    train(TrainConfig(data=str(shapes_folder), model=model, out=tmp_path / "again", **RUN))
    assert_same_weights(weights(reference_runs(model) / "model.keras"), weights(tmp_path / "again" / "model.keras"))


def read_epoch(run) -> int:
    try:
        return json.loads((run / "checkpoint" / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("model", ["baseline", "fast"])
@pytest.mark.slow
def test_resume_after_kill_9_matches_an_uninterrupted_run(shapes_folder, tmp_path, model, reference_runs):
    reference = reference_runs(model)
    run = tmp_path / "killed"
    command = [sys.executable, "-m", "cifarlab.cli.main", "train", "--data", str(shapes_folder),
               "--model", model, "--epochs", str(RUN["epochs"]), "--seed", str(RUN["seed"]),
               "--image-size", "32", "--batch-size", "32", "--out", str(run)]
    process = subprocess.Popen(command + ["--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while read_epoch(run) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = read_epoch(run)
    assert 1 <= killed_at, process.stderr.read().decode()[-2000:]
    assert not (run / "model.keras").exists()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {run} after epoch {killed_at}" in resumed.stdout
    assert read_epoch(run) == 3
    assert len((run / "log.csv").read_text().splitlines()) >= 1 + 3
    # The optimizer's step counter (which drives the LR schedule) carried over the restart.
    steps_per_epoch = int(json.loads((run / "summary.json").read_text())["train_images"]) // 32
    for path in (reference, run):
        optimizer = keras.saving.load_model(path / "checkpoint" / "last.keras").optimizer
        assert int(optimizer.iterations) == 3 * steps_per_epoch
    assert_same_weights(weights(reference / "model.keras"), weights(run / "model.keras"), atol=1e-5)


class PoisonWeights(keras.callbacks.Callback):
    """Turns the weights into NaN at the start of epoch `epoch` (0-based)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            for variable in self.model.trainable_variables:
                variable.assign(variable * np.nan)


def test_nan_keeps_the_last_good_checkpoint(shapes_folder, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(CifarlabError, match="NaN") as error:
        train(TrainConfig(data=str(shapes_folder), model="fast", out=out, epochs=3, **QUICK),
              extra_callbacks=[PoisonWeights(1)])
    assert "epoch 2" in str(error.value) and "epoch 1" in str(error.value)
    assert read_epoch(out) == 1
    assert all(np.isfinite(w).all() for w in weights(out / "checkpoint" / "last.keras"))
    assert not (out / "model.keras").exists()


def test_nan_in_the_first_epoch_exits_2_without_a_model(shapes_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--data", str(shapes_folder), "--image-size", "32", "--model", "fast",
                 "--epochs", "2", "--batch-size", "32", "--lr", "1e6", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "NaN" in err and "no checkpoint" in err
    assert not (out / "model.keras").exists() and read_epoch(out) == 0
