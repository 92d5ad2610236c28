"""Every setting of `cifarlab live` in one dataclass (the CLI fills it, tests build it directly)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cifarlab.inference.open import BACKENDS

WINDOW_NAME = "cifarlab live"


@dataclass
class LiveConfig:
    model: Path | None = None
    source: str = "auto"                    # auto (camera 0, else demo), camera index, video path, URL, "demo"
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h in frame pixels (None: centred square)
    roi_size: float = 0.5                   # default ROI side as a fraction of the shorter frame side
    backend: str = "auto"                   # see cifarlab.inference.open_classifier
    window: bool = True                     # False: --no-window (headless)
    record: Path | None = None              # annotated video out (mp4v)
    jsonl: Path | None = None               # one JSON line per processed frame
    smoothing: float = 0.0                  # EMA weight of the previous probabilities, 0 = off
    threshold: float = 0.0                  # top-1 below this shows "uncertain"
    mirror: bool = False
    loop: bool = False                      # rewind video files at the end
    max_frames: int | None = None
    width: int | None = None                # requested camera resolution (demo: frame size)
    height: int | None = None
    threads: int | None = None              # inference threads (None: runtime default)
    top_k: int = 3
    snapshot_dir: Path = Path(".")
    open_timeout: float = 10.0              # seconds to open a source
    read_timeout: float = 5.0               # seconds without a frame before the source counts as lost
    reconnect_timeout: float = 15.0         # keep trying to reconnect a lost camera/stream this long
    realtime: bool | None = None            # pace video files at their FPS (None: when a window is shown)
    data: str | None = None                 # demo: show this dataset's test photos (implies --source demo)
    collect: Path | None = None             # keys 1-9 save the region into collect/<class>/, t trains
    classes: tuple[str, ...] = ()           # --classes: collect classes besides the folders in `collect`
    train_command: tuple[str, ...] | None = None  # what `t` runs (None: teach.DEFAULT_TRAIN_COMMAND)
    watch_model: bool = True                # reload --model PATH when the file changes

    def __post_init__(self) -> None:
        from cifarlab.errors import CifarlabError

        if not 0.0 <= self.smoothing < 1.0:
            raise CifarlabError(f"--smoothing must be in [0, 1), got {self.smoothing}")
        if not 0.0 <= self.threshold <= 1.0:
            raise CifarlabError(f"--threshold must be in [0, 1], got {self.threshold}")
        if not 0.05 <= self.roi_size <= 1.0:
            raise CifarlabError(f"--roi-size must be in [0.05, 1], got {self.roi_size}")
        if self.backend not in BACKENDS:
            raise CifarlabError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.max_frames is not None and self.max_frames < 1:
            raise CifarlabError(f"--max-frames must be at least 1, got {self.max_frames}")
        if (self.width is None) != (self.height is None):
            raise CifarlabError("give --width and --height together")
        if self.threads is not None and self.threads < 1:
            raise CifarlabError(f"--threads must be at least 1, got {self.threads}")
        if self.top_k < 1:
            raise CifarlabError("top-k must be at least 1")
        if self.data is not None and self.source not in ("auto", "demo"):
            raise CifarlabError("--data shows a dataset in the demo scene; use it without --source "
                                "(or with --source demo)")
        if self.data is not None:
            self.source = "demo"
        if self.classes and self.collect is None:
            raise CifarlabError("--classes names the classes to collect; use it with --collect DIR")
        if self.train_command is not None and not self.train_command:
            raise CifarlabError("--train-command is empty")
