"""`cifarlab train --data DIR --from MODEL`: learn new classes from a trained cifarlab model.

The parent network is cut at its feature layer, the input of its `logits` Dense layer (`fast`:
the global max-pool of the last block; `baseline`: its 256-unit dense block), and a new head is
put on it: Dense(number of new classes) named `logits`, then the registry's `softmax_head`. The
images are read at the parent's input size, and the parent's normalization (inside the network)
is kept. The result is an ordinary cifarlab model file: the new class names, the parent's input
size, mean and std, `model` = the parent's architecture, `parent` = the parent's path, the
transfer settings as its recipe.

Two modes (`--transfer`):

- head: every training image and its mirror image go through the frozen network once; a
  multinomial logistic regression (scikit-learn, L2, on centred and scaled features) is fitted to
  those features and copied into the Dense layer. Seconds, even on a busy CPU, so it has no
  checkpoint and no resume: rerunning it is as quick.
- finetune: the head above first (a linear probe: the network starts from a sensible head, not
  a random one that would wreck the features in its first steps), then the whole network
  trains for FINETUNE_STEPS steps: SGD-Nesterov with a short warm-up and cosine decay, label
  smoothing, alternating flips and 2-pixel shifts (training/pipeline.py). BatchNorm layers stay
  in inference mode with their statistics and offsets frozen: batches of 8-32 images of new
  classes would give noisy statistics, and the parent's are a good normalization. It writes
  log.csv and curves.png; it has no resume either (well under a minute).

With a val split (ROOT/<class>/<image> folders always have one; see `--val-fraction`
otherwise) a softmax temperature is fitted on it and the val metrics recorded.

Default mode: finetune, by measurement (`python bench/transfer.py` ->
bench/results/transfer.json): a `fast` backbone trained on five CIFAR-10 classes (91.5% on
them) learns the other five from k training images per class, scored on their 5,000 test
images; seconds of training on the 2-core CPU while other jobs loaded it (load average 6-7):

| k  | scratch (fast recipe, small-data defaults) | head        | finetune     |
|----|--------------------------------------------|-------------|--------------|
| 10 | 48.8%, 19 s                                | 69.1%, 2 s  | 73.0%, 23 s  |
| 25 | 61.2%, 19 s                                | 74.5%, 1 s  | 78.7%, 43 s  |
| 50 | 70.1%, 36 s                                | 76.4%, 6 s  | 80.8%, 43 s  |
| 100| 76.2%, 61 s                                | 78.3%, 9 s  | 82.8%, 51 s  |

finetune is the most accurate at every k (+4 to +5 points over head), within a minute. head
is the choice when seconds matter (a live camera: `--transfer head`). Tuning notes, k = 50:
the head's L2 strength hardly matters (C 0.01-1: 75.4-76.7%), mirror features add ~1 point;
finetune at lr 0.01 diverged, 0.003 gave 78.4%, 0.005 with 300 steps 80.8%; BatchNorm trained
instead of frozen did as well at k = 50 (80.5%) but fell to 65.6% at k = 10 (batches of 8).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from cifarlab import __version__
from cifarlab.atomic import write_json_atomic
from cifarlab.data import Dataset, Split, save_split_record, with_validation
from cifarlab.errors import CifarlabError
from cifarlab.models.io import load_keras_model, resolve_model_path, save_model_file
from cifarlab.models.metadata import ModelMetadata
from cifarlab.models.registry import softmax_head
from cifarlab.training.calibration import fit_temperature, probability_metrics
from cifarlab.training.config import DEFAULT_TRANSFER, TrainConfig
from cifarlab.training.curves import CURVES_FILE, Curves
from cifarlab.training.pipeline import Augment, train_dataset
from cifarlab.training.train import SPLITS_FILE, all_layers, class_balance, load_data

FEATURE_INPUT_OF = "logits"  # the parent's layer whose input is the feature vector
HEAD_C = 0.1                 # inverse L2 strength of the logistic regression (scaled features)
FINETUNE_STEPS = 300         # optimizer steps of a finetune run...
FINETUNE_EPOCHS = (10, 100)  # ...within this many epochs
FINETUNE_MAX_BATCH = 32
FINETUNE_LR = 0.005          # 0.01 diverged (BatchNorm frozen, the net is no longer scale-invariant)
FINETUNE_LABEL_SMOOTHING = 0.1
FINETUNE_TRANSLATE = 2
WARMUP_SHARE = 0.1
FREEZE_BATCHNORM = True      # BatchNorm in inference mode while fine-tuning (see the docstring)


@dataclasses.dataclass
class Parent:
    model: keras.Model
    meta: ModelMetadata
    path: Path

    @property
    def side(self) -> int:
        return self.meta.input_size[0]


def open_parent(path: str | Path | None) -> Parent:
    path = resolve_model_path(path or None)
    if path.suffix.lower() != ".keras":
        raise CifarlabError(f"--from {path}: a .keras model made by cifarlab is needed to learn from "
                            "(exported .tflite/.onnx files cannot be trained)")
    model, meta = load_keras_model(path)
    height, width = meta.input_size
    if height != width:
        raise CifarlabError(f"--from {path}: its input is {height}x{width}; only square inputs can "
                            "be learned from")
    try:
        model.get_layer(FEATURE_INPUT_OF)
    except ValueError:
        raise CifarlabError(f"--from {path}: no layer named '{FEATURE_INPUT_OF}' to cut the network "
                            "at; use a model trained by cifarlab") from None
    return Parent(model, meta, path)


def check_image_size(requested: int | None, parent: Parent) -> None:
    if requested is not None and requested != parent.side:
        raise CifarlabError(
            f"--image-size {requested} does not match the {parent.side}x{parent.side} input of "
            f"--from {parent.path}: images are read at the model's input size; drop --image-size "
            f"(the data is resized to {parent.side}), or train from scratch without --from")


def feature_extractor(model: keras.Model) -> keras.Model:
    return keras.Model(model.input, model.get_layer(FEATURE_INPUT_OF).input)


def features_with_mirrors(extractor: keras.Model, images: np.ndarray) -> np.ndarray:
    """Features of the images, then of their mirror images (a free doubling of the data)."""
    both = np.concatenate([images, images[:, :, ::-1]])
    return extractor.predict(both, batch_size=256, verbose=0).astype(np.float64)


def fit_head(features: np.ndarray, labels: np.ndarray, num_classes: int,
             class_weight: dict | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of a Dense layer: multinomial logistic regression on centred features
    divided by their overall standard deviation, that scaling folded into the weights."""
    from sklearn.linear_model import LogisticRegression  # slow import: only when needed

    present = np.unique(labels)
    if len(present) < 2:
        raise CifarlabError("the training split has images of one class only; a classifier needs "
                            "at least 2 classes")
    # One scale for all features (not one per feature): a feature nearly constant on the few
    # training images would get a huge weight, and fine-tuning through it diverges.
    mean, std = features.mean(0), features.std() + 1e-6
    regression = LogisticRegression(C=HEAD_C, max_iter=2000, class_weight=class_weight,
                                    random_state=seed)
    regression.fit((features - mean) / std, labels)
    kernel = np.zeros((features.shape[1], num_classes))
    bias = np.full(num_classes, -30.0)  # a class without training images is never predicted
    coef = regression.coef_ if len(present) > 2 else np.concatenate([-regression.coef_, regression.coef_]) / 2
    intercept = (regression.intercept_ if len(present) > 2
                 else np.concatenate([-regression.intercept_, regression.intercept_]) / 2)
    kernel[:, present] = coef.T / std
    bias[present] = intercept - coef @ (mean / std)
    return kernel.astype(np.float32), bias.astype(np.float32)


def with_new_head(parent: keras.Model, num_classes: int, kernel: np.ndarray, bias: np.ndarray,
                  temperature: float = 1.0) -> keras.Model:
    """The parent's layers up to the features, then Dense(num_classes) and the softmax head."""
    logits = keras.layers.Dense(num_classes, name="logits")
    outputs = softmax_head(logits(parent.get_layer(FEATURE_INPUT_OF).input), temperature)
    logits.set_weights([kernel, bias])
    return keras.Model(parent.input, outputs, name=parent.name)


def retemper(model: keras.Model, temperature: float) -> keras.Model:
    """The same network with the softmax temperature replaced (shares the layers)."""
    return keras.Model(model.input, softmax_head(model.get_layer("logits").output, temperature),
                       name=model.name)


def finetune_plan(cfg: TrainConfig, train_images: int) -> dict:
    """Batch size, epochs, learning rate... of a finetune run; options given by hand win."""
    fitting = 2 ** int(math.log2(max(1, train_images // 4)))
    batch = cfg.batch_size or min(FINETUNE_MAX_BATCH, max(min(8, train_images), fitting))
    if batch > train_images:
        raise CifarlabError(f"{train_images} training images is fewer than one batch of {batch}; "
                            "lower --batch-size")
    steps = train_images // batch
    low, high = FINETUNE_EPOCHS
    epochs = cfg.epochs or min(high, max(low, math.ceil(FINETUNE_STEPS / steps)))
    return {"batch_size": batch, "epochs": epochs, "steps_per_epoch": steps,
            "lr": cfg.lr or FINETUNE_LR, "optimizer": "sgd-nesterov", "momentum": 0.9,
            "schedule": "warmup-cosine", "warmup_share": WARMUP_SHARE,
            "label_smoothing": (cfg.label_smoothing if cfg.label_smoothing is not None
                                else FINETUNE_LABEL_SMOOTHING),
            "flip": True, "translate": cfg.translate if cfg.translate is not None else FINETUNE_TRANSLATE,
            "batchnorm": "frozen (inference mode)" if FREEZE_BATCHNORM else "trained"}


class EveryNthEpoch(keras.callbacks.Callback):
    """One line per `every` epochs (a finetune run has up to 100 epochs of a few steps)."""

    def __init__(self, every: int):
        super().__init__()
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.params.get("epochs"):
            shown = " - ".join(f"{k}: {float(v):.4f}" for k, v in (logs or {}).items())
            print(f"epoch {epoch + 1}/{self.params.get('epochs')} - {shown}", flush=True)


def finetune(model: keras.Model, split: Split, num_classes: int, plan: dict, seed: int,
             class_weight: dict | None, callbacks: list, verbose: int) -> None:
    total = plan["epochs"] * plan["steps_per_epoch"]
    warmup = max(1, int(plan["warmup_share"] * total))
    schedule = keras.optimizers.schedules.CosineDecay(
        plan["lr"] / 10, decay_steps=max(1, total - warmup), warmup_target=plan["lr"],
        warmup_steps=warmup)
    frozen = [layer for layer in all_layers(model) if FREEZE_BATCHNORM
              and isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    for layer in frozen:
        layer.trainable = False
    try:
        model.compile(keras.optimizers.SGD(schedule, momentum=plan["momentum"], nesterov=True),
                      keras.losses.CategoricalCrossentropy(label_smoothing=plan["label_smoothing"]),
                      metrics=["accuracy"])
        data = train_dataset(split.images, split.labels, num_classes, plan["batch_size"], seed, 0,
                             plan["epochs"], Augment(flip=plan["flip"], translate=plan["translate"]))
        printer = [EveryNthEpoch(max(1, plan["epochs"] // 10))] if verbose else []
        model.fit(data, epochs=plan["epochs"], steps_per_epoch=plan["steps_per_epoch"], shuffle=False,
                  class_weight=class_weight, verbose=0,
                  callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks, *printer])
    finally:
        for layer in frozen:
            layer.trainable = True
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise CifarlabError("fine-tuning diverged (loss became NaN/inf); lower --lr or use "
                            "--transfer head")


def transfer(config: TrainConfig, dataset: Dataset | None = None) -> dict:
    """Learn the classes of `config.data` (or `dataset`) from `config.from_model`; writes
    model.keras and summary.json (and splits.json, log.csv, curves.png) into `config.out`."""
    started = time.perf_counter()
    mode = config.transfer or DEFAULT_TRANSFER
    parent = open_parent(config.from_model)
    check_image_size(config.image_size, parent)
    out = Path(config.out or "runs/transfer")
    cfg = dataclasses.replace(config, out=out, transfer=mode, model=parent.meta.model)
    if (out / "model.keras").exists():
        raise CifarlabError(f"{out} already holds a finished model; choose another --out")
    verbose = 0 if cfg.quiet else 2
    data = load_data(cfg, dataset, image_size=parent.side)
    if data.image_size != parent.meta.input_size:
        raise CifarlabError(f"the data's images are {data.image_size[0]}x{data.image_size[1]}, the "
                            f"model's input {parent.side}x{parent.side}; read them at the model's size")
    if "val" not in data.splits and cfg.val_fraction:
        data = with_validation(data, cfg.val_fraction, cfg.seed)
    train_split, val_split = data.split("train"), data.splits.get("val")
    if val_split is not None and len(val_split) == 0:
        val_split = None
    balance, class_weight = class_balance(data)
    if verbose:
        print(f"learning {data.num_classes} classes from {parent.path} ({parent.meta.model}, "
              f"{parent.side}x{parent.side}), --transfer {mode}")
        print(balance)
    out.mkdir(parents=True, exist_ok=True)
    if data.split_record() is not None:
        save_split_record(data, out / SPLITS_FILE)
    keras.utils.set_random_seed(cfg.seed)

    t0 = time.perf_counter()
    features = features_with_mirrors(feature_extractor(parent.model), train_split.images)
    kernel, bias = fit_head(features, np.concatenate([train_split.labels] * 2), data.num_classes,
                            "balanced" if class_weight else None, cfg.seed)
    model = with_new_head(parent.model, data.num_classes, kernel, bias)
    plan: dict = {"head": "logistic regression on scaled features of the images and their "
                          f"mirror images, C={HEAD_C}"}
    if mode == "finetune":
        plan.update(finetune_plan(cfg, len(train_split)))
        callbacks = [keras.callbacks.CSVLogger(str(out / "log.csv")),
                     Curves(out / CURVES_FILE, title=f"{mode}: {out}")]
        finetune(model, train_split, data.num_classes, plan, cfg.seed, class_weight, callbacks, verbose)
    train_seconds = time.perf_counter() - t0

    temperature = fit_temperature(model, val_split) if val_split is not None else 1.0
    if temperature != 1.0:
        model = retemper(model, temperature)
    val_metrics = probability_metrics(model, val_split) if val_split is not None else {}
    recipe = {"transfer": mode, "from": str(parent.path), "seed": cfg.seed,
              "temperature": temperature, **plan}
    meta = ModelMetadata(
        class_names=tuple(data.class_names), input_size=parent.meta.input_size,
        mean=parent.meta.mean, std=parent.meta.std, model=parent.meta.model,
        dataset_fingerprint=data.fingerprint, dataset_format=data.format, command=cfg.command,
        version=__version__, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        val_metrics=val_metrics, recipe=recipe, splits=data.split_record() or {},
        parent=str(parent.path))
    save_model_file(model, out / "model.keras", meta)
    summary = {
        "out": str(out), "model": parent.meta.model, "transfer": mode, "parent": str(parent.path),
        "train_seconds": train_seconds, "session_seconds": time.perf_counter() - started,
        "epochs_run": plan.get("epochs", 0), "val_metrics": val_metrics,
        "train_images": len(train_split), "val_images": len(val_split) if val_split is not None else 0,
        "dataset_fingerprint": data.fingerprint, "command": cfg.command, "class_weights": class_weight,
        "recipe": recipe, "curves": CURVES_FILE if (out / CURVES_FILE).exists() else None,
    }
    write_json_atomic(out / "summary.json", summary)
    if verbose:
        print(json.dumps({"model": str(out / "model.keras"), "train_seconds": round(train_seconds, 1),
                          **val_metrics}))
    return summary
