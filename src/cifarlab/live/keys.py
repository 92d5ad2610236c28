"""The keys of `cifarlab live`, declared once: `bind` maps key codes to the actions of the app,
`help_line` is the overlay's help line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

KEY_ESC = 27
CLICK_HELP = "click: inference on/off"


@dataclass(frozen=True)
class Key:
    label: str                # the key as the help line names it
    chars: str                # the characters that press it (upper and lower case)
    action: str               # the app's method it calls
    help: str | None = None   # None: not on the help line (another entry or CLICK_HELP says it)
    collect: bool = False     # only with --collect
    with_code: bool = False   # the method is given the key code (1-9: which class)
    codes: tuple[int, ...] = ()  # key codes with no character (Esc)


KEYS = (
    Key("i", "iI", "toggle_inference"),
    Key("e", "eE", "toggle_explain", "heatmap"),
    Key("u", "uU", "toggle_open_set", "unknown on/off"),
    Key("space", " ", "toggle_pause", "pause"),
    Key("+/-", "+=", "grow_roi", "ROI size"),
    Key("-", "-_", "shrink_roi"),
    Key("s", "sS", "save_snapshot", "snapshot"),
    Key("q/Esc", "qQ", "quit_live", "quit", codes=(KEY_ESC,)),
    Key("1-9", "123456789", "collect", collect=True, with_code=True),
    Key("t", "tT", "start_training", collect=True),
)


def key_codes(key: Key) -> tuple[int, ...]:
    return (*map(ord, key.chars), *key.codes)


def bind(app, collecting: bool, keys: tuple[Key, ...] = KEYS) -> dict[int, Callable[[], object]]:
    """Key code -> the app's action for it (the --collect keys only when `collecting`)."""
    table = {}
    for key in keys:
        if key.collect and not collecting:
            continue
        method = getattr(app, key.action)
        for code in key_codes(key):
            table[code] = partial(method, code) if key.with_code else method
    return table


def help_line(keys: tuple[Key, ...] = KEYS) -> str:
    """`click: inference on/off | e: heatmap | ...` (the collect keys have their own panel)."""
    return " | ".join([CLICK_HELP, *(f"{k.label}: {k.help}" for k in keys if k.help)])
