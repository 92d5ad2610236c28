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


def config_from_args(args: argparse.Namespace):
    from cifarlab.evaluation.run import EvaluateConfig

    if args.model_pos and args.model and args.model_pos != args.model:
        raise CifarlabError(f"two different models given ({args.model_pos} and --model {args.model}); "
                            "pass only one")
    if args.batch_size < 1:
        raise CifarlabError(f"--batch-size must be at least 1, got {args.batch_size}")
    return EvaluateConfig(
        data=args.data, model=args.model_pos or args.model, split=args.split, tta=args.tta,
        out=args.out, batch_size=args.batch_size, backend=args.backend, image_size=args.image_size, labels=args.labels,
        cache_dir=args.cache_dir, use_cache=not args.no_cache, progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
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
    print(f"report: {result.report}")
    return 0
