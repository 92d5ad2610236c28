"""Options shared by several commands (dataset and model selection), and the help layout."""

from __future__ import annotations

import argparse

from cifarlab import options
from cifarlab.data.download import DEFAULT_DATASET
from cifarlab.data.source import DataSource


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each option's default, except None/False/() (their help says what happens instead)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default == ():
            return action.help or ""
        return super()._get_help_string(action)


class EpilogHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """HelpFormatter keeping the description's and epilog's own line breaks."""


def add_data_arguments(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    """The `dataset` group: --data, --image-size, --labels, --cache-dir, --no-cache. optional:
    without --data the command reads DEFAULT_DATASET (--data is parsed as None, so it can tell);
    otherwise --data is required."""
    def suffix(f) -> str:
        return f" (default: {DEFAULT_DATASET})" if optional and f.name == "data" else ""

    options.add_arguments(parser, DataSource, defaults={"data": None if optional else options.REQUIRED},
                          help_suffix=suffix)


def data_source(args: argparse.Namespace) -> DataSource:
    return options.from_args(DataSource, args, data=args.data or DEFAULT_DATASET)


def dataset_from_args(args: argparse.Namespace, image_size: int | None = None):
    return data_source(args).load(image_size)


def model_and_data(args: argparse.Namespace, model):
    """(the model file `model` names, default the shipped one; --data read at its input size)."""
    from cifarlab.models.io import read_metadata, resolve_model_path

    path = resolve_model_path(model)
    return path, data_source(args).load(read_metadata(path).input_size[0])
