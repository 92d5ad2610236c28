"""`cifarlab data info|download`: inspect a dataset source, fetch the official CIFAR archives."""

from __future__ import annotations

import argparse

from cifarlab.cli.common import add_data_arguments, dataset_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="describe a dataset source",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_data_arguments(info)
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    data = dataset_from_args(args)
    print(data.format, data.class_names)
    return 0
