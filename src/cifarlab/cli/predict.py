"""`cifarlab predict`: classify image files, folders or globs in bulk."""

from __future__ import annotations

import argparse

from cifarlab import options
from cifarlab.predict.core import PredictConfig, run_predict

EPILOG = (
    "Exit status: 0 if every input was classified, 1 if any input failed (it gets an error row; "
    "the others are still classified), 2 on a usage error (e.g. no model). Folders are searched "
    "recursively for .png/.jpg/.jpeg/.bmp/.webp/.gif files; files named explicitly are tried "
    "whatever their extension. json output is a list of {path, ok, label, probability, top_k, "
    "error, unknown, ood_score}; csv has the columns path,ok,error,unknown,ood_score,label_1,"
    "probability_1,... With a model that has the open-set output (`cifarlab openset`), an image "
    "whose ood_score is above --ood-threshold gets the label 'unknown' (top_k still lists the "
    "nearest classes); ood_score is null (empty in csv) for a model without it."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    options.add_arguments(parser, PredictConfig)


def run(args: argparse.Namespace) -> int:
    return run_predict(options.from_args(PredictConfig, args))
