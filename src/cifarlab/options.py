"""Options declared once: a command's settings are one dataclass whose fields carry their help,
choices and check (as Ultralytics declares its config), and the command line is built from it.

    @dataclass
    class PredictConfig(Options):
        top_k: int = option(1, "labels per image", check=at_least(1), metavar="K")

- `add_arguments(parser, PredictConfig)`: one `--top-k` per field, default and help from the field
  (a bool defaulting to True gets `--x/--no-x`);
- `from_args(PredictConfig, args)`: the config of parsed arguments; `from_values(...)` of
  keyword arguments (the Python API);
- `Options.__post_init__` runs the one validation step: choices (with a did-you-mean), each
  field's `check`, then the class's own cross-field `check()`;
- `describe(config)`: every field, its value and where it came from (`--print-config`).

Field metadata besides the standard keys stays available to the owning module (e.g. `recipe=`).
"""

from __future__ import annotations

import argparse
import difflib
import shlex
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, field, fields
from pathlib import Path

from cifarlab.errors import CifarlabError

Check = Callable[[object], "str | None"]  # returns what is wrong, or None
REQUIRED = MISSING  # option(REQUIRED, ...): a field without a default, a required option


def option(default=None, help: str = "", *, choices: Iterable | None = None, check: Check | None = None,
           flag: str | None = None, metavar: str | None = None, cli: bool = True,
           const: object = None, group: str | None = None, parse: Callable | None = None,
           exclusive: str | None = None, positional: str | None = None, **extra):
    """A dataclass field with what the command line needs to offer it.

    flag: the option's name when it is not the field's (`--from` for `from_model`); const: the
    value of the option given without an argument (which makes the argument optional); group: the
    help section it is listed under; cli=False: not on the command line; default=REQUIRED: a
    required option. parse: text -> value, instead of the converter the annotation implies;
    exclusive: the name of a set of options of which at most one may be given; positional: an
    argparse `nargs` ("?", "+", "*"), making it a positional argument shown by its metavar.
    """
    meta = dict(help=help, choices=tuple(choices) if choices is not None else None, check=check,
                flag=flag, metavar=metavar, cli=cli, const=const, group=group, parse=parse,
                exclusive=exclusive, positional=positional, **extra)
    if default is REQUIRED:
        return field(metadata=meta)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def flag_name(f) -> str:
    return f.metadata.get("flag") or f.name.replace("_", "-")


def closest(value: object, choices: Iterable) -> str | None:
    """The choice `value` was most likely meant to be, or None: the first choice it begins, else
    the first it is part of (3 characters or more), else the most similar (difflib, ratio >= 0.6).
    Every did-you-mean of cifarlab (options, commands, recipes, models, corruptions) asks this."""
    key, names = str(value), [str(c) for c in choices]
    found = ([c for c in names if key and c.startswith(key)]
             or [c for c in names if len(key) >= 3 and key in c]
             or difflib.get_close_matches(key, names, n=1))
    return found[0] if found else None


def did_you_mean(value: object, choices: Iterable, quote: bool = True) -> str:
    """The suggestion for `value`: "did you mean 'x'? " (with quote=False: "did you mean x? "),
    or "" when no choice is close."""
    match = closest(value, choices)
    return f"did you mean {repr(match) if quote else match}? " if match else ""


def choice_error(problem: str, value: object, choices: Iterable) -> str:
    """The one form of the error for a value not among `choices`: "PROBLEM; did you mean 'y'?
    choose from a, b", e.g. PROBLEM = "--format 'jsn' is not a choice" or "unknown recipe 'x'"."""
    choices = [str(c) for c in choices]
    return f"{problem}; {did_you_mean(value, choices)}choose from {', '.join(choices)}"


def not_a_choice(name: str, value: object, choices: Iterable) -> str:
    """choice_error for an option or argument: "--format 'jsn' is not a choice; ..."."""
    return choice_error(f"{name} {value!r} is not a choice", value, choices)


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be at least {low}, got {v}"


def between(low: float, high: float, *, open_high: bool = False) -> Check:
    def check(v):
        ok = low <= v < high if open_high else low <= v <= high
        return None if ok else f"must be in [{low}, {high}{')' if open_high else ']'}, got {v}"
    return check


class Options:
    """Base of every command's settings dataclass: validated once, when built."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise CifarlabError(not_a_choice(f"--{flag_name(f)}", value, choices))
            check = f.metadata.get("check")
            problem = check(value) if check else None
            if problem:
                raise CifarlabError(f"--{flag_name(f)} {problem}")
        self.check()

    def check(self) -> None:
        """Rules between fields; raise CifarlabError."""


def base_type(cls: type, name: str):
    """The annotation of field `name` without Optional."""
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def parse_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def parse_words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(",") if word.strip())


def parse_command(text: str) -> tuple[str, ...]:
    """A command line as its words, split as a POSIX shell would."""
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"cannot split {text!r} into words ({exc})") from None


def _choice_type(flag: str, choices: tuple, convert=str):
    def parse(text: str):
        value = convert(text)
        if value not in choices:
            raise argparse.ArgumentTypeError(not_a_choice(f"--{flag}", text, choices))
        return value
    return parse


def _parse_type(parse: Callable):
    """`parse` as an argparse type: a CifarlabError becomes argparse's one-line usage error."""
    def convert(text: str):
        try:
            return parse(text)
        except CifarlabError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _converter(kind):
    """The argparse type of an annotation: tuples of ints or words, list elements, Path, str."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        return parse_ints if typing.get_args(kind)[:1] == (int,) else parse_words
    if origin is list:
        return _converter(typing.get_args(kind)[0])
    return str if kind is typing.Any else kind


DECLARED = object()  # argument_kwargs: the field's declared default


def argument_kwargs(cls: type, f, default=DECLARED) -> dict:
    """argparse keyword arguments for field `f` of `cls` (its declared default unless given;
    REQUIRED makes it a required option)."""
    meta, kind = f.metadata, base_type(cls, f.name)
    value = f.default if default is DECLARED else default
    if default is DECLARED and value is MISSING and f.default_factory is not MISSING:
        value = f.default_factory()
    kwargs = dict(dest=f.name, help=meta["help"])
    if value is MISSING:
        kwargs["required"] = True
    else:
        kwargs["default"] = value
    if kind is bool:
        kwargs["action"] = "store_true" if value is False else argparse.BooleanOptionalAction
        return kwargs
    convert = _parse_type(meta["parse"]) if meta.get("parse") else _converter(kind)
    if meta["choices"]:
        kwargs["metavar"] = meta["metavar"] or "{" + ",".join(map(str, meta["choices"])) + "}"
        convert = _choice_type(flag_name(f), meta["choices"], convert)
        kwargs["choices"] = meta["choices"]  # checked by `convert` already; named when it is missing
    else:
        kwargs["metavar"] = meta["metavar"]
    kwargs["type"] = convert
    if meta["const"] is not None:
        kwargs.update(nargs="?", const=meta["const"])
    return kwargs


def _add_one(target, kwargs: dict, f) -> None:
    nargs = f.metadata.get("positional")
    if nargs:  # a positional argument: named by its dest, shown by its metavar
        kwargs.pop("required", None)
        target.add_argument(kwargs.pop("dest"), nargs=nargs, **kwargs)
    else:
        target.add_argument(f"--{flag_name(f)}", **kwargs)


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: Iterable[str] = (),
                  defaults: dict | None = None, help_suffix: Callable | None = None) -> None:
    """One `--flag` per field of `cls` with cli=True, in declaration order, grouped by `group`
    (and, for fields with the same `exclusive`, in one mutually exclusive group).

    defaults: argparse defaults that differ from the declared ones (None = "not given", for
    options whose default is resolved later); help_suffix(field) -> text appended to the help.
    """
    groups: dict[str, argparse._ArgumentGroup] = {}
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f in fields(cls):
        if not f.metadata.get("cli", False) or f.name in set(skip):
            continue
        kwargs = argument_kwargs(cls, f, (defaults or {}).get(f.name, DECLARED))
        if help_suffix:
            kwargs["help"] += help_suffix(f)
        name = f.metadata["group"]
        if name is not None and name not in groups:
            groups[name] = parser.add_argument_group(name)
        target = parser if name is None else groups[name]
        together = f.metadata.get("exclusive")
        if together and together not in exclusive:
            exclusive[together] = target.add_mutually_exclusive_group()
        _add_one(exclusive[together] if together else target, kwargs, f)


def from_args(cls: type, args: argparse.Namespace, **overrides):
    """The `cls` of parsed arguments (fields missing from `args` keep their defaults)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls)
              if f.metadata.get("cli", False) and hasattr(args, f.name)}
    return cls(**{**values, **overrides})


def from_values(cls: type, caller: str, values: dict):
    """The `cls` of keyword values (the Python API): an unknown name is a one-line error with a
    did-you-mean, as a mistyped flag is on the command line."""
    names = [f.name for f in fields(cls)]
    unknown = [name for name in values if name not in names]
    if unknown:
        raise CifarlabError(f"{caller}: unknown option {unknown[0]!r}; {did_you_mean(unknown[0], names)}"
                            "the options are the command's flags, with _ for -")
    missing = [f.name for f in fields(cls) if f.name not in values
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise CifarlabError(f"{caller}: {missing[0]} is required")
    return cls(**values)


def describe(config, sources: dict[str, str] | None = None) -> list[tuple[str, object, str]]:
    """(flag, value, source) for every field; source is sources[name], else "default" when the
    value equals the declared default, else "set"."""
    rows = []
    for f in fields(config):
        value = getattr(config, f.name)
        declared = f.default if f.default_factory is MISSING else f.default_factory()
        source = (sources or {}).get(f.name) or ("default" if value == declared else "set")
        rows.append((flag_name(f), value, source))
    return rows


def format_description(rows: list[tuple[str, object, str]]) -> str:
    width = max(len(flag) for flag, _, _ in rows)
    shown = (",".join(map(str, v)) if isinstance(v, tuple) else v for _, v, _ in rows)
    return "\n".join(f"{flag:<{width}}  {value!s:<24} {source}"
                     for (flag, _, source), value in zip(rows, shown))
