"""`cifarlab evaluate [MODEL] --data SOURCE`: metrics.json, PNG plots and report.html."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifarlab.cli.common import add_data_arguments, add_model_argument
from cifarlab.errors import CifarlabError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_pos", nargs="?", type=Path, default=None, metavar="MODEL",
                        help="model file (same as --model)")
    add_model_argument(parser)
    add_data_arguments(parser)
    parser.add_argument("--split", default="test", help="dataset split to evaluate")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average the probabilities of each image, its "
                             "mirror, and both shifted one pixel up-left and down-right (6x the time)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: runs/eval-<model stem>-<split>)")
    parser.add_argument("--batch-size", type=int, default=256, metavar="N",
                        help="images per prediction batch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    robust = parser.add_argument_group(
        "robustness (CIFAR-10-C)",
        "Score the model on corrupted copies of the split, made with CIFAR-10-C's published 32x32 "
        "parameters and a fixed seed per corruption and severity (two runs agree image for image). "
        "For images of another size, the parameters that are in pixels (blur radii and sigmas, "
        "glass-blur shifts, motion and zoom blur, elastic displacement, the snow, frost and fog "
        "patterns) scale with side/32; noise, brightness, contrast, saturation and JPEG quality "
        "do not. The full set is 19 corruptions x 5 severities x the split's images.")
    robust.add_argument("--corruptions", default=None, metavar="LIST",
                        help="all (15 + 4 extras), main (the 15 of the benchmark) or a comma list, "
                             "e.g. gaussian_noise,contrast")
    robust.add_argument("--severities", default="1-5", metavar="S",
                        help="severities to score: a range 1-5, one number or a comma list")
    robust.add_argument("--corruption-samples", type=int, default=None, metavar="N",
                        help="score a seeded, class-stratified subset of N images per cell "
                             "(default: the whole split)")
    robust.add_argument("--corruptions-data", type=Path, default=None, metavar="DIR",
                        help="read the official CIFAR-10-C files (<corruption>.npy, labels.npy) "
                             "from DIR instead of generating the corruptions")


def config_from_args(args: argparse.Namespace):
    from cifarlab.evaluation.run import EvaluateConfig

    if args.model_pos and args.model and args.model_pos != args.model:
        raise CifarlabError(f"two different models given ({args.model_pos} and --model {args.model}); "
                            "pass only one")
    if args.batch_size < 1:
        raise CifarlabError(f"--batch-size must be at least 1, got {args.batch_size}")
    return EvaluateConfig(
        data=args.data, model=args.model_pos or args.model, split=args.split, tta=args.tta,
        out=args.out, batch_size=args.batch_size, backend=args.backend,
        corruptions=args.corruptions, severities=args.severities,
        corruption_samples=args.corruption_samples, corruptions_data=args.corruptions_data, image_size=args.image_size, labels=args.labels,
        cache_dir=args.cache_dir, use_cache=not args.no_cache, progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    from cifarlab.evaluation.robustness import terminal_table
    from cifarlab.evaluation.run import evaluate

    result = evaluate(config_from_args(args))
    m = result.metrics
    info = m["evaluation"]
    top = ", ".join(f"top-{k} {v:.2%}" for k, v in m["top_k_accuracy"].items())
    print(f"{info['model_name']} on {info['split']} ({m['num_samples']:,} images"
          f"{', 6-view TTA' if info['tta'] else ''}): accuracy {m['accuracy']:.2%}"
          + (f" ({top})" if top else ""))
    weakest = ", ".join(f"{row['class']} {row['accuracy']:.1%}" for row in result.weakest)
    print(f"weakest classes: {weakest}")
    print(f"log-loss {m['log_loss']:.4f}, ECE {m['calibration']['ece']:.4f}, "
          f"evaluated in {info['seconds']['total']:.1f} s")
    if "corruptions" in m:
        print(terminal_table(m["corruptions"]))
    print(f"report: {result.report}")
    return 0
