"""The one table of corruptions: each family module declares its operations with `@corruption`.

    @corruption("gaussian_noise", params=(0.04, 0.06, 0.08, 0.09, 0.10), main=True)
    def gaussian_noise(x, c, rng): ...

declares the name, the parameters of severities 1..5 (make_cifar_c.py's 32x32 table), whether it
is one of the 15 benchmark corruptions, and the operation: a function of a uint8 batch
(N, S, S, 3), one severity's parameters and the random generator, returning a uint8 batch.
`main_names()` and `extra_names()` keep the order of declaration, which is the published order
because the package imports the families in it; `REGISTRY` itself is in family order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.options import choice_error

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
Operation = Callable[[np.ndarray, object, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Corruption:
    name: str
    params: tuple  # one entry per severity, 1..5
    main: bool  # one of the 15 CIFAR-10-C benchmark corruptions (else one of the 4 extras)
    apply: Operation


_TABLE: dict[str, Corruption] = {}
REGISTRY: Mapping[str, Corruption] = MappingProxyType(_TABLE)


def corruption(name: str, params: tuple, main: bool = False) -> Callable[[Operation], Operation]:
    """Register the decorated operation as corruption `name` with its per-severity `params`."""
    if name in _TABLE:
        raise ValueError(f"corruption {name!r} is declared twice")
    if len(params) != len(SEVERITIES):
        raise ValueError(f"corruption {name!r} needs {len(SEVERITIES)} severities of parameters, "
                         f"got {len(params)}")

    def register(op: Operation) -> Operation:
        _TABLE[name] = Corruption(name, tuple(params), main, op)
        return op

    return register


def main_names() -> tuple[str, ...]:
    return tuple(name for name, c in _TABLE.items() if c.main)


def extra_names() -> tuple[str, ...]:
    return tuple(name for name, c in _TABLE.items() if not c.main)


def all_names() -> tuple[str, ...]:
    return main_names() + extra_names()


def normalise(word: str) -> str:
    return str(word).strip().lower().replace("-", "_")


def unknown(word: str, choices: Iterable[str], what: str) -> CifarlabError:
    """The error for a name not among `choices`, suggesting the closest one."""
    return CifarlabError(choice_error(f"unknown {what} {word!r}", normalise(word), choices))


def lookup(name: str) -> Corruption:
    """The corruption called `name` (any case, '-' for '_'), or a did-you-mean error."""
    found = _TABLE.get(normalise(name))
    if found is None:
        raise unknown(str(name), all_names(), "corruption")
    return found
