"""`cifarlab predict`: classify image files, folders or globs in bulk."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifarlab.cli.common import add_model_argument
from cifarlab.predict.core import FORMATS, PredictConfig, run_predict

EPILOG = (
    "Exit status: 0 if every input was classified, 1 if any input failed (it gets an error row; "
    "the others are still classified), 2 on a usage error (e.g. no model). Folders are searched "
    "recursively for .png/.jpg/.jpeg/.bmp/.webp/.gif files; files named explicitly are tried "
    "whatever their extension. json output is a list of {path, ok, label, probability, top_k, "
    "error}; csv has the columns path,ok,error,label_1,probability_1,..."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image files, folders (recursive) or glob patterns (quote them)")
    add_model_argument(parser)
    parser.add_argument("--top-k", type=int, default=1, metavar="K",
                        help="labels per image, most probable first")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="output format on stdout (json and csv are machine-readable)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="B",
                        help="images decoded and classified together")
    parser.add_argument("--explain", type=Path, default=None, metavar="DIR",
                        help="also write each image's class-activation map into DIR: <name>.cam.png "
                             "(the map blended over the image, with label and confidence) and "
                             "<name>.cam.npy (float32, the image's own height x width, 0..1); "
                             "needs a .keras model")
    parser.add_argument("--explain-class", default=None, metavar="NAME",
                        help="explain this class instead of each image's predicted one")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it is shown on stderr only for 100+ files)")


def config_from_args(args: argparse.Namespace) -> PredictConfig:
    return PredictConfig(paths=list(args.paths), model=args.model, backend=args.backend,
                         top_k=args.top_k, format=args.format, batch_size=args.batch_size,
                         progress=not args.no_progress, explain=args.explain,
                         explain_class=args.explain_class)


def run(args: argparse.Namespace) -> int:
    return run_predict(config_from_args(args))
