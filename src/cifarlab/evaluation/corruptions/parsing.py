"""The command line's corruption and severity lists: 'main,spatter', '1-2,5'."""

from __future__ import annotations

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.corruptions.registry import (
    REGISTRY,
    all_names,
    extra_names,
    main_names,
    normalise,
    unknown,
)


def _groups() -> dict[str, tuple[str, ...]]:
    return {"all": all_names(), "main": main_names(), "extra": extra_names()}


def parse_corruptions(text: str) -> list[str]:
    """'all' (19), 'main' (the 15), 'extra' (4) or a comma list of names and groups, in order."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise CifarlabError("no corruption given; pass 'all', 'main' or a comma list such as "
                            "'gaussian_noise,contrast'")
    groups = _groups()
    out: list[str] = []
    for item in items:
        key = normalise(item)
        if key in groups:
            names = list(groups[key])
        elif key in REGISTRY:
            names = [key]
        else:
            raise unknown(item, list(groups) + list(all_names()), "corruption")
        out.extend(n for n in names if n not in out)
    return out


def parse_severities(text: str) -> list[int]:
    """'1-5', '3', '1,3,5' (or a mix, e.g. '1-2,5') -> sorted severities, each in 1..5."""
    found: set[int] = set()
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise CifarlabError("no severity given; pass e.g. '1-5', '3' or '1,3,5'")
    for item in items:
        lo_text, sep, hi_text = item.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if sep else lo
        except ValueError:
            raise CifarlabError(f"bad severity '{item}': use numbers 1-5, e.g. '1-5', '3' or "
                                "'1,3,5'") from None
        if lo > hi:
            raise CifarlabError(f"bad severity range '{item}': write it low-high, e.g. '{hi}-{lo}'")
        if lo < 1 or hi > 5:
            raise CifarlabError(f"severity '{item}' is out of range: severities are 1 to 5")
        found.update(range(lo, hi + 1))
    return sorted(found)
