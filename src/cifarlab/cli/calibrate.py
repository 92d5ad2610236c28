"""`cifarlab calibrate`: fit a model file's confidence on photos like the ones it will see."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from cifarlab import options
from cifarlab.cli.common import add_data_arguments, model_and_data
from cifarlab.inference.choice import model_option
from cifarlab.options import Options, option

EPILOG = ("Refits the softmax temperature (the confidence the model shows; no prediction changes) "
          "on the validation images of --data (its val split, or the share of train the model's "
          "recipe held out), at least 100 of them, then writes the model. `train` fits it on its "
          "own validation split; a model trained on CIFAR-10 and real photos is calibrated for "
          "their mix, this command for the photos you give it. The open-set score and threshold "
          "do not change.")


@dataclass
class CalibrateConfig(Options):
    model: Path | None = model_option("the .keras model to calibrate (default: the shipped model)")
    out: Path | None = option(None, "write the model here instead of replacing --model", metavar="PATH")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    add_data_arguments(parser)
    options.add_arguments(parser, CalibrateConfig)


def run(args: argparse.Namespace) -> int:
    from cifarlab.training.calibration import calibrate_file

    config = options.from_args(CalibrateConfig, args)
    path, data = model_and_data(args, config.model)
    target, fit = calibrate_file(path, data, config.out)
    print(f"wrote {target}: temperature {fit['previous_temperature']:.3f} -> {fit['temperature']:.3f} "
          f"(log-loss {fit['previous_log_loss']:.4f} -> {fit['log_loss']:.4f} on {fit['images']} "
          "validation images)")
    return 0
