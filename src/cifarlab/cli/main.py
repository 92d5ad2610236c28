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
    "train": "Train a model (the fast recipe or the baseline) on a dataset.",
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s options are built (None: all), so `cifarlab data` does not
    import the training stack."""
    parser = argparse.ArgumentParser(
        prog="cifarlab",
        description="Train, evaluate, export and run small-image classifiers live on a camera.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cifarlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        cmd = sub.add_parser(name, help=summary, description=summary,
                             formatter_class=HelpFormatter)
        if command not in (None, name):
            continue
        module = importlib.import_module(f"cifarlab.cli.{name}")
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
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if a in COMMANDS), None)
    if command not in (None, "data"):
        import_tensorflow_quietly()
    args = build_parser(command).parse_args(argv)
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
