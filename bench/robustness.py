"""Clean and corrupted accuracy of several models side by side, with their training minutes.

    python bench/robustness.py --model shipped=models/cifar10-fast.keras \
        --model fast-robust=runs/fast-robust/model.keras [--samples N] [--corruptions all]

Each model is scored by `cifarlab evaluate --corruptions` (the same code, the same seeded images)
on the test split of --data; the wall time of each full scoring run is recorded too (the issue's
budget: <= 15 minutes for all 19 corruptions x 5 severities x 10,000 images). Training minutes
come from the run's summary.json beside the model, or from --minutes NAME=M.
Writes bench/results/robustness.json (and prints a markdown table).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from cifarlab.atomic import write_json_atomic
from cifarlab.evaluation.run import EvaluateConfig, evaluate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"))
    parser.add_argument("--model", type=named_path, action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--minutes", type=named_path, action="append", default=[], metavar="NAME=M",
                        help="training minutes of a model without a summary.json beside it")
    parser.add_argument("--corruptions", default="all")
    parser.add_argument("--samples", type=int, default=None, help="images per cell (default: all 10,000)")
    parser.add_argument("--out", type=Path, default=RESULTS / "robustness.json")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="write the (last) model's evaluate report here (default runs/bench-robustness-NAME)")
    args = parser.parse_args()
    given = {name: float(str(value)) for name, value in args.minutes}
    out = Path(args.out)
    previous = json.loads(out.read_text())["models"] if out.is_file() else {}
    rows = dict(previous)
    for name, path in args.model:
        started = time.perf_counter()
        report = args.report or Path("runs") / f"bench-robustness-{name}"
        result = evaluate(EvaluateConfig(data=args.data, model=path, out=report,
                                         corruptions=args.corruptions, corruption_samples=args.samples))
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
        write_json_atomic(out, {"benchmark": "robustness", "data": args.data,
                                "command": shlex.join(["python", *sys.argv]), "models": rows})
    print("| model | training min | clean | mean over 15 | ratio | mean over 19 | ECE | evaluate s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['train_minutes']} | {r['clean_accuracy']:.2%} | {r['mean_15']:.2%} | "
              f"{r['ratio_15']:.3f} | {r['mean_all']:.2%} | {r['ece']:.2%} | {r['evaluate_seconds']} |")


if __name__ == "__main__":
    main()
