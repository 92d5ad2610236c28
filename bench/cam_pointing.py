"""Class-activation-map methods compared: where they point, whether that depends on the trained
weights, and what they cost. The measurements behind `CamExplainer(method="auto")`.

(a) Pointing game on generated data (tests/test_cam.py's generators and scorer): a `fast`
    (16, 32, 32) model trained per --seeds on 32x32 clutter with one 8x8 shape (4 classes);
    per method the share of held-out images whose map peak (true class) falls in the object's
    box + 1 px, for the trained model and for a copy with each weight tensor shuffled (a
    faithful map must lose it), and on two-object images the share pointing at the object of the
    asked class (`own`) and at the other one (`other`: class-blind maps score high here too).
    The same on the `baseline` architecture (Flatten -> Dense head, no plain CAM; one seed,
    more data: a Flatten head learns each object position apart).
(b) On the shipped models/cifar10-fast.keras (if present): time per image of `explain` at batch
    1 and 256, also as a ratio to a plain forward pass timed alongside (steadier on a shared
    machine); and, on --cifar-images test images of the shared CIFAR-10 copy (if present),
    insertion / deletion AUC: the top-class probability while the image is restored from a
    blurred copy in map order (insertion, higher = better) or blurred in map order (deletion,
    lower = better), with a random map as the reference.

    python bench/cam_pointing.py [--parts synthetic baseline timing cifar] [--seeds 0 1 2] [--model M]
writes bench/results/cam_pointing.json; each part replaces only its own section (each takes
2-5 minutes on 2 busy cores). `--quick`: one seed, 64 images, one epoch, every fourth method,
timing at batch 16, a temp folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
import record
from _common import CIFAR10_JPEG
from test_cam import (
    SHAPES,
    SIZE,
    pointing_data,
    pointing_hits,
    shuffled_copy,
    train_pointing_model,
    two_object_data,
)


SHIPPED = ROOT / "models" / "cifar10-fast.keras"

# (name, method, stages, aligned): stages count from the last feature stage (-1). On `fast` at
# 32 px the stages are 31x31 (stem), 15x15, 7x7 and 3x3; on `baseline` 32, 16, 8 and 4.
CONFIGS = [
    ("cam", "cam", (-1,), True),
    ("cam naive-resize", "cam", (-1,), False),
    ("gradcam@-1", "gradcam", (-1,), True),
    ("gradcam@-2", "gradcam", (-2,), True),
    ("gradcam@-3", "gradcam", (-3,), True),
    ("layercam@-1", "layercam", (-1,), True),
    ("layercam@-2", "layercam", (-2,), True),
    ("layercam@-3", "layercam", (-3,), True),
    ("layercam@-4", "layercam", (-4,), True),
    ("layercam@-2,-1", "layercam", (-2, -1), True),
    ("layercam@-3,-2", "layercam", (-3, -2), True),
    ("layercam@-3,-2 naive-resize", "layercam", (-3, -2), False),
    ("layercam@-3,-2,-1", "layercam", (-3, -2, -1), True),
]


def explainer(model, method, stages, aligned):
    from cifarlab.inference.cam import CamExplainer

    return CamExplainer(model, method, stages=stages, aligned=aligned)


def pointing(model, configs, test, two) -> dict:
    images, labels, boxes = test
    timages, labels_a, boxes_a, labels_b, boxes_b = two
    shuffled = shuffled_copy(model)
    out = {}
    for name, method, stages, aligned in configs:
        e = explainer(model, method, stages, aligned)
        maps_a = e.explain(timages, labels_a)[0]
        maps_b = e.explain(timages, labels_b)[0]
        out[name] = {
            "trained": float(pointing_hits(e.explain(images, labels)[0], boxes).mean()),
            "shuffled": float(pointing_hits(explainer(shuffled, method, stages, aligned)
                                            .explain(images, labels)[0], boxes).mean()),
            "two_object_own": float((pointing_hits(maps_a, boxes_a).mean() + pointing_hits(maps_b, boxes_b).mean()) / 2),
            "two_object_other": float((pointing_hits(maps_a, boxes_b).mean() + pointing_hits(maps_b, boxes_a).mean()) / 2),
        }
    return out


def train_baseline(seed: int, n: int, epochs: int):
    import keras
    from test_cam import baseline_name

    from cifarlab.data.stats import channel_stats
    from cifarlab.models.registry import build_model

    keras.utils.set_random_seed(seed)
    images, labels, _ = pointing_data(n, seed=1000 + seed)
    mean, std = channel_stats(images)
    model = build_model(baseline_name(), (SIZE, SIZE), len(SHAPES), mean, std, dropout=0.0)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=epochs, batch_size=64, verbose=0)
    return model


def timing(model, configs, batch_runs: int, single_runs: int, batch_size: int = 256) -> dict:
    """explain() time per image at batch 1 and `batch_size`, each run paired with a plain forward pass
    (one traced call) right before it: on a shared machine the ratio to that pass is the steadier
    figure; times are medians over the runs."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    batch = rng.integers(0, 256, (batch_size, *size, 3), dtype=np.uint8)
    forward = tf.function(lambda x: model(x, training=False))

    def predict(images):
        return forward(images).numpy()

    def paired(fn, images, runs):
        for _ in range(2):  # warm-up: trace + first run
            predict(images)
            fn(images)
        base, times = [], []
        for _ in range(runs):
            for target, f in ((base, predict), (times, fn)):
                start = time.perf_counter()
                f(images)
                target.append(time.perf_counter() - start)
        per_image = 1000 * statistics.median(times) / len(images)
        return round(per_image, 3), round(statistics.median(times) / statistics.median(base), 2)

    out = {}
    for name, method, stages, aligned in configs:
        e = explainer(model, method, stages, aligned)
        b1, r1 = paired(e.explain, batch[:1], single_runs)
        bn, rn = paired(e.explain, batch, batch_runs)
        out[name] = {"batch1_ms": b1, "batch1_x_predict": r1, f"batch{batch_size}_ms": bn,
                     f"batch{batch_size}_x_predict": rn}
    b1, _ = paired(predict, batch[:1], single_runs)
    bn, _ = paired(predict, batch, batch_runs)
    out["predict only"] = {"batch1_ms": b1, f"batch{batch_size}_ms": bn}
    return out


def cifar_images(folder: Path, classes, per_class: int) -> np.ndarray:
    import cv2

    images = []
    for name in classes:
        files = sorted((folder / "test" / name).iterdir())[:per_class]
        images += [cv2.imread(str(f), cv2.IMREAD_COLOR)[..., ::-1] for f in files]
    return np.stack(images)


def insertion_deletion(model, images: np.ndarray, maps: np.ndarray, steps: int = 11) -> dict:
    """AUC over the fraction of pixels (0..1) of the top-class probability while pixels are
    restored from a blurred copy (insertion) or blurred (deletion) in decreasing map order."""
    import cv2

    blurred = np.stack([cv2.GaussianBlur(i, (0, 0), 4) for i in images])
    top = model.predict(images, batch_size=256, verbose=0).argmax(1)
    n, h, w = maps.shape
    order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")
    fractions = np.linspace(0, 1, steps)
    curves = {"insertion": [], "deletion": []}
    for f in fractions:
        mask = np.zeros((n, h * w), bool)
        np.put_along_axis(mask, order[:, : round(f * h * w)], True, axis=1)
        mask = mask.reshape(n, h, w, 1)
        for kind, x in (("insertion", np.where(mask, images, blurred)), ("deletion", np.where(mask, blurred, images))):
            curves[kind].append(model.predict(x, batch_size=256, verbose=0)[np.arange(n), top].mean())
    return {kind: round(float(np.trapezoid(c, fractions)), 4) for kind, c in curves.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=("synthetic", "baseline", "timing", "cifar"),
                        default=["synthetic", "baseline", "timing", "cifar"],
                        help="run only these parts; the others keep their results in --out")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-images", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--test-images", type=int, default=300)
    parser.add_argument("--baseline-images", type=int, default=10000,
                        help="its Flatten head learns each object position apart: it needs more data")
    parser.add_argument("--baseline-epochs", type=int, default=10)
    parser.add_argument("--model", type=Path, default=SHIPPED)
    parser.add_argument("--cifar", type=Path, default=CIFAR10_JPEG)
    parser.add_argument("--cifar-images", type=int, default=20, help="per class")
    parser.add_argument("--single-runs", type=int, default=30)
    parser.add_argument("--batch-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/cam_pointing.json")
    record.add_quick_option(parser)
    args = parser.parse_args(argv)
    run = record.begin(args.quick)
    args.configs, args.timing_batch = CONFIGS, 256
    if args.quick:
        args.seeds, args.train_images, args.epochs, args.test_images = [0], 64, 1, 16
        args.baseline_images, args.baseline_epochs, args.cifar_images = 64, 1, 1
        args.single_runs, args.batch_runs, args.configs, args.timing_batch = 2, 1, CONFIGS[::4], 16
    args.out = args.out or run.path("cam_pointing.json")
    report = record.results_of(json.loads(args.out.read_text())) if args.out.is_file() else {}
    report["what"] = ("pointing game (map peak in the 8x8 object's box + 1 px) on generated 32x32 clutter, "
                      "trained vs weight-shuffled model, two-object class selectivity; explain() time per "
                      "image and insertion/deletion AUC on the shipped CIFAR-10 model")
    report["configs"] = {name: {"method": method, "stages": list(stages), "aligned": aligned}
                         for name, method, stages, aligned in CONFIGS}
    from cifarlab.inference.cam import AUTO_METHOD, DEFAULT_STAGES

    report["auto"] = {head: f"{method}@{','.join(map(str, DEFAULT_STAGES[method]))}"
                      for head, method in AUTO_METHOD.items()}
    report["auto_note"] = ("global_pool: global pooling -> Dense head (`fast`); other: e.g. Flatten -> Dense "
                           "(`baseline`). Chosen for the pointing game, then class selectivity on two-object "
                           "images (own high, other low), then insertion AUC on CIFAR-10")
    if "synthetic" in args.parts:
        report["synthetic"] = {**synthetic_part(args), "run": section_run(run)}
        run.write(args.out, report)
    if "baseline" in args.parts:
        report["baseline"] = {**baseline_part(args), "run": section_run(run)}
        run.write(args.out, report)
    if "timing" in args.parts or "cifar" in args.parts:
        shipped = shipped_part(args, report.get("shipped"), section_run(run))
        if shipped:
            report["shipped"] = shipped
        run.write(args.out, report)
    print(f"-> {args.out}")
    return 0


def section_run(run: record.BenchRun) -> dict:
    """Which run measured a section (sections of earlier runs are kept): its command, date, load."""
    return {key: value for key, value in run.fields().items() if key in ("command", "date", "load")}


def synthetic_part(args) -> dict:
    test = pointing_data(args.test_images, seed=7)
    two = two_object_data(args.test_images, seed=11)
    per_seed = {}
    for seed in args.seeds:
        start = time.perf_counter()
        model = train_pointing_model(seed, n=args.train_images, epochs=args.epochs)
        train_s = time.perf_counter() - start
        accuracy = float((model.predict(test[0], verbose=0).argmax(1) == test[1]).mean())
        per_seed[str(seed)] = {"train_s": round(train_s, 1), "accuracy": accuracy,
                               "methods": pointing(model, args.configs, test, two)}
        print(f"seed {seed}: trained in {train_s:.0f} s, accuracy {accuracy:.3f}", flush=True)
    summary = {}
    for name, *_ in args.configs:
        rows = [run["methods"][name] for run in per_seed.values()]
        summary[name] = {key: {"mean": round(float(np.mean([r[key] for r in rows])), 4),
                               "min": round(float(np.min([r[key] for r in rows])), 4),
                               "max": round(float(np.max([r[key] for r in rows])), 4)}
                         for key in rows[0]}
        s = summary[name]
        print(f"  {name:28s} trained {s['trained']['mean']:.3f} (min {s['trained']['min']:.3f})  shuffled "
              f"{s['shuffled']['mean']:.3f} (max {s['shuffled']['max']:.3f})  two-object own "
              f"{s['two_object_own']['mean']:.3f} other {s['two_object_other']['mean']:.3f}", flush=True)

    return {"train_images": args.train_images, "epochs": args.epochs, "test_images": args.test_images,
            "seeds": args.seeds, "model": "fast widths (16, 32, 32), Adam 3e-3, batch 64",
            "summary": summary, "per_seed": per_seed}


def baseline_part(args) -> dict:
    test = pointing_data(args.test_images, seed=7)
    two = two_object_data(args.test_images, seed=11)
    seed = args.seeds[0]
    start = time.perf_counter()
    model = train_baseline(seed, args.baseline_images, args.baseline_epochs)
    train_s = time.perf_counter() - start
    configs = [c for c in args.configs if c[1] != "cam" and "-4" not in c[0]]
    accuracy = float((model.predict(test[0], verbose=0).argmax(1) == test[1]).mean())
    result = {"seed": seed, "train_images": args.baseline_images, "epochs": args.baseline_epochs,
              "model": "baseline, dropout 0 (learns faster here), Adam 2e-3, batch 64",
              "train_s": round(train_s, 1), "accuracy": accuracy, "methods": pointing(model, configs, test, two)}
    print(f"baseline: trained in {train_s:.0f} s, accuracy {accuracy:.3f}")
    for name, row in result["methods"].items():
        print(f"  {name:28s} trained {row['trained']:.3f}  shuffled {row['shuffled']:.3f}  "
              f"two-object own {row['two_object_own']:.3f} other {row['two_object_other']:.3f}", flush=True)
    return result


def shipped_part(args, previous: dict | None, run: dict) -> dict | None:
    if not args.model.is_file():
        print(f"{args.model} absent: no timing / CIFAR part")
        return None
    from cifarlab.models.io import load_keras_model
    from cifarlab.models.openset import without_ood_score

    model, meta = load_keras_model(args.model)
    model = without_ood_score(model)  # the maps explain the classifier
    name = args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model
    out = dict(previous or {}, model=str(name))
    if "timing" in args.parts:
        n = args.timing_batch
        out["time_per_image"] = timing(model, args.configs, args.batch_runs, args.single_runs, n)
        out["timing_run"] = run
        for config, row in out["time_per_image"].items():
            print(f"  {config:28s} {row['batch1_ms']:.2f} ms/image at batch 1 (x{row.get('batch1_x_predict', 1)} "
                  f"predict), {row[f'batch{n}_ms']:.3f} at {n} (x{row.get(f'batch{n}_x_predict', 1)})", flush=True)
    if "cifar" in args.parts and args.cifar.is_dir():
        images = cifar_images(args.cifar, meta.class_names, args.cifar_images)
        rng = np.random.default_rng(0)
        scores = {"random map": insertion_deletion(model, images, rng.random((len(images), *images.shape[1:3])))}
        for config, method, stages, aligned in args.configs:
            maps = explainer(model, method, stages, aligned).explain(images)[0]
            scores[config] = insertion_deletion(model, images, maps)
        for config, row in scores.items():
            print(f"  {config:28s} insertion {row['insertion']:.3f} deletion {row['deletion']:.3f}", flush=True)
        out["cifar_test_images"] = len(images)
        out["insertion_deletion_auc"] = scores
        out["cifar_run"] = run
    return out


if __name__ == "__main__":
    raise SystemExit(main())
