"""`StageTimer`: wall-clock seconds of each named stage of a run, and the total since it began."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class StageTimer:
    """    timer = StageTimer()
    with timer.stage("predict"):
        ...
    timer.finish()  # {"predict": 1.234, "total": 1.3}
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - started
            log.debug("%s: %.3f s", name, self.seconds[name])

    def finish(self, digits: int = 3) -> dict[str, float]:
        """Every stage's seconds and "total" (from the timer's creation until now), rounded."""
        self.seconds["total"] = time.perf_counter() - self._started
        return {name: round(value, digits) for name, value in self.seconds.items()}
