"""Importing the heavy libraries: `import_tensorflow_quietly()`, and `after_keras(callback)`,
which runs `callback` once Keras is imported, without importing it.

If Keras is imported already, `callback` runs now. Otherwise a finder on `sys.meta_path` wraps
the loaders of `keras` and `tensorflow` (each imports the other, in either order) and runs
`callback` when the outermost of those imports has finished, so both are complete by then; then
it takes itself off `sys.meta_path`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable

WATCHED = ("keras", "tensorflow")


class AfterKeras:
    """The meta-path finder: finds nothing itself, only wraps the watched modules' loaders."""

    def __init__(self, callback: Callable[[], None]):
        self.callback = callback
        self.running = 0      # watched imports in progress
        self.finding = False  # inside our own find_spec call

    def find_spec(self, name, path=None, target=None):
        if name not in WATCHED or self.finding:
            return None
        self.finding = True
        try:
            spec = importlib.util.find_spec(name)  # what the other finders say
        finally:
            self.finding = False
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader.exec_module = self.wrap(spec.loader.exec_module)
        return spec

    def wrap(self, exec_module):
        def run(module) -> None:
            self.running += 1
            try:
                exec_module(module)
            finally:
                self.running -= 1
            if not self.running and "keras" in sys.modules:
                self.finish()
        return run

    def finish(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
            self.callback()


def after_keras(callback: Callable[[], None]) -> None:
    if "keras" in sys.modules:
        callback()
    else:
        sys.meta_path.insert(0, AfterKeras(callback))


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
