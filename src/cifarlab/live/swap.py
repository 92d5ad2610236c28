"""The model running live, and the hot swap that replaces it without stopping the video.

- `ModelSwap.start()` opens the first model in the foreground; `open_predictor` is the one place
  a classifier is opened and warmed up.
- `ModelSwap.load(path, kind)` opens a new one on a thread (`BackgroundLoad`): the old model
  keeps classifying every frame meanwhile, and stays if the new one fails. `kind` is "teach"
  (the model `t` trained) or "watch" (`--model PATH` changed).
- `ModelWatcher`: `--model PATH` is stat-ed once a second; a changed file is loaded as above.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cifarlab.errors import CifarlabError
from cifarlab.inference import open_classifier
from cifarlab.live.config import LiveConfig
from cifarlab.live.predictor import LivePredictor
from cifarlab.models.io import resolve_model_path

logger = logging.getLogger(__name__)


class BackgroundLoad:
    """`factory()` run on a daemon thread; `done` once it returned or raised."""

    def __init__(self, factory: Callable[[], object], path: Path, kind: str):
        self.path, self.kind = Path(path), kind
        self.value = None
        self.error: str | None = None
        self.started = time.monotonic()
        self._done = threading.Event()
        self._factory = factory
        threading.Thread(target=self._run, name=f"load-{kind}", daemon=True).start()

    def _run(self) -> None:
        try:
            self.value = self._factory()
        except CifarlabError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bad file must not end the live session
            self.error = f"{exc.__class__.__name__}: {exc}"
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class ModelWatcher:
    """Says once when the file at `path` changed (modification time or size), after it has
    stopped changing: unchanged since the previous check, or last modified `settle` seconds
    ago (a file renamed into place is complete at once; one being copied is waited for)."""

    def __init__(self, path: str | Path, interval: float = 1.0, settle: float = 0.5,
                 clock=time.monotonic, wall=time.time):
        self.path = Path(path)
        self.interval, self.settle = interval, settle
        self.clock, self.wall = clock, wall
        self.seen = _stat(self.path)
        self._pending: tuple[int, int] | None = None
        self._next = clock() + interval

    def changed(self) -> bool:
        now = self.clock()
        if now < self._next:
            return False
        self._next = now + self.interval
        st = _stat(self.path)
        if st is None or st == self.seen:
            self._pending = None
            return False
        if st != self._pending and self.wall() - st[0] / 1e9 < self.settle:
            self._pending = st
            return False
        self.seen, self._pending = st, None
        return True


class ModelSwap:
    """The predictor running now (`predictor`, from the file `path`), the one being loaded to
    replace it (`loading`) and the watcher of `--model PATH` (`watcher`)."""

    def __init__(self, config: LiveConfig, predictor: LivePredictor | None = None):
        self.config = config
        self.predictor = predictor
        self.path: Path | None = config.model
        self.loading: BackgroundLoad | None = None
        self.watcher: ModelWatcher | None = None

    def open_predictor(self, path: Path, swap: bool = True) -> LivePredictor:
        """Open and warm up a model (swap: to replace the running one, on the loader thread).

        A `.keras` file swapped in runs in Keras unless --backend litert asks otherwise: the
        LiteRT conversion holds Python's lock long enough to stop the video, Keras loads without
        a visible stall (bench/teach_latency.py measures it).
        """
        cfg = self.config
        backend = cfg.backend
        if swap and Path(path).suffix.lower() == ".keras" and backend in ("auto", "onnx"):
            backend = "keras"
        classifier = open_classifier(path, backend, cfg.threads, log=logger.info)
        predictor = LivePredictor(classifier, cfg.smoothing, cfg.threshold, cfg.top_k,
                                  cfg.ood_threshold, path)
        predictor.warmup()
        return predictor

    def start(self) -> None:
        """The first model, in the foreground (a given predictor is only warmed up)."""
        cfg = self.config
        if cfg.model and cfg.watch_model:
            self.watcher = ModelWatcher(cfg.model)   # before the load: a change meanwhile counts
        if self.predictor is None:
            self.path = resolve_model_path(cfg.model)
            self.predictor = self.open_predictor(self.path, swap=False)
        else:
            self.predictor.warmup()

    def load(self, path: Path, kind: str) -> None:
        self.loading = BackgroundLoad(lambda: self.open_predictor(path), path, kind)

    def loading_kind(self) -> str | None:
        return self.loading.kind if self.loading is not None else None

    def poll(self) -> BackgroundLoad | None:
        """Once per frame: the load that has just finished, if any (swapped in unless it
        failed); then, with nothing loading, a changed `--model PATH` starts loading."""
        load = self.loading
        if load is not None and load.done:
            self.loading = None
            if load.error is None:
                self.predictor, self.path = load.value, load.path
        else:
            load = None
        if self.watcher is not None and self.loading is None and self.watcher.changed():
            logger.info(f"model: {self.watcher.path} changed; loading it")
            self.load(self.watcher.path, "watch")
        return load
