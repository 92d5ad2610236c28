"""`cifarlab live`: classify a region of a webcam, video file, stream or demo scene, live."""

from __future__ import annotations

import argparse
import os
import sys

from cifarlab import options
from cifarlab.cli.common import EpilogHelpFormatter
from cifarlab.live.config import LiveConfig
from cifarlab.live.keys import help_line

EPILOG = """\
Sources: a camera index (0), a video file, an rtsp:// or http:// stream, or `demo` (for machines
without a camera: CIFAR-10 test photos mixed with real photos of the classes and of things that
are none of them, or with --data that dataset's test photos, each with its true label and a
running accuracy; drawn cards for models of other classes). Cameras and streams
are read on their own thread keeping only the latest frame; video files give every frame in order
(with a window paced at the file's FPS; with --no-window as fast as possible, so the same file
always gives the same --jsonl output).

Window keys: {keys}. The class-activation map (e) shows where the model looks (LayerCAM,
computed from a .keras model on a worker thread). State changes are printed as lines such as
`inference: OFF`.

Teach it your own classes (--collect DIR): keys 1-9 save the region, at full resolution, as a
new PNG in DIR/<class>/ (holding a key saves 4 a second; files are never overwritten, an
existing DIR is added to). The classes are DIR's class folders (sorted) followed by the
--classes names not among them; the overlay lists each key, class and count and the last crop.
Add a background class (what the camera sees when none of your objects is there). `t` trains on
DIR in a separate process (the video keeps running): `cifarlab train --data DIR --from MODEL
--out DIR/.cifarlab-runs/<time> --transfer head --quiet`, MODEL being the .keras model running
(else the shipped one); the overlay shows its progress, then the new model replaces the old one
and its classes are shown (how long it takes: docs/results.md, Learning new classes). A failed
run is shown on screen (its log sits beside the run folder) and the old model keeps running.
With --model PATH, a changed file at PATH is loaded the same way.

  cifarlab live --collect my_things --classes mug,phone,background
""".format(keys=help_line())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = EpilogHelpFormatter
    options.add_arguments(parser, LiveConfig)


def run(args: argparse.Namespace) -> int:
    from cifarlab.live.app import run_live

    config = options.from_args(LiveConfig, args)
    code = run_live(config)
    if config.window:
        # The window is closed, the recording and JSONL are flushed and closed: leave now.
        # TensorFlow's interpreter teardown otherwise keeps a finished interactive process
        # alive for seconds after `q` (nothing of ours needs atexit handlers).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
