"""Press `t` to new model classifying live: the teach latency of `cifarlab live --collect`.

    python bench/teach_latency.py [--model PARENT.keras] [--per-class 30] [--repeats 3]
                                  [--transfer head|finetune]

A folder of 3 classes x --per-class images is made the way the live window collects them
(360x360 PNG crops of a 720p frame's region: a circle, a square, or the empty background).
The live app runs headless on the demo scene at 1280x720, paced at 30 FPS as with a window (same
loop: read, classify, draw the overlay with the collect panel, poll the trainer), with the
parent model (default: the shipped models/cifar10-fast.keras) loaded as `cifarlab live` loads it.
After 30 frames `t` is pressed (`LiveApp.handle_key`), which starts the real
`cifarlab train --data DIR --from PARENT --out RUN --transfer head --quiet` (the live default;
--transfer finetune swaps the mode) as a separate process; the clock stops at the first frame classified by the swapped-in model.
Also recorded: the trainer's own wall time, the model load time, and the frame intervals while
training (the video must not freeze). Writes bench/results/teach_latency.json (`--quick`: 5
images per class, one run, record in a temp folder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from cifarlab.live.app import LiveApp  # noqa: E402
from cifarlab.live.config import LiveConfig  # noqa: E402
from cifarlab.live.demo import DemoSource  # noqa: E402
from cifarlab.live.teach import DEFAULT_TRAIN_COMMAND  # noqa: E402
from cifarlab.models.io import default_model_path  # noqa: E402

import record

GOAL_S = 30.0
CLASSES = ("circle", "square", "background")


def make_folder(root: Path, per_class: int, side: int = 360, seed: int = 0) -> None:
    """ROOT/<class>/<n>.png: crops like the live window saves (region of a 720p frame)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            base = (40 + 50 * xx / side + 30 * yy / side)[..., None] * rng.uniform(0.7, 1.3, 3)
            img = np.clip(base + rng.integers(-8, 9, (side, side, 1)), 0, 255).astype(np.uint8)
            color = tuple(int(c) for c in rng.integers(120, 256, 3))
            c, r = rng.integers(side // 3, 2 * side // 3, 2), int(rng.integers(side // 6, side // 3))
            if name == "circle":
                cv2.circle(img, (int(c[0]), int(c[1])), r, color, -1, cv2.LINE_AA)
            elif name == "square":
                cv2.rectangle(img, (int(c[0] - r), int(c[1] - r)), (int(c[0] + r), int(c[1] + r)),
                              color, -1)
            cv2.imwrite(str(root / name / f"{i:03d}.png"), img)


def one_run(app: LiveApp, source: DemoSource, timeout: float) -> dict:
    """Run the loop, press t after 30 frames, stop at the first frame of the new model."""
    old = app.predictor
    pressed = None
    intervals: list[float] = []
    at: list[float] = []                       # when each frame came, seconds after t
    last = time.perf_counter()
    frames = 0
    while True:
        app.poll_background()
        frame = source.read(timeout=0.1)
        if frame is None:
            continue
        image, pred, _ = app.process(frame)
        app.annotate(image, pred)
        now = time.perf_counter()
        if pressed is not None:
            intervals.append(now - last)
            at.append(time.monotonic() - pressed)
        last = now
        frames += 1
        if frames == 30:
            app.handle_key(ord("t"))
            if app.teacher.run is None:
                raise SystemExit(f"t did not start training: {app.teach_line()}")
            pressed = time.monotonic()
            run = app.teacher.run
        if app.predictor is not old:          # this frame was classified by the new model
            t_to_live = time.monotonic() - pressed
            break
        if pressed is not None and app.teacher.run is None and app.models.loading is None and app.message \
                and "failed" in app.message[0]:
            raise SystemExit(f"training failed: {app.message[0]}\n{run.output()[-2000:]}")
        if pressed is not None and time.monotonic() - pressed > timeout:
            raise SystemExit(f"no new model after {timeout} s")
    ms = np.asarray(intervals) * 1000
    return {
        "t_to_live_s": round(t_to_live, 2),
        "trainer_process_s": round(run.elapsed, 2),
        "load_and_swap_s": round(t_to_live - run.elapsed, 2),
        "run_folder": str(run.out),
        "frames_while_training": len(intervals),
        "fps_while_training": round(len(intervals) / max(1e-9, ms.sum() / 1000), 1),
        "frame_interval_ms": {"median": round(float(np.median(ms)), 1),
                              "p99": round(float(np.percentile(ms, 99)), 1),
                              "max": round(float(ms.max()), 1),
                              "max_at_s_after_t": round(at[int(ms.argmax())], 2),
                              "over_100ms": int((ms > 100).sum())},
        "new_classes": list(app.predictor.class_names),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="parent model running live (default: the shipped model)")
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--transfer", choices=["head", "finetune"], default=None,
                        help="the trainer's --transfer (default: the live default command's)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/teach_latency.json")
    record.add_quick_option(parser)
    args = parser.parse_args(argv)
    run = record.begin(args.quick)
    if args.quick:
        args.per_class, args.repeats = 5, 1

    parent = args.model or default_model_path()
    command = list(DEFAULT_TRAIN_COMMAND)
    if args.transfer:
        command[command.index("--transfer") + 1] = args.transfer
    runs = []
    with tempfile.TemporaryDirectory(prefix="teach-latency-") as tmp:
        data = Path(tmp) / "collected"
        make_folder(data, args.per_class)
        config = LiveConfig(model=parent, source="demo", window=False, collect=data,
                            train_command=tuple(command))
        app = LiveApp(config)
        app.models.predictor = app.models.open_predictor(parent, swap=False)   # as `cifarlab live` starts
        app.models.path = Path(parent)
        for i in range(args.repeats):
            source = DemoSource(app.predictor.class_names, size=(1280, 720), realtime=True)
            result = one_run(app, source, args.timeout)
            print(f"run {i + 1}: t-to-live {result['t_to_live_s']} s (trainer "
                  f"{result['trainer_process_s']} s), {result['fps_while_training']} FPS while "
                  f"training, longest frame {result['frame_interval_ms']['max']} ms", flush=True)
            runs.append(result)
            app.models.predictor = app.models.open_predictor(parent, swap=False)  # from the parent again
            app.models.path = Path(parent)
            app.message = None
    times = [r["t_to_live_s"] for r in runs]
    report = {
        "what": "seconds from pressing t (3 classes x per_class images) to the first frame "
                "classified by the new model, live loop at 1280x720 / 30 FPS, real trainer",
        "train_command": list(command),
        "parent_model": str(parent),
        "per_class": args.per_class,
        "classes": list(CLASSES),
        "goal_s": GOAL_S,
        "t_to_live_s": {"median": statistics.median(times), "min": min(times), "max": max(times)},
        "meets_goal": statistics.median(times) <= GOAL_S,
        "runs": runs,
    }
    out = run.write(args.out or run.path("teach_latency.json"), report)
    print(f"t-to-live median {report['t_to_live_s']['median']} s (goal {GOAL_S} s) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
