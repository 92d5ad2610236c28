"""`cifarlab live`: classify a region of a webcam, video file, stream or demo scene, live."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from cifarlab.cli.common import add_model_argument

EPILOG = """\
Sources: a camera index (0), a video file, an rtsp:// or http:// stream, or `demo` (for machines
without a camera: CIFAR-10 test photos, or with --data that dataset's test photos, each with its
true label and a running accuracy; drawn cards for models of other classes). Cameras and streams
are read on their own thread keeping only the latest frame; video files give every frame in order
(with a window paced at the file's FPS; with --no-window as fast as possible, so the same file
always gives the same --jsonl output).

Window: left click toggles inference, e toggles the class-activation map (where the model looks,
LayerCAM, computed from a .keras model on a worker thread) over the region, space pauses, +/-
resize the region, s saves a snapshot PNG, q or Esc quits (so does closing the window). State changes are printed as lines such as
`inference: OFF`.

Teach it your own classes (--collect DIR): keys 1-9 save the region, at full resolution, as a
new PNG in DIR/<class>/ (holding a key saves 4 a second; files are never overwritten, an
existing DIR is added to). The classes are DIR's class folders (sorted) followed by the
--classes names not among them; the overlay lists each key, class and count and the last crop.
Add a background class (what the camera sees when none of your objects is there). `t` trains on
DIR in a separate process (the video keeps running): `cifarlab train --data DIR --from MODEL
--out DIR/.cifarlab-runs/<time> --transfer head --quiet`, MODEL being the .keras model running
(else the shipped one); the overlay shows its progress, then the new model replaces the old one
and its classes are shown (3 classes x 30 images: 23 s median on 2 busy CPU cores). A failed run is shown on screen (its log sits beside the run folder) and the
old model keeps running. With --model PATH, a changed file at PATH is loaded the same way.

  cifarlab live --collect my_things --classes mug,phone,background
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_model_argument(parser)
    parser.add_argument("--source", default="auto",
                        help="auto (the first camera, or the built-in demo scene when there is "
                             "none), a camera index, a video file, an rtsp://... or http://... URL, "
                             "or demo (default: auto)")
    roi = parser.add_mutually_exclusive_group()
    roi.add_argument("--roi", metavar="X,Y,W,H", help="region to classify, in frame pixels")
    roi.add_argument("--roi-size", type=float, default=0.5, metavar="FRACTION",
                     help="default region: a centred square this fraction of the shorter frame "
                          "side (default: 0.5)")
    parser.add_argument("--no-window", action="store_true",
                        help="headless: no GUI; use with --record and/or --jsonl")
    parser.add_argument("--record", type=Path, metavar="OUT.mp4",
                        help="write the annotated video (mp4v)")
    parser.add_argument("--jsonl", type=Path, metavar="PREDS.jsonl",
                        help="write one JSON line per classified frame (frame, timestamp, label, "
                             "confidence, top_k, inference_ms, roi)")
    parser.add_argument("--smoothing", type=float, default=0.0, metavar="A",
                        help="temporal smoothing: exponential moving average of the probabilities, "
                             "weight A of the past in [0, 1); 0 = off (default: 0)")
    parser.add_argument("--threshold", type=float, default=0.0, metavar="T",
                        help="show 'uncertain' when the top probability is below T (default: 0)")
    parser.add_argument("--top-k", type=int, default=3, metavar="K", help="bars shown (default: 3)")
    parser.add_argument("--mirror", action="store_true", help="flip the image left-right (selfie view)")
    parser.add_argument("--loop", action="store_true", help="restart a video file at its end")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after N processed frames")
    parser.add_argument("--width", type=int, metavar="PX",
                        help="requested camera frame width (demo: frame width; default 1280)")
    parser.add_argument("--height", type=int, metavar="PX",
                        help="requested camera frame height (demo: frame height; default 720)")
    parser.add_argument("--threads", type=int, metavar="N", help="inference (and OpenCV) threads")
    parser.add_argument("--snapshot-dir", type=Path, default=Path("."),
                        help="where `s` saves snapshots (default: current folder)")
    parser.add_argument("--data", metavar="SOURCE",
                        help="demo scene (implied): show this dataset's test photos, a CIFAR "
                             "archive or image folder (default: the bundled CIFAR-10 test sample)")
    parser.add_argument("--reconnect-timeout", type=float, default=15.0, metavar="SECONDS",
                        help="keep trying to reconnect a lost camera or stream this long, then "
                             "exit (default: 15)")
    parser.add_argument("--read-timeout", type=float, default=5.0, metavar="SECONDS",
                        help="a camera/stream silent this long counts as lost (default: 5)")
    parser.add_argument("--open-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="give up opening a source after this long (default: 10)")
    from cifarlab.live.teach import TRAIN_COMMAND_HELP

    teach = parser.add_argument_group("collect and train in the window")
    teach.add_argument("--collect", type=Path, metavar="DIR",
                       help="keys 1-9 save the region into DIR/<class>/ and t trains a model on "
                            "DIR without leaving the window (created if missing; added to if not)")
    teach.add_argument("--classes", metavar="A,B,C",
                       help="classes to collect, besides the class folders already in DIR "
                            "(keys follow: DIR's folders sorted, then these), e.g. "
                            "mug,phone,background")
    teach.add_argument("--train-command", metavar="CMD",
                       help="what t runs, {data}, {from}, {out} and {python} filled in "
                            f"(default: {TRAIN_COMMAND_HELP})")


def config_from_args(args: argparse.Namespace):
    from cifarlab.live.collect import parse_classes
    from cifarlab.live.config import LiveConfig
    from cifarlab.live.roi import parse_roi

    return LiveConfig(
        model=args.model, source=str(args.source),
        roi=parse_roi(args.roi) if args.roi else None, roi_size=args.roi_size,
        backend=args.backend, window=not args.no_window, record=args.record, jsonl=args.jsonl,
        smoothing=args.smoothing, threshold=args.threshold, top_k=args.top_k, mirror=args.mirror,
        loop=args.loop, max_frames=args.max_frames, width=args.width, height=args.height,
        threads=args.threads, snapshot_dir=args.snapshot_dir,
        reconnect_timeout=args.reconnect_timeout, read_timeout=args.read_timeout,
        open_timeout=args.open_timeout, data=args.data,
        collect=args.collect, classes=tuple(parse_classes(args.classes)),
        train_command=tuple(shlex.split(args.train_command)) if args.train_command else None,
    )


def run(args: argparse.Namespace) -> int:
    from cifarlab.live.app import run_live

    config = config_from_args(args)
    code = run_live(config)
    if config.window:
        # The window is closed, the recording and JSONL are flushed and closed: leave now.
        # TensorFlow's interpreter teardown otherwise keeps a finished interactive session
        # alive for 2-4 s after `q` (nothing of ours needs atexit handlers).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
