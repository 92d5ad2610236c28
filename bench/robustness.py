"""Clean and corrupted accuracy of several models side by side, with their training minutes.

    python bench/robustness.py --model shipped=models/cifar10-fast.keras \
        --model fast-robust=runs/fast-robust/model.keras [--samples N] [--corruptions all]

Each model is scored by `cifarlab evaluate --corruptions` (the same code, the same seeded images)
on the test split of --data; the wall time of each full scoring run is recorded too (the issue's
budget: <= 15 minutes for all 19 corruptions x 5 severities x 10,000 images). Training minutes
come from the run's summary.json beside the model, or from --minutes NAME=M.
Writes bench/results/robustness.json (and prints a markdown table). `--quick` (no --model needed):
the shipped model (or an untrained one) on a generated folder, one corruption, a temp folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from cifarlab.data import CIFAR10_CLASSES
from cifarlab.evaluation.run import EvaluateConfig, evaluate

import record
from _common import CIFAR10_JPEG, tiny_image_folder, untrained_fast_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "cifar10-fast.keras"


def named_path(text: str) -> tuple[str, Path]:
    name, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def training_minutes(path: Path, given: dict[str, float], name: str) -> float | None:
    if name in given:
        return given[name]
    summary = path.parent / "summary.json"
    if summary.is_file():
        return round(json.loads(summary.read_text())["train_seconds"] / 60, 1)
    return None


def quick_setup(args) -> None:
    """--quick: the shipped (or an untrained) model, a generated folder, one corruption, 10 images."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-robustness-"))
    model = SHIPPED if SHIPPED.is_file() else untrained_fast_model(scratch, "bench/robustness.py")
    args.model = [("quick", model)]
    args.data = str(tiny_image_folder(scratch / "data", CIFAR10_CLASSES, {"test": 20}))
    args.corruptions, args.samples, args.report = "gaussian_noise", 10, scratch / "report"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(CIFAR10_JPEG))
    parser.add_argument("--model", type=named_path, action="append", metavar="NAME=PATH")
    parser.add_argument("--minutes", type=named_path, action="append", default=[], metavar="NAME=M",
                        help="training minutes of a model without a summary.json beside it")
    parser.add_argument("--corruptions", default="all")
    parser.add_argument("--ood", nargs="+", default=[], metavar="PATH",
                        help="outside images for the report's open-set section (as cifarlab evaluate --ood)")
    parser.add_argument("--samples", type=int, default=None, help="images per cell (default: all 10,000)")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/robustness.json")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="write the (last) model's evaluate report here (default runs/bench-robustness-NAME)")
    record.add_quick_option(parser)
    args = parser.parse_args()
    if not (args.model or args.quick):
        parser.error("give at least one --model NAME=PATH (or --quick)")
    run = record.begin(args.quick)
    if args.quick:
        quick_setup(args)
    given = {name: float(str(value)) for name, value in args.minutes}
    out = Path(args.out or run.path("robustness.json"))
    rows = dict(record.results_of(json.loads(out.read_text()))["models"]) if out.is_file() else {}
    for name, path in args.model:
        started = time.perf_counter()
        report = args.report or Path("runs") / f"bench-robustness-{name}"
        result = evaluate(EvaluateConfig(data=args.data, model=path, out=report,
                                         corruptions=args.corruptions, corruption_samples=args.samples,
                                         ood=args.ood))
        section = result.metrics["corruptions"]
        rows[name] = {
            "model": str(path), "train_minutes": training_minutes(path, given, name),
            "clean_accuracy": section["clean_accuracy"], "mean_15": section["mean_15"],
            "mean_all": section["mean_all"], "ratio_15": section["ratio_15"],
            "ece": result.metrics["calibration"]["ece"],
            "mean_per_corruption": section["mean_per_corruption"],
            "images_per_cell": section["images_per_cell"],
            "evaluate_seconds": round(time.perf_counter() - started, 1),
            "recipe": result.metrics["model_metadata"].get("recipe", {}),
        }
        run.write(out, {"data": args.data, "models": rows})
    print("| model | training min | clean | mean over 15 | ratio | mean over 19 | ECE | evaluate s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        cells = [f"{r[key]:{style}}" if r[key] is not None else "-" for key, style in
                 (("clean_accuracy", ".2%"), ("mean_15", ".2%"), ("ratio_15", ".3f"), ("mean_all", ".2%"),
                  ("ece", ".2%"))]
        print(f"| {name} | {r['train_minutes']} | {' | '.join(cells)} | {r['evaluate_seconds']} |")


if __name__ == "__main__":
    main()
