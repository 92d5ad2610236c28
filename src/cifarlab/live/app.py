"""`cifarlab live`: one run, from opening the source and the model to the last line printed.

`LiveApp` holds the app's state (region, inference on/off, pause, messages) and the key
actions; its parts each do one thing: `sources` (which source to open), `loop` (the headless and
window loops, one frame path), `swap` (the model running and its hot swap), `teach` (key `t`),
`collect` (keys 1-9), `explain` (key `e`), `sink` (JSONL, video, snapshots) and `keys` (the
key -> action table).

State changes are logged at INFO as `name: VALUE` lines (`inference: OFF`, `paused: ON`,
`open set: OFF`,
`roi: x,y,w,h`, `snapshot: PATH`, `window: ready`, `collect: ...`, `teach: ...`, `model: ...`);
the CLI prints them to stdout as they come, so scripts and tests can follow them.

`--collect DIR`: keys 1-9 save the region's crop into DIR/<class>/; `t` trains on DIR in a
separate process and swaps the new model in when it is loaded. `--model PATH` is reloaded when
the file changes. Models are loaded on a thread: the old one keeps classifying every frame
meanwhile, and stays if the new one fails.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.inference.rejection import UNKNOWN
from cifarlab.live.capture import Frame, source_kind
from cifarlab.live.collect import Collector
from cifarlab.live.config import LiveConfig
from cifarlab.live.explain import LiveExplainer, blend
from cifarlab.live.keys import bind
from cifarlab.live.loop import run_headless, run_window
from cifarlab.live.overlay import (GREEN, RED, YELLOW, CollectPanel, OverlayState, draw_overlay,
                                   score_text, truth_right)
from cifarlab.live.predictor import LivePredictor, Prediction
from cifarlab.live.roi import centered_square, clamp_roi, crop_for_model, scale_roi
from cifarlab.live.sink import OutputSink
from cifarlab.live.sources import check_display, open_auto_source, open_source
from cifarlab.live.swap import BackgroundLoad, ModelSwap
from cifarlab.live.teach import Teacher, TrainingRun

logger = logging.getLogger(__name__)
ROI_STEP = 1.15
MESSAGE_SECONDS = {GREEN: 8.0, RED: 10.0, YELLOW: 4.0}   # how long a teach/collect message stays


class LiveApp:
    def __init__(self, config: LiveConfig, predictor: LivePredictor | None = None, source=None):
        self.config = config
        if config.threads:
            cv2.setNumThreads(config.threads)
        self.source = source
        self.models = ModelSwap(config, predictor)
        self.sink = OutputSink(config.jsonl, config.record, config.snapshot_dir)
        self.collector = Collector(config.collect, list(config.classes)) if config.collect else None
        self.teacher = Teacher(self.collector) if self.collector is not None else None
        self.actions = bind(self, collecting=self.collector is not None)
        self.roi = config.roi
        self.inference_on = True
        self.open_set_on = True              # key u: reject "unknown" regions (when the model can)
        self.paused = False
        self.quit = False
        self.processed = 0
        self.infer_ms: deque[float] = deque(maxlen=30)
        self.frame_times: deque[float] = deque(maxlen=30)
        self._frame_shape: tuple[int, ...] | None = None
        self.truth: str | None = None        # demo: the current picture's true label
        self.score = (0, 0)                  # demo: (right, scored) pictures, one decision each
        self.message: tuple[str, tuple[int, int, int], float] | None = None  # text, colour, until
        self.shown: tuple[np.ndarray, Frame | None] | None = None  # the window's picture, its frame
        self._clean: np.ndarray | None = None  # the last processed frame without the overlay
        self.explainer: LiveExplainer | None = None  # key e: the class-activation map over the region

    @property
    def predictor(self) -> LivePredictor:
        return self.models.predictor

    @property
    def model_path(self) -> Path | None:
        return self.models.path

    # ---- key actions (keys.KEYS names them) ------------------------------------------------
    def handle_key(self, key: int) -> None:
        action = self.actions.get(key & 0xFF) if key >= 0 else None
        if action is not None:
            action()

    def quit_live(self) -> None:
        self.quit = True
        logger.info("quit")

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        logger.info(f"paused: {'ON' if self.paused else 'OFF'}")

    def toggle_inference(self) -> None:
        self.inference_on = not self.inference_on
        if self.inference_on:
            self.predictor.reset()
        logger.info(f"inference: {'ON' if self.inference_on else 'OFF'}")

    def toggle_open_set(self) -> None:
        rejection = self.predictor.rejection
        if not rejection.active:
            self.say(f"{rejection.describe()}: nothing to turn on")
            return
        self.open_set_on = self.predictor.rejecting = not self.open_set_on
        logger.info(f"open set: {'ON' if self.open_set_on else 'OFF'}")

    def grow_roi(self) -> None:
        self._scale_roi(ROI_STEP)

    def shrink_roi(self) -> None:
        self._scale_roi(1 / ROI_STEP)

    def _scale_roi(self, factor: float) -> None:
        if self.roi and self._frame_shape:
            self.set_roi(scale_roi(self.roi, factor, self._frame_shape))

    def set_roi(self, roi) -> None:
        if roi != self.roi:
            self.roi = roi
            self.predictor.reset()
            logger.info("roi: " + ",".join(map(str, roi)))

    def save_snapshot(self) -> Path | None:
        if self.shown is None:
            return None
        annotated, frame = self.shown
        return self.sink.snapshot(annotated, frame.index if frame else 0)

    def toggle_explain(self) -> None:
        if self.explainer is not None:
            self.stop_explain()
        else:
            self.start_explain()

    def stop_explain(self) -> None:
        self.explainer.close()
        self.explainer = None
        logger.info("explain: OFF")

    def start_explain(self) -> None:
        try:
            self.explainer = LiveExplainer(self.model_path)
        except CifarlabError as exc:
            self.warn("explain", str(exc))
            return
        logger.info("explain: ON")

    def collect(self, key: int) -> None:
        """Save the region of the current frame (full resolution, no overlay) for key 1..9."""
        name = self.collector.class_for_key(key)
        if name is None:
            self.say(f"no class on key {chr(key)}: keys 1-{len(self.collector.classes)} "
                     f"({', '.join(self.collector.classes)})", RED)
            return
        if self._clean is None or not self.roi:
            return
        x, y, w, h = clamp_roi(self.roi, self._clean.shape)
        try:
            saved = self.collector.save(name, self._clean[y : y + h, x : x + w])
        except CifarlabError as exc:
            self.warn("collect", str(exc))
            return
        if saved is not None:
            logger.info(f"collect: {saved.key} {saved.name} -> {saved.path} ({saved.count})")

    def start_training(self) -> None:
        if self.teacher.run is not None or self.models.loading_kind() == "teach":
            self.say("already training; the new model comes in when it is ready")
            return
        try:
            self.teacher.start(self.model_path, self.config.train_command)
        except CifarlabError as exc:
            self.warn("teach", str(exc))
            return
        self.message = None

    # ---- messages on the overlay ---------------------------------------------------------
    def say(self, text: str, color=YELLOW) -> None:
        """Show `text` on the overlay for a few seconds (red ones longer)."""
        self.message = (text, color, time.monotonic() + MESSAGE_SECONDS.get(color, 5.0))

    def warn(self, topic: str, text: str, shown: str | None = None) -> None:
        """Log the status line `topic: text`, and show `shown` (default: `text`) in red on the
        overlay."""
        logger.info(f"{topic}: {text}")
        self.say(shown or text, RED)

    def teach_line(self) -> tuple[str, tuple[int, int, int]] | None:
        now = time.monotonic()
        progress = self.teacher.progress() if self.teacher else None
        if progress is not None:
            return progress, YELLOW
        if self.models.loading_kind() == "teach":
            return f"training... {now - self.teacher.started:.0f} s (loading the new model)", YELLOW
        if self.message is not None and now < self.message[2]:
            return self.message[0], self.message[1]
        return None

    def collect_panel(self) -> CollectPanel | None:
        c = self.collector
        if c is None:
            return None
        return CollectPanel(rows=[(i + 1, n, c.counts.get(n, 0)) for i, n in enumerate(c.classes)],
                            last_crop=c.last_crop, last_name=c.last.name if c.last else None,
                            hint=c.background_hint)

    # ---- training and model swaps ----------------------------------------------------------
    def poll_background(self) -> None:
        """Once per loop: follow the training process, swap a loaded model in, watch --model."""
        run = self.teacher.finished() if self.teacher else None
        if run is not None:
            self.trained(run)
        load = self.models.poll()
        if load is not None and load.error is not None:
            what = "the new model" if load.kind == "teach" else str(load.path)
            self.warn("teach" if load.kind == "teach" else "model",
                      f"cannot load {load.path}: {load.error}; the old model keeps running",
                      f"cannot load {what}: {load.error}")
        elif load is not None:
            self.swapped(load)

    def trained(self, run: TrainingRun) -> None:
        code = run.poll()
        if code == 0 and run.model_path.is_file():
            logger.info(f"teach: trained in {run.elapsed:.1f} s; loading {run.model_path}")
            self.models.load(run.model_path, "teach")
            return
        error = run.error()
        self.warn("teach", f"failed (exit {code}) after {run.elapsed:.1f} s: {error} "
                           f"(log {run.log_path}); the old model keeps running",
                  f"training failed: {error}")

    def swapped(self, load: BackgroundLoad) -> None:
        """The model of `load` runs now."""
        if self.explainer is not None:  # explain the new model from now on
            self.stop_explain()
            self.start_explain()
        self.score = (0, 0)           # the demo accuracy is the new model's from now on
        self.predictor.rejecting = self.open_set_on
        names = ", ".join(self.predictor.class_names)
        now = time.monotonic()
        if load.kind == "teach":
            logger.info(f"teach: new model live {now - self.teacher.started:.1f} s after t "
                        f"(loaded in {now - load.started:.1f} s): {names}")
            self.say(f"new model: {names}", GREEN)
        else:
            logger.info(f"model: reloaded {load.path}: {names}")
            self.say(f"model reloaded ({load.path.name}): {names}", GREEN)

    # ---- one frame -------------------------------------------------------------------------
    def process(self, frame: Frame) -> tuple[np.ndarray, Prediction | None, float]:
        """Classify and annotate one frame (in place); returns (annotated, prediction, ms)."""
        image = cv2.flip(frame.image, 1) if self.config.mirror else frame.image
        if self._frame_shape != image.shape:
            self._frame_shape = image.shape
            self.roi = clamp_roi(self.roi, image.shape) if self.roi else \
                centered_square(image.shape, self.config.roi_size)
        self.frame_times.append(time.perf_counter())
        pred, ms = None, 0.0
        if self.inference_on:
            rgb = crop_for_model(image, self.roi, self.predictor.input_size)
            probs, ms = self.predictor.infer(rgb)
            pred = self.predictor.update(probs)
            self.infer_ms.append(ms)
            if self.explainer is not None:
                self.explainer.update(rgb, self.predictor.class_names.index(pred.top_class))
                if self.explainer.error:
                    self.say(f"explain failed: {self.explainer.error}", RED)
                    self.stop_explain()
        self.truth = self.demo_truth(frame.truth)
        self._clean = image
        if self.explainer is not None and self.explainer.map is not None:
            self._clean = image.copy()  # collected crops stay free of the heatmap
            blend(image, clamp_roi(self.roi, image.shape), self.explainer.map)
        if frame.decisive and pred is not None and self.truth is not None:
            right, scored = self.score
            self.score = (right + truth_right(pred, self.truth), scored + 1)
        return image, pred, ms

    def demo_truth(self, truth: str | None) -> str | None:
        """A demo picture's true label if it holds for the running model (not after `t` taught
        other classes): one of its classes, or `unknown` (none of the classes) while it has the
        classes the demo picked its pictures for."""
        names = self.predictor.class_names
        if truth == UNKNOWN:
            return truth if getattr(self.source, "class_names", names) == names else None
        return truth if truth in names else None

    def annotate(self, image: np.ndarray, pred, notice: str | None = None) -> np.ndarray:
        fps = 0.0
        if len(self.frame_times) > 1:
            fps = (len(self.frame_times) - 1) / max(1e-6, self.frame_times[-1] - self.frame_times[0])
        state = OverlayState(
            roi=self.roi, prediction=pred, fps=fps,
            inference_ms=float(np.mean(self.infer_ms)) if self.infer_ms else 0.0,
            inference_on=self.inference_on, paused=self.paused,
            backend=self.predictor.backend, notice=notice, open_set_off=self.open_set_off(),
            show_help=self.config.window, truth=self.truth, score=self.score,
            collect=self.collect_panel(), teach=self.teach_line())
        return draw_overlay(image, state)

    def open_set_off(self) -> bool:
        """Whether key u turned off the rejection the running model would do."""
        return not self.open_set_on and self.predictor.rejection.active

    # ---- the session -----------------------------------------------------------------------
    def done(self) -> bool:
        return self.config.max_frames is not None and self.processed >= self.config.max_frames

    def run(self) -> int:
        self.open()
        try:
            self.sink.open(getattr(self.source, "fps", None))
            return run_window(self) if self.config.window else run_headless(self)
        finally:
            self.close()

    def open(self) -> None:
        """The source, then the model (a missing camera or file fails before the model load)."""
        cfg = self.config
        check_display(cfg)
        if self.source is None and cfg.source == "auto":
            self.source = open_auto_source(cfg)
            cfg = self.config = replace(cfg, source="0" if self.source else "demo")
        elif self.source is None and source_kind(cfg.source) != "demo":
            self.source = open_source(cfg, [])
        try:
            self.models.start()
            if self.source is None:
                self.source = open_source(cfg, self.predictor.class_names)
        except BaseException:
            if self.source is not None:
                self.source.close()
            raise
        logger.info(f"live: source {cfg.source} ({self.source.kind}), backend {self.predictor.backend}, "
                    f"classes {len(self.predictor.class_names)}, input "
                    f"{self.predictor.input_size[0]}x{self.predictor.input_size[1]}")

    def close(self) -> None:
        if self.teacher is not None:
            self.teacher.stop()
        if self.explainer is not None:
            self.explainer.close()
        self.source.close()
        self.sink.close()
        mean = float(np.mean(self.infer_ms)) if self.infer_ms else 0.0
        logger.info(f"live: {self.processed} frames processed, inference {mean:.2f} ms (last 30 mean)")
        if self.score[1]:
            logger.info(f"live: {score_text(self.score)}")


def run_live(config: LiveConfig) -> int:
    return LiveApp(config).run()


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    sys.exit(run_live(LiveConfig(source="demo")))
