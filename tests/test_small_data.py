"""Small data trains correctly: a ROOT/<class>/<image> folder with no flags, the small-data
defaults (applied only where not set, printed), the split recorded in the run and reused on
resume after images were added, class weights for imbalanced classes, curves.png."""

from __future__ import annotations

import json

import cv2
import keras
import pytest
from helpers.images import SHAPE_CLASSES, write_flat

from cifarlab.cli.main import main
from cifarlab.data import load_dataset
from cifarlab.errors import CifarlabError
from cifarlab.inference import open_classifier
from cifarlab.models.io import read_metadata
from cifarlab.training.config import TrainConfig
from cifarlab.training.small_data import small_data_defaults
from cifarlab.training.train import train


@pytest.mark.slow
def test_flat_folder_trains_with_no_flags_and_beats_chance(tmp_path, capsys):
    root = write_flat(tmp_path / "flat", {c: 20 for c in SHAPE_CLASSES})
    out = tmp_path / "run"
    assert main(["train", "--data", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # 20 per class -> 14/3/3; 42 training images -> batch 8, lr 1.5 x 8/1024, >= 300 steps
    assert "small data (42 training images): batch size 8" in printed
    assert "lr 0.011719" in printed and "epochs 60" in printed
    assert "training images per class: circle 14, square 14, triangle 14" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["small_data"] == {"batch_size": 8, "lr": 0.011719, "epochs": 60}
    assert summary["epochs_run"] == 60 and summary["class_weights"] is None
    meta = read_metadata(out / "model.keras")
    assert meta.recipe["batch_size"] == 8 and meta.splits["counts"] == {"train": 42, "val": 9, "test": 9}
    # the held-out test images, scored by the saved model
    test = load_dataset(root, split_record=out / "splits.json").split("test")
    accuracy = (open_classifier(out / "model.keras", backend="keras").predict(test.images).argmax(1)
                == test.labels).mean()
    assert accuracy >= 0.75, accuracy
    # curves.png: a valid PNG, named in the summary
    assert summary["curves"] == "curves.png"
    image = cv2.imread(str(out / "curves.png"))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100


def test_small_data_defaults_apply_only_where_not_set():
    fast = small_data_defaults(TrainConfig(model="fast"), 140, 10, val_from_train=False)
    assert fast == {"batch_size": (32, fast["batch_size"][1]), "lr": (0.046875, fast["lr"][1]),
                    "epochs": (75, fast["epochs"][1]), "bn_momentum": (0.9667, fast["bn_momentum"][1])}
    # given by hand: kept; the learning rate still follows the hand-given batch
    hand = small_data_defaults(TrainConfig(model="fast", batch_size=16, epochs=5, bn_momentum=0.9),
                               140, 10, val_from_train=False)
    assert set(hand) == {"lr"} and hand["lr"][0] == pytest.approx(1.5 * 16 / 1024, abs=1e-6)
    assert small_data_defaults(TrainConfig(model="fast", batch_size=16, lr=0.1, epochs=5,
                                           bn_momentum=0.9), 140, 10, False) == {}
    # baseline (Adam): no lr scaling; its 0.99 BatchNorm momentum is capped; val share for 5/class
    base = small_data_defaults(TrainConfig(model="baseline"), 200, 10, val_from_train=True)
    assert base["val_fraction"][0] == 0.2 and "lr" not in base
    assert base["batch_size"][0] == 32 and "epochs" not in base  # 5 steps x 60 epochs >= 300
    assert base["bn_momentum"][0] == 0.9667  # 1 - 10/(5 steps x 60 epochs)
    # CIFAR-sized: nothing changes (fast's BatchNorm is at 0.6, under the cap)
    assert set(small_data_defaults(TrainConfig(model="fast"), 50000, 10, True)) <= {"bn_momentum"}
    assert small_data_defaults(TrainConfig(model="baseline"), 50000, 10, True) == {}
    # 2 classes x 10 images (8 train each): runs
    tiny = small_data_defaults(TrainConfig(model="fast"), 16, 2, val_from_train=False)
    assert tiny["batch_size"][0] == 8 and tiny["epochs"][0] == 150


@pytest.mark.slow
def test_baseline_batchnorm_momentum_lowered_and_printed(tmp_path, capsys):
    root = write_flat(tmp_path / "flat", {"circle": 10, "square": 10})
    out = tmp_path / "run"
    assert main(["train", "--data", str(root), "--model", "baseline", "--epochs", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "BatchNorm momentum 0.5 (model: 0.99" in printed
    model = keras.saving.load_model(out / "model.keras", compile=False)
    momenta = {l.momentum for l in model.layers if isinstance(l, keras.layers.BatchNormalization)}
    assert momenta == {0.5}
    assert read_metadata(out / "model.keras").recipe["bn_momentum"] == 0.5


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


@pytest.mark.slow
def test_split_recorded_in_the_run_and_reused_on_resume_after_adding_images(tmp_path):
    root = write_flat(tmp_path / "flat", {"circle": 12, "square": 12, "triangle": 12})
    config = dict(data=str(root), out=tmp_path / "run", epochs=2, quiet=True)
    with pytest.raises(CifarlabError, match="interrupted"):
        train(TrainConfig(**config), extra_callbacks=[StopAfterFirstEpoch()])
    first = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert first["counts"] == {"train": 30, "val": 3, "test": 3}
    chosen = json.loads((tmp_path / "run" / "small_data.json").read_text())
    # images added: a fresh draw would move some into val/test; the resumed run keeps the record
    write_flat(root, {"circle": 6, "square": 6, "triangle": 6}, seed=5, start=100)
    assert load_dataset(root, split_seed=0).split_files["val"] != first["files"]["val"]
    summary = train(TrainConfig(**config))
    assert summary["epochs_run"] == 2 and summary["train_images"] == 48
    meta = read_metadata(tmp_path / "run" / "model.keras")
    assert meta.splits["files"]["val"] == first["files"]["val"]
    assert meta.splits["files"]["test"] == first["files"]["test"]
    assert sum("/01" in f for f in meta.splits["files"]["train"]) == 18  # the added ones
    # the small-data values were chosen once, from the first 30 images, and kept
    assert summary["small_data"]["batch_size"] == chosen["chosen"]["batch_size"][0] == 8


@pytest.mark.slow
def test_imbalanced_classes_are_weighted_and_counts_printed(tmp_path, capsys):
    root = write_flat(tmp_path / "flat", {"circle": 40, "square": 10})
    out = tmp_path / "run"
    assert main(["train", "--data", str(root), "--epochs", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "training images per class: circle 28, square 8; imbalanced, so classes are weighted" in printed
    weights = json.loads((out / "summary.json").read_text())["class_weights"]
    assert weights["1"] == pytest.approx(36 / (2 * 8)) and weights["0"] == pytest.approx(36 / (2 * 28))
