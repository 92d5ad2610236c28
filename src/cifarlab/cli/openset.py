"""`cifarlab openset`: give an existing model file its "none of my classes" output."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from cifarlab import options
from cifarlab.cli.common import add_data_arguments, model_and_data
from cifarlab.inference.choice import model_option
from cifarlab.models.openset import DEFAULT_SCORE, KNN_BANK, SCORES
from cifarlab.options import Options, at_least, between, option
from cifarlab.training.openset import DEFAULT_KEEP

EPILOG = ("Fits the statistics of the out-of-distribution score on the training images of --data "
          "and the threshold on its validation images (or, for a source without a val split, on "
          "the share of train the model's recipe held out), then writes the model with a second "
          "output, ood_score. `train` does this at the end of every run; this command is for "
          "model files without the score, or to change the score or the kept share.")


@dataclass
class OpenSetConfig(Options):
    model: Path | None = model_option("the .keras model to add the score to (default: the shipped model)")
    out: Path | None = option(None, "write the model here instead of replacing --model", metavar="PATH")
    score: str | None = option(None, f"which score (models/openset.py; default: the model's, else "
                                     f"{DEFAULT_SCORE})", choices=SCORES)
    keep: float = option(DEFAULT_KEEP, "the threshold keeps this share of the validation images",
                         metavar="SHARE", check=between(0.5, 1.0, open_high=True))
    mirror: bool | None = option(None, "average the score over each image and its mirror image (a "
                                        "second pass of the network per image; default: as the model "
                                        "has it, else off)")
    bank_size: int = option(KNN_BANK, "knn: training images whose features the model keeps (4 bytes per "
                                  "feature each in the file)", metavar="N", check=at_least(1))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    add_data_arguments(parser)
    options.add_arguments(parser, OpenSetConfig)


def run(args: argparse.Namespace) -> int:
    from cifarlab.training.openset import attach_to_file, describe

    config = options.from_args(OpenSetConfig, args)
    path, data = model_and_data(args, config.model)
    target, record = attach_to_file(path, data, config.out, config.score, config.keep,
                                    bank_size=config.bank_size, mirror=config.mirror)
    print(f"wrote {target}: {describe(record)}")
    return 0
