"""`cifarlab evaluate [MODEL] [--data SOURCE]`: metrics.json, PNG plots and report.html."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from cifarlab import options
from cifarlab.cli.common import add_data_arguments, data_source
from cifarlab.data.source import DATA_OPTIONS
from cifarlab.errors import CifarlabError
from cifarlab.evaluation.config import CORRUPTION_OPTIONS, OPEN_SET_OPTIONS, EvaluateConfig

ROBUSTNESS = "robustness (CIFAR-10-C)"
ROBUSTNESS_HELP = (
    "Score the model on corrupted copies of the split, made with CIFAR-10-C's published 32x32 "
    "parameters and a fixed seed per corruption and severity (two runs agree image for image). "
    "For images of another size, the parameters that are in pixels (blur radii and sigmas, "
    "glass-blur shifts, motion and zoom blur, elastic displacement, the snow, frost and fog "
    "patterns) scale with side/32; noise, brightness, contrast, saturation and JPEG quality "
    "do not. The full set is 19 corruptions x 5 severities x the split's images.")
OPEN_SET = "open set (none of the classes)"
OPEN_SET_HELP = (
    "For a model with the open-set score (cifarlab openset): the share of the split rejected at "
    "the threshold and the accuracy on the rest; with --ood, how well the score tells outside "
    "images from the split (AUROC, FPR95, share flagged). With --tta the score is the plain "
    "image's. Put --ood after the model, or repeat it.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_pos", nargs="?", type=Path, default=None, metavar="MODEL",
                        help="model file (same as --model)")
    add_data_arguments(parser, optional=True)
    options.add_arguments(parser, EvaluateConfig, skip=DATA_OPTIONS + CORRUPTION_OPTIONS + OPEN_SET_OPTIONS)
    others = [f.name for f in fields(EvaluateConfig) if f.name not in CORRUPTION_OPTIONS]
    options.add_arguments(parser.add_argument_group(ROBUSTNESS, ROBUSTNESS_HELP), EvaluateConfig,
                          skip=others)
    add_open_set_arguments(parser.add_argument_group(OPEN_SET, OPEN_SET_HELP))


def add_open_set_arguments(group) -> None:
    """--ood takes one or more paths (and may be repeated), which the declared options cannot say."""
    ood = next(f for f in fields(EvaluateConfig) if f.name == "ood")
    kwargs = {**options.argument_kwargs(EvaluateConfig, ood), "default": argparse.SUPPRESS}
    group.add_argument("--ood", nargs="+", action="extend", **kwargs)
    others = [f.name for f in fields(EvaluateConfig) if f.name not in OPEN_SET_OPTIONS]
    options.add_arguments(group, EvaluateConfig, skip=["ood", *others])


def config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    if args.model_pos and args.model and args.model_pos != args.model:
        raise CifarlabError(f"two different models given ({args.model_pos} and --model {args.model}); "
                            "pass only one")
    return options.from_args(EvaluateConfig, args, model=args.model_pos or args.model,
                             data=data_source(args).data)


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
    print(open_set_line(m["open_set"]))
    print(f"report: {result.report}")
    return 0


def open_set_line(section: dict) -> str:
    if not section["available"]:
        return section["note"]
    accepted = section["accepted_accuracy"]
    line = (f"{section['rejection']}: rejects {section['rejected_share']:.1%} of the test images"
            + (f", accuracy on the rest {accepted:.2%}" if accepted is not None else ""))
    if "outside_images" in section:
        flagged = section["flagged_outside"]
        line += (f"; {section['outside_images']:,} outside images: AUROC {section['auroc']:.3f}, "
                 f"FPR95 {section['fpr95']:.1%}"
                 + (f", {flagged:.1%} flagged unknown" if flagged is not None else ""))
    return line
