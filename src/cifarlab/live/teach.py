"""Train without leaving the live window, and pick up a changed model file.

- `TrainingRun`: `t` in `--collect` mode starts `cifarlab train --data DIR --from PARENT --out
  RUN --transfer head --quiet` as a separate process (the video never waits for it; `cifarlab.live` does not
  import the training code). RUN is `DIR/.cifarlab-runs/<stamp>/` (hidden folders are no class
  folders to the dataset reader), its output goes to `<stamp>.log` beside it. The app polls it
  once per frame.
- `BackgroundLoad`: opens a model (Keras load, LiteRT conversion, warm-up) on a thread, so the
  old model keeps classifying until the new one is ready to swap in.
- `ModelWatcher`: `--model PATH` is stat-ed once a second; a changed file is reloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cifarlab.errors import CifarlabError

RUNS_FOLDER = ".cifarlab-runs"
# --transfer head: a new head on features computed once takes seconds (the 30 s goal from t to
# the new model live); finetune, the trainer's own default, is more accurate but slower and
# diverged from the shipped model on 3 x 30 crops (bench/teach_latency.py)
DEFAULT_TRAIN_COMMAND = ("{python}", "-m", "cifarlab.cli.main", "train", "--data", "{data}",
                         "--from", "{from}", "--out", "{out}", "--transfer", "head", "--quiet")
TRAIN_COMMAND_HELP = " ".join(DEFAULT_TRAIN_COMMAND).replace("{python}", "python")


def fill_command(command: tuple[str, ...] | list[str], data: Path, parent: Path, out: Path) -> list[str]:
    """The training command with {python}, {data}, {from} and {out} filled in."""
    values = {"{python}": sys.executable, "{data}": str(data), "{from}": str(parent),
              "{out}": str(out)}
    argv = []
    for part in command:
        for key, value in values.items():
            part = part.replace(key, value)
        argv.append(part)
    return argv


def last_error(text: str) -> str:
    """The line that says what went wrong: `cifarlab train: error: ...`, else the last
    traceback/other line; '' for no output."""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    for line in reversed(lines):
        if ": error: " in line:
            return line.split(": error: ", 1)[1]
    return lines[-1] if lines else ""


class TrainingRun:
    """One background training process and what it has written so far."""

    def __init__(self, command, data: Path, parent: Path, runs_root: Path):
        runs_root = Path(runs_root)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out = runs_root / stamp
        n = 1
        while self.out.exists() or self.out.with_suffix(".log").exists():
            n += 1
            self.out = runs_root / f"{stamp}-{n}"
        self.log_path = self.out.with_name(self.out.name + ".log")
        self.model_path = self.out / "model.keras"
        self.argv = fill_command(command, data, parent, self.out)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
               "PYTHONUNBUFFERED": "1"}
        try:
            runs_root.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env)
        except OSError as exc:
            raise CifarlabError(f"cannot start the training command {self.argv[0]!r} "
                                f"({exc.strerror or exc})") from None
        self.started = time.monotonic()
        self.ended: float | None = None
        self._epochs, self._epochs_checked = 0, 0.0

    def poll(self) -> int | None:
        code = self.proc.poll()
        if code is not None and self.ended is None:
            self.ended = time.monotonic()
        return code

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def epochs(self) -> int:
        """Epochs finished so far (rows of RUN/log.csv, if the trainer writes one); read at
        most twice a second."""
        now = time.monotonic()
        if now - self._epochs_checked >= 0.5:
            self._epochs_checked = now
            try:
                rows = (self.out / "log.csv").read_text(encoding="utf-8").splitlines()
                self._epochs = max(0, len([r for r in rows if r.strip()]) - 1)
            except (OSError, UnicodeDecodeError):
                pass
        return self._epochs

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def error(self) -> str:
        code = self.poll()
        line = last_error(self.output())
        if code == 0 and not self.model_path.is_file():
            return f"it exited without writing {self.model_path}"
        return line or f"exit code {code}"

    def stop(self, timeout: float = 3.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


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
