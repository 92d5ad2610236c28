"""What a camera sees: CIFAR-10 models on real photos of their classes and of none of them.

    python bench/real_photos.py models/cifar10-fast.keras [OTHER.keras ...] [--tta] [--name NAME]

Data (`_common.SHARED`, read its tinyimagenet-subsets/README.md): Tiny ImageNet's 64x64 photos,
resized to the model's input by `resize_rgb` (the one preprocessing path), and CIFAR-10 JPEG.
Per model:
- real_in_class: top-1 (argmax over all the model's classes) on the cifar-classes photos (7 of
  CIFAR-10's classes; evaluation only), overall and per class; the share the model's own score
  flags unknown at its own threshold, and the share whose top probability is below 50%;
- cifar_test: the same on the CIFAR-10 test split;
- held_out_outliers: the outlier classes `_common.outlier_split` holds out of outlier training:
  the share flagged, the share given a class at >= 50%; AUROC / FPR95 of the model's own score
  (`own`) and of every post-hoc score of models/openset.py against CIFAR-10 test and against the
  real in-class photos. Post-hoc statistics: STATISTICS_IMAGES CIFAR-10 training images, fitted
  as `cifarlab train` and bench/open_set.py do.
- outliers_flagged_at_real_flagged: the share of outliers the model's score flags at the
  thresholds that flag REAL_FLAGGED of the real in-class photos (a trade-off curve to read;
  the model's threshold is fitted on validation, never here).
--tta: also the top-1 of the probabilities, and that curve for the score, averaged over each
image and its mirror image.
--fit-on DIR: real photos of some of the classes, DIR/<class>/<image>, never the evaluation ones
(e.g. the held-out `cifar-classes-train` photos of a camera data folder's val split): the score
(and with --tta its mirror-averaged form) gets the threshold that keeps --keep of them, and the
record says what that threshold flags (`at_threshold_fitted_on`).
Writes bench/results/real_photos[-NAME].json and prints one row per model.
`--quick`: generated data in the same folder layout, an untrained model with the open-set output.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarlab.data import CIFAR10_CLASSES, Split, load_dataset
from cifarlab.data.folder import list_class_files, load_image_folder
from cifarlab.errors import CifarlabError
from cifarlab.evaluation.metrics import expected_calibration_error
from cifarlab.evaluation.openset import ood_metrics
from cifarlab.evaluation.tta import mirror
from cifarlab.inference import open_classifier
from cifarlab.inference.rejection import rejection_for
from cifarlab.models import openset
from cifarlab.models.io import read_metadata
from cifarlab.training.calibration import outputs_in_batches
from cifarlab.training.openset import training_features

import record
from _common import CIFAR10_JPEG, TINY_IMAGENET, outlier_split, tiny_image_folder, untrained_fast_model

DEFAULT_MODEL = Path("models/cifar10-fast.keras")
STATISTICS_IMAGES = 5000  # CIFAR-10 training images the post-hoc statistics are fitted on
CONFIDENT = 0.5           # a top probability at least this is "given a class"
REAL_FLAGGED = (0.05, 0.08, 0.10)  # trade-off: outliers flagged where these shares of real photos are
QUICK_SPLITS = {"train": 300, "test": 200}


@dataclass(frozen=True)
class Photos:
    """Every image set at one input size; labels are CIFAR-10 class indices (outliers: indices
    into `outlier_classes`)."""

    cifar_train: Split
    cifar_test: Split
    real: Split
    outliers: Split
    outlier_classes: list[str]


def class_images(root: Path, classes: list[str], size: tuple[int, int]) -> Split:
    """The images of ROOT/<class>/<image> for the folders named in `classes`, labelled by their
    index in `classes`, at `size`."""
    found, items = list_class_files(root)
    chosen = [(path, classes.index(found[label])) for path, label in items if found[label] in classes]
    return load_image_folder({"all": chosen}, size, progress=False)["all"]


@functools.cache
def load_photos(subsets: Path, cifar: Path, size: tuple[int, int], use_cache: bool) -> Photos:
    """Every image set at the input `size` (read once per size)."""
    if size[0] != size[1]:
        raise CifarlabError(f"input size {size}: this bench reads CIFAR-10 at square sizes only")
    data = load_dataset(cifar, image_size=size[0], use_cache=use_cache, progress=False)
    if data.class_names != list(CIFAR10_CLASSES):
        raise CifarlabError(f"{cifar}: classes {data.class_names} are not CIFAR-10's")
    _, held_out = outlier_split(subsets / "other-classes")
    photos = Photos(data.split("train"), data.split("test"),
                    class_images(subsets / "cifar-classes", list(CIFAR10_CLASSES), size),
                    class_images(subsets / "other-classes", held_out, size), held_out)
    print(f"[data] {size[0]}x{size[1]}: CIFAR-10 train {len(photos.cifar_train)}, test "
          f"{len(photos.cifar_test)}; real in-class {len(photos.real)}; held-out outliers "
          f"{len(photos.outliers)} ({len(held_out)} classes)", flush=True)
    return photos


def check_classes(path: Path) -> None:
    """A clear error unless the model file's classes are CIFAR-10's, in CIFAR-10's order."""
    names = list(read_metadata(path).class_names)
    if names != list(CIFAR10_CLASSES):
        raise CifarlabError(f"{path}: its classes ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''}) "
                            f"are not CIFAR-10's ({', '.join(CIFAR10_CLASSES)}); this bench measures "
                            "CIFAR-10 models")


def model_outputs(classifier, extractor, images: np.ndarray, tta: bool) -> dict[str, np.ndarray | None]:
    """Probabilities and the model's own score (its runtime path), features and logits, and with
    `tta` the probabilities averaged over the image and its mirror image."""
    probs, own = classifier.predict_scored(images)
    features, logits = outputs_in_batches(extractor, images)
    out = {"probs": probs, "own": own, "features": features, "logits": logits}
    if tta:
        flip_probs, flip_own = classifier.predict_scored(mirror(images))
        out["flip_probs"] = (probs + flip_probs) / 2
        out["flip_own"] = None if own is None else (own + flip_own) / 2
    return out


def post_hoc_scores(out: dict, statistics: openset.Statistics) -> dict[str, np.ndarray]:
    """Every score of models/openset.py, and the model's own as `own` when it has one."""
    scores = {kind: np.asarray(openset.score(kind, out["features"], out["logits"], statistics.arrays(kind)))
              for kind in openset.SCORES}
    return {"own": out["own"], **scores} if out["own"] is not None else scores


def flagged_share(out: dict, rejection) -> float | None:
    return float(rejection.unknown(out["own"]).mean()) if rejection.active else None


def top1(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


def classified(out: dict, labels: np.ndarray, rejection) -> dict:
    """Top-1, share flagged unknown, share below CONFIDENT, mean confidence and ECE of images of
    the model's classes (confidence above top-1: over-confident)."""
    result = {"images": len(labels), "top1": top1(out["probs"], labels),
              "flagged": flagged_share(out, rejection),
              "below_50": float((out["probs"].max(1) < CONFIDENT).mean()),
              "confidence": float(out["probs"].max(1).mean()),
              "ece": expected_calibration_error(labels, out["probs"])[0]}
    if "flip_probs" in out:
        result["flip_top1"] = top1(out["flip_probs"], labels)
    return result


def trade_off(outs: dict, key: str) -> dict | None:
    """The share of outliers the score `key` flags at the thresholds that flag REAL_FLAGGED of the
    real in-class photos (a curve to read, not a threshold to choose: that is fitted on validation)."""
    inside, outside = outs["real_in_class"].get(key), outs["outliers"].get(key)
    if inside is None or outside is None:
        return None
    return {f"{share:.0%}": float((outside > np.quantile(inside, 1 - share)).mean()) for share in REAL_FLAGGED}


def rows(out: dict, mask: np.ndarray) -> dict:
    return {key: value[mask] if value is not None else None for key, value in out.items()}


def real_section(out: dict, labels: np.ndarray, rejection) -> dict:
    per_class = {CIFAR10_CLASSES[c]: classified(rows(out, labels == c), labels[labels == c], rejection)
                 for c in np.unique(labels)}
    return {**classified(out, labels, rejection), "per_class": per_class}


def outlier_section(out: dict, scores: dict, classes: list[str], rejection) -> dict:
    """What the model says of the held-out outliers; each score against CIFAR-10 test and the real
    in-class photos (`scores`: set -> score name -> (N,) scores)."""
    threshold = {"own": rejection.threshold}
    return {"classes": classes, "images": len(out["probs"]), "flagged": flagged_share(out, rejection),
            "confident": float((out["probs"].max(1) >= CONFIDENT).mean()),
            "scores": {kind: {f"vs_{inside}": ood_metrics(scores[inside][kind], outside, threshold.get(kind))
                              for inside in ("cifar_test", "real_in_class")}
                       for kind, outside in scores["outliers"].items()}}


def fitted_threshold_shares(outs: dict, fit: dict, keep: float) -> dict:
    """Per score (`own`, `flip_own`): the shares of each set flagged at the threshold that keeps
    `keep` of the `fit` photos."""
    shares = {}
    for key in ("own", "flip_own"):
        if fit.get(key) is not None:
            threshold = float(np.quantile(fit[key], keep))
            shares[key] = {"threshold": threshold, **{name: float((out[key] > threshold).mean())
                                                     for name, out in outs.items()}}
    return shares


def measure(path: Path, photos_of, tta: bool, fit_on: Path | None = None, keep: float = 0.92) -> dict:
    """Every figure of one model file."""
    classifier = open_classifier(path, "keras")
    rejection = rejection_for(classifier, "auto", str(path), say=print)
    base = openset.without_ood_score(classifier.model)
    photos: Photos = photos_of(classifier.input_size)
    sample, features, _ = training_features(base, photos.cifar_train, STATISTICS_IMAGES, seed=0)
    statistics = openset.fit_statistics(features, sample.labels, len(CIFAR10_CLASSES))
    print(f"[{path.name}] post-hoc statistics from {len(sample)} CIFAR-10 training images", flush=True)
    extractor = openset.feature_model(base)
    sets = {"cifar_test": photos.cifar_test.images, "real_in_class": photos.real.images,
            "outliers": photos.outliers.images}
    outs = {}
    for name, images in sets.items():
        outs[name] = model_outputs(classifier, extractor, images, tta)
        print(f"[{path.name}] {name}: {len(images)} images scored", flush=True)
    scores = {name: post_hoc_scores(out, statistics) for name, out in outs.items()}
    fitted = {}
    if fit_on is not None:
        fit = model_outputs(classifier, extractor, class_images(fit_on, list(CIFAR10_CLASSES),
                                                                classifier.input_size).images, tta)
        fitted = {"at_threshold_fitted_on": {"photos": str(fit_on), "images": len(fit["probs"]), "keep": keep,
                                             **fitted_threshold_shares(outs, fit, keep)}}
    return {**fitted, "open_set": rejection.describe(), "statistics_images": len(sample),
            "real_in_class": real_section(outs["real_in_class"], photos.real.labels, rejection),
            "cifar_test": classified(outs["cifar_test"], photos.cifar_test.labels, rejection),
            "held_out_outliers": outlier_section(outs["outliers"], scores, photos.outlier_classes, rejection),
            "outliers_flagged_at_real_flagged": {"own": trade_off(outs, "own"),
                                                 "own_flip_averaged": trade_off(outs, "flip_own")}}


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def auroc_pair(result: dict, kind: str) -> str:
    found = result["held_out_outliers"]["scores"].get(kind)
    return "-" if found is None else f"{found['vs_cifar_test']['auroc']:.3f}/{found['vs_real_in_class']['auroc']:.3f}"


def table(models: dict[str, dict]) -> str:
    """One row per model: top-1 and flagged shares (%), then AUROC of each score for the held-out
    outliers against CIFAR-10 test / against the real in-class photos."""
    columns = {"test top1": lambda r: percent(r["cifar_test"]["top1"]),
               "real top1": lambda r: percent(r["real_in_class"]["top1"]),
               "flip test/real": lambda r: (f"{percent(r['cifar_test'].get('flip_top1'))}/"
                                            f"{percent(r['real_in_class'].get('flip_top1'))}"),
               "flagged test": lambda r: percent(r["cifar_test"]["flagged"]),
               "flagged real": lambda r: percent(r["real_in_class"]["flagged"]),
               "real <50%": lambda r: percent(r["real_in_class"]["below_50"]),
               "ECE test/real": lambda r: f"{percent(r['cifar_test']['ece'])}/{percent(r['real_in_class']['ece'])}",
               "flagged outl.": lambda r: percent(r["held_out_outliers"]["flagged"]),
               "outl. >=50%": lambda r: percent(r["held_out_outliers"]["confident"]),
               **{kind: functools.partial(auroc_pair, kind=kind) for kind in ("own", *openset.SCORES)}}
    cells = [["model", *columns]] + [[name, *(get(r) for get in columns.values())] for name, r in models.items()]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in cells]
    return "\n".join(["top-1 and shares in %; per score: AUROC of the held-out outliers against "
                      "CIFAR-10 test / against the real in-class photos", *lines])


def quick_inputs(folder: Path) -> tuple[Path, Path, Path]:
    """(model, subsets folder, CIFAR folder): generated images in the shared data's layout and an
    untrained `fast` model given the open-set output on them."""
    from cifarlab.training.openset import attach_to_file

    cifar = tiny_image_folder(folder / "cifar10-jpeg", list(CIFAR10_CLASSES), QUICK_SPLITS)
    subsets = tiny_image_folder(folder / "tinyimagenet-subsets", ["cat", "dog"], {"cifar-classes": 40}, 64)
    tiny_image_folder(subsets, [f"other{i}" for i in range(6)], {"other-classes": 60}, 64)
    model = untrained_fast_model(folder, "bench/real_photos.py --quick")
    attach_to_file(model, load_dataset(cifar, use_cache=False, progress=False), val_fraction=0)
    return model, subsets, cifar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path, default=[DEFAULT_MODEL], metavar="MODEL",
                        help=f"CIFAR-10 .keras model files (default: {DEFAULT_MODEL})")
    parser.add_argument("--name", help="the record is real_photos-NAME.json (default: real_photos.json)")
    parser.add_argument("--tta", action="store_true", help="also the top-1 of image + mirror image averaged")
    parser.add_argument("--subsets", type=Path, default=TINY_IMAGENET, help="the tinyimagenet-subsets folder")
    parser.add_argument("--cifar", type=Path, default=CIFAR10_JPEG, help="CIFAR-10 as ROOT/<train|test>/<class>/")
    parser.add_argument("--fit-on", type=Path, default=None, metavar="DIR",
                        help="real photos DIR/<class>/<image> (never the evaluation ones) to fit a threshold on")
    parser.add_argument("--keep", type=float, default=0.92, help="with --fit-on: the share of them kept")
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    if args.quick:
        folder = Path(tempfile.mkdtemp(prefix="bench-real-photos-"))
        model, args.subsets, args.cifar = quick_inputs(folder)
        args.fit_on = tiny_image_folder(folder / "real-val", ["cat", "dog"], {"val": 20}, 64) / "val"
        args.models, args.tta = [model], True
    try:
        for path in args.models:
            check_classes(path)
    except CifarlabError as exc:
        parser.error(str(exc))
    _, held_out = outlier_split(args.subsets / "other-classes")
    results = {"data": {"subsets": str(args.subsets), "cifar": str(args.cifar),
                        "held_out_outlier_classes": held_out, "statistics_images": STATISTICS_IMAGES},
               "models": {}}
    out = run.path(f"real_photos-{args.name}.json" if args.name else "real_photos.json")
    photos_of = functools.partial(load_photos, args.subsets, args.cifar, use_cache=not args.quick)
    for path in args.models:
        results["models"][str(path)] = measure(path, photos_of, args.tta, args.fit_on, args.keep)
        run.write(out, results)
    print(table(results["models"]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
