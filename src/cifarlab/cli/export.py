"""`cifarlab export`: export a model to LiteRT, ONNX or SavedModel, with a parity check."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifarlab.cli.common import add_model_argument
from cifarlab.export.core import FORMATS, QUANTIZATIONS, ExportConfig, run_export
from cifarlab.export.parity import FLOAT_TOLERANCE, QUANTIZED_MIN_AGREEMENT

EPILOG = (
    "After exporting, the exported model and the Keras model are run on the same sample "
    "(--calibration-data if given, else generated images) and the max absolute difference of "
    "their probabilities and their top-1 agreement are printed. Exit status: 0 when the check "
    f"passes; 1 when a float export differs by more than {FLOAT_TOLERANCE:g} or a quantized "
    f"(dynamic/int8) export agrees on top-1 for fewer than {QUANTIZED_MIN_AGREEMENT:.0%} of the "
    "sample (the files are still written); 2 on a usage error. Every export writes a sidecar "
    "<out>.json with the model metadata (class names, input size, ...), which `cifarlab predict` "
    "and `cifarlab live` read; ONNX files also embed it in metadata_props."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    add_model_argument(parser, backend=False)
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="litert: .tflite for LiteRT; onnx: .onnx for ONNX Runtime; "
                             "savedmodel: a TensorFlow SavedModel folder")
    parser.add_argument("--out", type=Path, default=None, metavar="PATH",
                        help="output file/folder (default: next to the model, e.g. "
                             "cifar10-fast.tflite, cifar10-fast.int8.tflite, cifar10-fast_savedmodel)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="none",
                        help="litert only: dynamic = int8 weights; int8 = full-integer model "
                             "(needs --calibration-data)")
    parser.add_argument("--calibration-data", metavar="SOURCE", default=None,
                        help="real images for int8 calibration and the parity check: a dataset "
                             "(CIFAR archive/folder, image folder) or image files/folder/glob")
    parser.add_argument("--samples", type=int, default=500, metavar="N",
                        help="images used for calibration and the parity check")


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    return ExportConfig(format=args.format, model=args.model, out=args.out, quantize=args.quantize,
                        calibration_data=args.calibration_data, samples=args.samples)


def run(args: argparse.Namespace) -> int:
    return run_export(config_from_args(args))
