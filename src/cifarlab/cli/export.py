"""`cifarlab export`: export a model to LiteRT, ONNX or SavedModel, with a parity check."""

from __future__ import annotations

import argparse

from cifarlab import options
from cifarlab.export.core import ExportConfig, run_export
from cifarlab.export.parity import (
    FLOAT_MIN_UNKNOWN_AGREEMENT,
    FLOAT_TOLERANCE,
    QUANTIZED_MIN_AGREEMENT,
    QUANTIZED_MIN_UNKNOWN_AGREEMENT,
)

EPILOG = (
    "After exporting, the exported model and the Keras model are run on the same sample "
    "(--calibration-data if given, else generated images) and the max absolute difference of "
    "their probabilities and their top-1 agreement are printed. Exit status: 0 when the check "
    f"passes; 1 when a float export differs by more than {FLOAT_TOLERANCE:g} or a quantized "
    f"(dynamic/int8) export agrees on top-1 for fewer than {QUANTIZED_MIN_AGREEMENT:.0%} of the "
    "sample, or, for a model with the open-set output, when the unknown flag agrees on fewer than "
    f"{FLOAT_MIN_UNKNOWN_AGREEMENT:.0%} (float) / {QUANTIZED_MIN_UNKNOWN_AGREEMENT:.0%} (quantized) "
    "(the files are still written); 2 on a usage error. Every export writes a sidecar "
    "<out>.json with the model metadata (class names, input size, ...), which `cifarlab predict` "
    "and `cifarlab live` read; ONNX files also embed it in metadata_props."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    options.add_arguments(parser, ExportConfig)


def run(args: argparse.Namespace) -> int:
    return run_export(options.from_args(ExportConfig, args))
