"""`cifarlab train`: dataset in, model file out (resumable, logged)."""

from __future__ import annotations

import argparse

from cifarlab.cli.common import add_data_arguments
from cifarlab.training import config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    config.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = config.from_args(args, data=args.data, image_size=args.image_size, labels=args.labels,
                           cache_dir=args.cache_dir, use_cache=not args.no_cache)
    if cfg.from_model is not None:  # --from MODEL: learn the new classes from a trained model
        from cifarlab.training.transfer import transfer

        transfer(cfg)
    else:
        from cifarlab.training.train import train

        train(cfg)
    return 0
