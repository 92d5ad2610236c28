"""`cifarlab train`: dataset in, model file out (resumable, logged)."""

from __future__ import annotations

import argparse
import dataclasses

from cifarlab.cli.common import add_data_arguments
from cifarlab.data.download import DEFAULT_DATASET
from cifarlab.training import config

EPILOG = ("Recipes (--recipe NAME): " + "; ".join(
    f"{name}: {entry.summary}" for name, entry in config.recipes().items()) +
    ". --print-config shows every resolved option and where its value came from.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    add_data_arguments(parser, optional=True)
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration (each option, its value, and where it "
                             "came from: default, recipe, small-data rule or flag) and exit; with "
                             "--data the small-data rule is applied to that dataset")
    config.add_arguments(parser)


def config_from_args(args: argparse.Namespace) -> config.TrainConfig:
    return config.from_args(args, data=args.data, quiet=bool(getattr(args, "quiet", False)))


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.print_config:
        from cifarlab.training.train import describe_run

        print(describe_run(cfg))
        return 0
    from cifarlab.training.train import train

    train(dataclasses.replace(cfg, data=cfg.data or DEFAULT_DATASET))
    return 0
