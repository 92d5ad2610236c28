"""Every setting of `cifarlab live` in one dataclass: each option's default, help and check are
declared here once; the CLI is built from it (`options.add_arguments`), tests build it directly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cifarlab.errors import CifarlabError
from cifarlab.inference.choice import backend_option, model_option
from cifarlab.inference.rejection import parse_threshold, threshold_option
from cifarlab.live.roi import MIN_SIDE
from cifarlab.live.teach import TRAIN_COMMAND_HELP
from cifarlab.options import Options, at_least, between, option, parse_command

WINDOW_NAME = "cifarlab live"
TEACH = "collect and train in the window"


def roi_problem(roi: tuple[int, ...]) -> str | None:
    """What is wrong with an x, y, w, h region in frame pixels, or None."""
    if len(roi) == 4 and min(roi[:2]) >= 0 and min(roi[2:]) >= MIN_SIDE:
        return None
    return (f"must be x,y,w,h in pixels (e.g. 100,50,200,200) with x and y >= 0 and w, h at least "
            f"{MIN_SIDE}, got {','.join(map(str, roi))}")


def seconds(help: str, default: float):
    return option(default, help, metavar="SECONDS", check=at_least(0))


@dataclass
class LiveConfig(Options):
    model: Path | None = model_option()
    source: str = option("auto", "auto (the first camera, or the built-in demo scene when there is "
                                 "none), a camera index, a video file, an rtsp://... or http://... "
                                 "URL, or demo")
    roi: tuple[int, int, int, int] | None = option(
        None, "region to classify, in frame pixels (default: a centred square, see --roi-size)",
        metavar="X,Y,W,H", check=roi_problem, exclusive="roi")
    roi_size: float = option(0.5, "default region: a centred square this fraction of the shorter "
                                  "frame side", metavar="FRACTION", check=between(0.05, 1.0),
                             exclusive="roi")
    backend: str = backend_option()
    window: bool = option(True, "show the video in a window; --no-window: headless, no GUI (use "
                                "with --record and/or --jsonl)")
    record: Path | None = option(None, "write the annotated video (mp4v)", metavar="OUT.mp4")
    jsonl: Path | None = option(None, "write one JSON line per classified frame (frame, timestamp, "
                                      "label, class, confidence, top_k, ood_score, unknown, "
                                      "inference_ms, roi; truth in the demo scene)",
                                metavar="PREDS.jsonl")
    smoothing: float = option(0.0, "temporal smoothing: exponential moving average of the "
                                   "probabilities and the open-set score, weight A of the past in [0, 1); 0 = off",
                              metavar="A", check=between(0.0, 1.0, open_high=True))
    threshold: float = option(0.0, "show 'uncertain' when the top probability is below T",
                              metavar="T", check=between(0.0, 1.0))
    ood_threshold: str | float = threshold_option()
    mirror: bool = option(False, "flip the image left-right (selfie view)")
    loop: bool = option(False, "restart a video file at its end")
    max_frames: int | None = option(None, "stop after N processed frames", metavar="N",
                                    check=at_least(1))
    width: int | None = option(None, "requested camera frame width (demo: frame width; default 1280)",
                               metavar="PX", check=at_least(1))
    height: int | None = option(None, "requested camera frame height (demo: frame height; default "
                                      "720)", metavar="PX", check=at_least(1))
    threads: int | None = option(None, "inference (and OpenCV) threads (default: the runtime's)",
                                 metavar="N", check=at_least(1))
    top_k: int = option(3, "bars shown", metavar="K", check=at_least(1))
    snapshot_dir: Path = option(Path("."), "where `s` saves snapshots", metavar="DIR")
    open_timeout: float = seconds("give up opening a source after this long", 10.0)
    read_timeout: float = seconds("a camera/stream silent this long counts as lost", 5.0)
    reconnect_timeout: float = seconds("keep trying to reconnect a lost camera or stream this long, "
                                       "then exit", 15.0)
    realtime: bool | None = option(None, "pace video files at their FPS (None: when a window is shown)",
                                   cli=False)
    data: str | None = option(None, "demo scene (implied): show this dataset's test photos, a CIFAR "
                                    "archive or image folder (default: the bundled CIFAR-10 test "
                                    "sample)", metavar="SOURCE")
    collect: Path | None = option(None, "keys 1-9 save the region into DIR/<class>/ and t trains a "
                                        "model on DIR without leaving the window (created if "
                                        "missing; added to if not)", metavar="DIR", group=TEACH)
    classes: tuple[str, ...] = option((), "classes to collect, besides the class folders already in "
                                          "DIR (keys follow: DIR's folders sorted, then these), e.g. "
                                          "mug,phone,background", metavar="A,B,C", group=TEACH)
    train_command: tuple[str, ...] | None = option(
        None, f"what t runs, {{data}}, {{from}}, {{out}} and {{python}} filled in (default: "
              f"{TRAIN_COMMAND_HELP})", metavar="CMD", parse=parse_command, group=TEACH)
    watch_model: bool = option(True, "reload --model PATH when the file changes", cli=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data is not None:
            self.source = "demo"  # --data implies the demo scene

    def check(self) -> None:
        self.ood_threshold = parse_threshold(self.ood_threshold)
        if (self.width is None) != (self.height is None):
            raise CifarlabError("give --width and --height together")
        if self.data is not None and self.source not in ("auto", "demo"):
            raise CifarlabError("--data shows a dataset in the demo scene; use it without --source "
                                "(or with --source demo)")
        if self.classes and self.collect is None:
            raise CifarlabError("--classes names the classes to collect; use it with --collect DIR")
        if self.train_command is not None and not self.train_command:
            raise CifarlabError("--train-command is empty")
