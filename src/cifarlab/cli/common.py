"""Options shared by several commands (dataset and model selection), and the help layout."""

from __future__ import annotations

import argparse

from cifarlab import options
from cifarlab.data.source import DataSource


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each option's default, except None/False/() (their help says what happens instead)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default == ():
            return action.help or ""
        return super()._get_help_string(action)


class EpilogHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """HelpFormatter keeping the description's and epilog's own line breaks."""


def add_data_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """The `dataset` group: --data, --image-size, --labels, --cache-dir, --no-cache."""
    options.add_arguments(parser, DataSource, defaults=None if required else {"data": None})


def data_source(args: argparse.Namespace) -> DataSource:
    return options.from_args(DataSource, args)


def dataset_from_args(args: argparse.Namespace, image_size: int | None = None):
    return data_source(args).load(image_size)


def add_model_argument(parser: argparse.ArgumentParser, backend: bool = True) -> None:
    """--model, and (for commands that run it) --backend."""
    from cifarlab.inference.choice import ModelChoice

    options.add_arguments(parser, ModelChoice, skip=() if backend else ("backend",))
