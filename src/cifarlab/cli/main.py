"""Entry point: `cifarlab CMD ...`. User errors print one line and exit 2 (`--debug` for traceback)."""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys

from cifarlab import __version__
from cifarlab.cli.common import HelpFormatter
from cifarlab.errors import CifarlabError
from cifarlab.imports import import_tensorflow_quietly
from cifarlab.options import did_you_mean, not_a_choice

COMMANDS = {
    "data": "Inspect, download and cache datasets.",
    "train": "Train a model (the fast recipe or the baseline) on a dataset.",
    "evaluate": "Measure a model on a dataset split: metrics.json, plots, report.html.",
    "live": "Classify a region of a webcam / video / stream live, with an overlay.",
    "predict": "Classify image files, folders or globs in bulk.",
    "export": "Export a model to LiteRT, ONNX or SavedModel, with a parity check.",
    "openset": "Add the 'none of my classes' score and threshold to a trained model.",
    "calibrate": "Fit a trained model's confidence (its softmax temperature) on your photos.",
}
REQUIRED_MESSAGE = "the following arguments are required"  # argparse's wording
GLOBAL_OPTIONS = {  # every command takes these, before or after its name
    "--debug": "show full tracebacks on errors",
    "--quiet": "log warnings and errors only",
    "--verbose": "log debugging detail too (and the libraries' own messages)",
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors, a did-you-mean for a mistyped option name and one form
    for a missing required argument."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        unknown = [arg for arg in extras if arg.startswith("-") and not arg[1:2].isdigit()]
        if unknown:  # "--formt=json" or "--formt json"
            self.error(self.unknown_option(unknown[0].split("=", 1)[0]))
        return namespace, extras

    def unknown_option(self, name: str) -> str:
        known = [s for s in self._option_string_actions if s.startswith("--")]
        hint = did_you_mean(name, known, quote=False).rstrip() or f"see {self.prog} --help"
        return f"unrecognized option {name}; {hint}"

    def missing(self, names: str) -> str:
        """argparse's "the following arguments are required: --a, B" in the form every command
        uses: "--a is required: one of x, y (see cifarlab CMD --help)"."""
        actions = {argparse._get_action_name(a): a for a in self._actions}
        parts = []
        for name in names.split(", "):
            choices = getattr(actions.get(name), "choices", None)
            listed = f": one of {', '.join(map(str, choices))}" if choices else ""
            parts.append(f"{name} is required{listed}")
        return "; ".join(parts) + f" (see {self.prog} --help)"

    def error(self, message: str):
        # "argument --format: --format 'jsn' is not a choice..." says the option's name once.
        head, _, rest = message.partition(": ")
        if head.startswith("argument ") and rest.startswith(head[len("argument "):].split("/")[0]):
            message = rest
        invalid = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)", message)
        if invalid:  # a mistyped command name (or another plain argparse choice)
            value, choices = invalid.group(1), re.findall(r"'([^']*)'", invalid.group(2))
            message = not_a_choice(head.removeprefix("argument "), value, choices)
        if head == REQUIRED_MESSAGE:
            message = self.missing(rest)
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_global_options(parser: argparse.ArgumentParser, default=False) -> None:
    """--debug, --quiet, --verbose on `parser` and its subcommands' parsers (`data info`), unless
    a command declares its own."""
    for flag, help in GLOBAL_OPTIONS.items():
        if flag not in parser._option_string_actions:
            parser.add_argument(flag, action="store_true", default=default, help=help)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_global_options(child, default)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s options are built (None: all), so `cifarlab data` does not
    import the training stack."""
    parser = Parser(
        prog="cifarlab",
        description="Train, evaluate, export and run small-image classifiers live on a camera.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cifarlab {__version__}")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        cmd = sub.add_parser(name, help=summary, description=summary,
                             formatter_class=HelpFormatter)
        if command not in (None, name):
            continue
        module = importlib.import_module(f"cifarlab.cli.{name}")
        module.add_arguments(cmd)
        add_global_options(cmd, default=argparse.SUPPRESS)  # SUPPRESS keeps `cifarlab --quiet CMD`
        cmd.set_defaults(run=module.run)
    return parser


class LineFormatter(logging.Formatter):
    """INFO as the bare message; warnings and errors with their level; DEBUG with the logger."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        if record.levelno < logging.INFO:
            return f"debug: {record.name}: {message}"
        return message


class ConsoleHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout or sys.stderr is when a record comes (tests swap them)."""

    def __init__(self, stream_name: str, wanted) -> None:
        super().__init__()
        self.stream_name = stream_name
        self.setFormatter(LineFormatter())
        self.addFilter(wanted)

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """The root logger: WARNING with --quiet, DEBUG with --verbose, else INFO, one line each.
    cifarlab's INFO lines are the commands' status lines and go to stdout, as they did when
    printed; everything else goes to stderr. Other libraries' records below WARNING are shown
    with --verbose only."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, ConsoleHandler)]:
        root.removeHandler(handler)

    def status(record: logging.LogRecord) -> bool:
        return record.name.split(".")[0] == "cifarlab" and record.levelno == logging.INFO

    def diagnostic(record: logging.LogRecord) -> bool:
        return not status(record) and (verbose or record.levelno >= logging.WARNING or
                                       record.name.split(".")[0] == "cifarlab")

    root.addHandler(ConsoleHandler("stdout", status))
    root.addHandler(ConsoleHandler("stderr", diagnostic))
    root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if a in COMMANDS), None)
    if command != "data":  # no command (or a mistyped one) builds every command's options
        import_tensorflow_quietly()
    args = build_parser(command).parse_args(argv)
    configure_logging(args.quiet, args.verbose)
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
