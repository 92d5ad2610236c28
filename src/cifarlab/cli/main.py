"""Entry point: `cifarlab CMD ...`. User errors print one line and exit 2 (`--debug` for traceback)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from cifarlab import __version__
from cifarlab.errors import CifarlabError

COMMANDS = {
    "data": "Inspect, download and cache datasets.",
    "train": "Train a model (seed or fast preset) on a dataset.",
    "evaluate": "Measure a model on a dataset split: metrics.json, plots, report.html.",
    "live": "Classify a region of a webcam / video / stream live, with an overlay.",
    "predict": "Classify image files, folders or globs in bulk.",
    "export": "Export a model to LiteRT, ONNX or SavedModel, with a parity check.",
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each option's default, except None/False (their help says what happens instead)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False):
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cifarlab",
        description="Train, evaluate, export and run small-image classifiers live on a camera.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cifarlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        module = importlib.import_module(f"cifarlab.cli.{name}")
        cmd = sub.add_parser(name, help=summary, description=summary,
                             formatter_class=HelpFormatter)
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show full tracebacks on errors")
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with stderr closed: its C++ start-up lines (absl/oneDNN notices) are
    printed before any log level applies, and would bury our one-line errors."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "data":
        import_tensorflow_quietly()
    try:
        return int(args.run(args) or 0)
    except CifarlabError as exc:
        if args.debug:
            raise
        print(f"cifarlab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"cifarlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
