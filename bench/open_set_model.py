"""Open-set figures of one trained model: what its stored threshold rejects, and whether every
runtime agrees on the `unknown` flag.

    python bench/open_set_model.py --model models/cifar10-fast.keras --data ../shared/datasets/cifar10-jpeg

- the test split: share rejected at the model's threshold, accuracy on the accepted images;
- far-OOD sets built as in bench/open_set.py (uniform noise, smooth colour blobs, shuffled 8x8
  tiles of test images): AUROC, FPR95, share flagged at the threshold;
- the model exported to LiteRT float, LiteRT int8 (calibrated on training images) and ONNX:
  the share of images whose unknown flag equals the Keras model's, on test images and on the
  far sets (where many images lie near the threshold).
Writes bench/results/open_set_model-<model name>.json. `--quick`: an untrained model, tiny data.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from cifarlab.data import CIFAR10_CLASSES, load_dataset
from cifarlab.evaluation.openset import ood_metrics
from cifarlab.export.core import ExportConfig, export_model
from cifarlab.inference import open_classifier
from cifarlab.inference.rejection import rejection_for

import record
from _common import CIFAR10_JPEG, tiny_image_folder
from open_set import far_sets  # noqa: E402

AGREEMENT_IMAGES = 2000  # test images in the export agreement sample (plus the far sets)


def quick_model(folder: Path) -> tuple[Path, Path]:
    """A tiny trained-for-one-epoch model with the open-set output, and its data folder."""
    from cifarlab.training.config import TrainConfig
    from cifarlab.training.train import train

    data = tiny_image_folder(folder / "data", CIFAR10_CLASSES[:3], {"train": 120, "test": 30})
    out = folder / "run"
    train(TrainConfig(data=str(data), model="fast", widths=(8, 16, 16), epochs=1, batch_size=16, out=out))
    return out / "model.keras", data


def flags_of(classifier, images: np.ndarray) -> np.ndarray:
    return rejection_for(classifier).unknown(classifier.predict_scored(images)[1])


def export_agreement(model: Path, calibration: str, samples: dict[str, np.ndarray], folder: Path,
                     calibration_images: int) -> dict:
    """Per export: the share of each sample's images whose unknown flag equals the Keras model's."""
    keras = open_classifier(model, "keras")
    reference = {name: flags_of(keras, images) for name, images in samples.items()}
    variants = {"litert-float": ("litert", "none", ".tflite"), "litert-int8": ("litert", "int8", ".tflite"),
                "onnx": ("onnx", "none", ".onnx")}
    result = {}
    for name, (fmt, quantize, suffix) in variants.items():
        out, parity = export_model(ExportConfig(format=fmt, model=model, quantize=quantize,
                                                calibration_data=calibration, samples=calibration_images,
                                                out=folder / f"m-{name}{suffix}"))
        exported = open_classifier(out)
        result[name] = {"unknown_agreement": {sample: float((flags_of(exported, images) == reference[sample]).mean())
                                              for sample, images in samples.items()},
                        "parity": parity.as_dict()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/cifar10-fast.keras"))
    parser.add_argument("--data", default=str(CIFAR10_JPEG))
    parser.add_argument("--calibration-data", default=None,
                        help="int8 calibration images (default: DATA/train, never the test split)")
    parser.add_argument("--samples", type=int, default=ExportConfig.samples,
                        help="images that calibrate int8 and check each export's parity (export's --samples)")
    parser.add_argument("--name", default=None, help="record name (default: the model file's stem)")
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    folder = Path(tempfile.mkdtemp(prefix="bench-openset-model-"))
    if args.quick:
        args.model, data_path = quick_model(folder)
        args.data = str(data_path)
    calibration = args.calibration_data or str(Path(args.data) / "train")
    test = load_dataset(args.data).split("test")
    classifier = open_classifier(args.model, "keras")
    rejection = rejection_for(classifier, "auto", str(args.model))
    probs, scores = classifier.predict_scored(test.images)
    flagged = rejection.unknown(scores)
    far = far_sets(test.images, 1000 if not args.quick else 30)
    results = {"model": str(args.model), "open_set": rejection.describe(),
               "test": {"images": len(test), "accuracy": float((probs.argmax(1) == test.labels).mean()),
                        "rejected_share": float(flagged.mean()),
                        "accuracy_on_accepted": float((probs.argmax(1) == test.labels)[~flagged].mean())},
               "far": {name: ood_metrics(scores, classifier.predict_scored(images)[1], rejection.threshold)
                       for name, images in far.items()}}
    samples = {f"test ({AGREEMENT_IMAGES})": test.images[:AGREEMENT_IMAGES],
               "far sets": np.concatenate(list(far.values()))}
    results["exports"] = export_agreement(args.model, calibration, samples, folder, args.samples)
    results["calibration_images"] = args.samples
    path = run.write(run.path(f"open_set_model-{args.name or args.model.stem}.json"), results)
    print(json.dumps(results, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
