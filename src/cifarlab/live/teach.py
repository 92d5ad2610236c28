"""Key `t`: train on the collected images without leaving the live window.

- `Teacher`: one run at a time, on the `--collect` folder, from the Keras model running now
  (else the shipped one); the app polls it once per frame and swaps the new model in
  (`swap.ModelSwap`) when it has finished.
- `TrainingRun`: `cifarlab train --data DIR --from PARENT --out RUN --transfer head --quiet` as a
  separate process (the video never waits for it; `cifarlab.live` does not import the training
  code). RUN is `DIR/.cifarlab-runs/<stamp>/` (hidden folders are no class folders to the
  dataset reader), its output goes to `<stamp>.log` beside it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from cifarlab.errors import CifarlabError
from cifarlab.live.collect import Collector
from cifarlab.models.io import default_model_path

logger = logging.getLogger(__name__)

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


def parent_model(running: Path | None) -> Path | None:
    """What `t` trains from: the Keras model running now, else the shipped one."""
    if running is not None and Path(running).suffix.lower() == ".keras":
        return Path(running)
    default = default_model_path()
    return default if default.is_file() else None


class Teacher:
    """Key `t`: at most one `TrainingRun` (`run`) on the collected images."""

    def __init__(self, collector: Collector):
        self.collector = collector
        self.run: TrainingRun | None = None
        self.started: float | None = None       # when the latest run was started

    def start(self, running: Path | None, command: tuple[str, ...] | None = None) -> None:
        """Train from the model at `running` with `command` (None: DEFAULT_TRAIN_COMMAND); a
        CifarlabError says why it cannot."""
        classes, why = self.collector.trainable()
        if why is not None:
            raise CifarlabError(f"cannot train yet: {why}")
        parent = parent_model(running)
        if parent is None:
            raise CifarlabError("no .keras model to train from (run with --model PATH.keras)")
        root = self.collector.root
        self.run = TrainingRun(command or DEFAULT_TRAIN_COMMAND, root, parent, root / RUNS_FOLDER)
        self.started = self.run.started
        counts = self.collector.counts
        logger.info(f"teach: training on {sum(counts[n] for n in classes)} images "
                    f"({', '.join(f'{n} {counts[n]}' for n in classes)}) from {parent} -> "
                    f"{self.run.out} (log {self.run.log_path})")

    def finished(self) -> TrainingRun | None:
        """The run whose process has just ended (once), else None."""
        run = self.run
        if run is None or run.poll() is None:
            return None
        self.run = None
        return run

    def progress(self) -> str | None:
        """`training... 12 s (epoch 3)` while a run is going."""
        if self.run is None:
            return None
        epochs = self.run.epochs()
        return f"training... {self.run.elapsed:.0f} s" + (f" (epoch {epochs})" if epochs else "")

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop()
            logger.info(f"teach: training stopped ({self.run.out} is incomplete)")
            self.run = None
