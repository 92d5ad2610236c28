"""The live loop: read a frame, crop the region, classify, smooth, draw, show/record/log.

Frame-delivery decision (documented in `cifarlab live --help` too):
- cameras and streams: the latest frame only (stale frames are dropped, latency stays low);
- video files: every frame in order (headless: as fast as possible, so a file always yields
  the same JSONL; with a window: paced at the file's FPS);
- demo: every frame, generated from the frame index (paced at 30 FPS with a window).

State changes go to stdout as `name: VALUE` lines (`inference: OFF`, `paused: ON`,
`roi: x,y,w,h`, `snapshot: PATH`, `window: ready`, `collect: ...`, `teach: ...`, `model: ...`),
flushed at once, so scripts and tests can follow them.

`--collect DIR` (collect.py): keys 1-9 save the region's crop into DIR/<class>/; `t` trains on
DIR in a separate process and swaps the new model in when it is loaded (teach.py). `--model
PATH` is reloaded when the file changes. Models are loaded on a thread: the old one keeps
classifying every frame meanwhile, and stays if the new one fails.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.inference import open_classifier
from cifarlab.live.capture import EndOfStream, Frame, open_video_source, source_kind
from cifarlab.live.collect import Collector
from cifarlab.live.config import WINDOW_NAME, LiveConfig
from cifarlab.live.explain import LiveExplainer, blend
from cifarlab.live.overlay import (
    GREEN,
    RED,
    YELLOW,
    CollectPanel,
    OverlayState,
    draw_overlay,
    score_text,
)
from cifarlab.live.predictor import LivePredictor
from cifarlab.live.roi import centered_square, clamp_roi, crop_for_model, scale_roi
from cifarlab.live.teach import (
    DEFAULT_TRAIN_COMMAND,
    RUNS_FOLDER,
    BackgroundLoad,
    ModelWatcher,
    TrainingRun,
)
from cifarlab.models.io import default_model_path, resolve_model_path

KEY_ESC = 27
ROI_STEP = 1.15
MESSAGE_SECONDS = {GREEN: 8.0, RED: 10.0, YELLOW: 4.0}   # how long a teach/collect message stays


def log(message: str) -> None:
    print(message, flush=True)


def check_display(config: LiveConfig) -> None:
    """Qt aborts the whole process when it finds no display, so say so before it tries."""
    if config.window and sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise CifarlabError("no display to show a window on (DISPLAY is not set); run it on a "
                            "desktop, or headless with --no-window --record out.mp4 --jsonl out.jsonl")


def open_auto_source(config: LiveConfig):
    """`--source auto`: the first camera if there is one, else the built-in demo scene."""
    try:
        return open_source(replace(config, source="0", open_timeout=min(config.open_timeout, 3.0)), [])
    except CifarlabError:
        log("no camera at index 0; showing the built-in demo scene instead "
            "(choose with --source INDEX|FILE|URL|demo)")
        return None


def open_source(config: LiveConfig, class_names: list[str]):
    kind = source_kind(config.source)
    realtime = config.window if config.realtime is None else config.realtime
    if kind == "demo":
        from cifarlab.live.demo import DemoSource

        size = (config.width, config.height) if config.width else (1280, 720)
        return DemoSource(class_names, size=size, roi_fraction=config.roi_size, realtime=realtime,
                          data=config.data)
    return open_video_source(config.source, sequential=True, loop=config.loop, realtime=realtime,
                             width=config.width, height=config.height,
                             open_timeout=config.open_timeout, read_timeout=config.read_timeout,
                             reconnect_timeout=config.reconnect_timeout)


class LiveApp:
    def __init__(self, config: LiveConfig, predictor: LivePredictor | None = None, source=None):
        self.config = config
        self.predictor = predictor
        if config.threads:
            cv2.setNumThreads(config.threads)
        self.source = source
        self.roi = config.roi
        self.inference_on = True
        self.paused = False
        self.quit = False
        self.writer: cv2.VideoWriter | None = None
        self.jsonl = None
        self.processed = 0
        self.infer_ms: deque[float] = deque(maxlen=30)
        self.frame_times: deque[float] = deque(maxlen=30)
        self._clicks = 0
        self._frame_shape: tuple[int, ...] | None = None
        self.truth: str | None = None        # demo: the current picture's true label
        self.score = (0, 0)                  # demo: (right, scored) pictures, one decision each
        self.collector = Collector(config.collect, list(config.classes)) if config.collect else None
        self.training: TrainingRun | None = None
        self.loading: BackgroundLoad | None = None
        self.watcher: ModelWatcher | None = None
        self.model_path: Path | None = config.model   # the file of the model running now
        self.teach_started: float | None = None
        self.message: tuple[str, tuple[int, int, int], float] | None = None  # text, colour, until
        self._clean: np.ndarray | None = None  # the last processed frame without the overlay
        self.explainer: LiveExplainer | None = None  # key e: the class-activation map over the region

    # ---- GUI events --------------------------------------------------------------------
    def _on_mouse(self, event, x, y, flags, param) -> None:  # noqa: ARG002 - cv2 signature
        if event == cv2.EVENT_LBUTTONDOWN:
            self._clicks += 1

    def set_inference(self, on: bool) -> None:
        self.inference_on = on
        if on:
            self.predictor.reset()
        log(f"inference: {'ON' if on else 'OFF'}")

    def handle_key(self, key: int, annotated: np.ndarray | None, frame: Frame | None) -> None:
        if key < 0:
            return
        key &= 0xFF
        if key in (ord("q"), ord("Q"), KEY_ESC):
            self.quit = True
            log("quit")
        elif key == ord(" "):
            self.paused = not self.paused
            log(f"paused: {'ON' if self.paused else 'OFF'}")
        elif key in (ord("s"), ord("S")) and annotated is not None:
            self.save_snapshot(annotated, frame)
        elif key in (ord("+"), ord("=")) and self.roi and self._frame_shape:
            self.set_roi(scale_roi(self.roi, ROI_STEP, self._frame_shape))
        elif key in (ord("-"), ord("_")) and self.roi and self._frame_shape:
            self.set_roi(scale_roi(self.roi, 1 / ROI_STEP, self._frame_shape))
        elif key in (ord("i"), ord("I")):
            self.set_inference(not self.inference_on)
        elif key in (ord("e"), ord("E")):
            self.toggle_explain()
        elif self.collector is not None and ord("1") <= key <= ord("9"):
            self.collect(key)
        elif self.collector is not None and key in (ord("t"), ord("T")):
            self.start_training()

    def toggle_explain(self) -> None:
        if self.explainer is not None:
            self.stop_explain()
        else:
            self.start_explain()

    def stop_explain(self) -> None:
        self.explainer.close()
        self.explainer = None
        log("explain: OFF")

    def start_explain(self) -> None:
        try:
            self.explainer = LiveExplainer(self.model_path)
        except CifarlabError as exc:
            log(f"explain: {exc}")
            self.say(str(exc), RED)
            return
        log("explain: ON")

    # ---- collect and teach -------------------------------------------------------------
    def say(self, text: str, color=YELLOW) -> None:
        """Show `text` on the overlay for a few seconds (red ones longer)."""
        self.message = (text, color, time.monotonic() + MESSAGE_SECONDS.get(color, 5.0))

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
            log(f"collect: {exc}")
            self.say(str(exc), RED)
            return
        if saved is not None:
            log(f"collect: {saved.key} {saved.name} -> {saved.path} ({saved.count})")

    def parent_model(self) -> Path | None:
        """What `t` trains from: the Keras model running now, else the shipped one."""
        if self.model_path is not None and Path(self.model_path).suffix.lower() == ".keras":
            return Path(self.model_path)
        default = default_model_path()
        return default if default.is_file() else None

    def start_training(self) -> None:
        if self.training is not None or (self.loading is not None and self.loading.kind == "teach"):
            self.say("already training; the new model comes in when it is ready")
            return
        classes, why = self.collector.trainable()
        if why is not None:
            log(f"teach: cannot train yet: {why}")
            self.say(f"cannot train yet: {why}", RED)
            return
        parent = self.parent_model()
        if parent is None:
            log("teach: no .keras model to train from (run with --model PATH.keras)")
            self.say("no .keras model to train from (run with --model PATH.keras)", RED)
            return
        command = self.config.train_command or DEFAULT_TRAIN_COMMAND
        try:
            self.training = TrainingRun(command, self.collector.root, parent,
                                        self.collector.root / RUNS_FOLDER)
        except CifarlabError as exc:
            log(f"teach: {exc}")
            self.say(str(exc), RED)
            return
        self.teach_started = self.training.started
        self.message = None
        counts = ", ".join(f"{n} {self.collector.counts[n]}" for n in classes)
        log(f"teach: training on {sum(self.collector.counts[n] for n in classes)} images "
            f"({counts}) from {parent} -> {self.training.out} (log {self.training.log_path})")

    def _open_predictor(self, path: Path, swap: bool = True) -> LivePredictor:
        """Load a model for the live loop (swap: on the loader thread, to replace the running one).

        A `.keras` file swapped in runs in Keras unless --backend litert asks otherwise: the
        LiteRT conversion holds Python's lock for 0.5-1.3 s on 2 busy cores (the video would
        stop that long), Keras loads without a visible stall and classifies a frame in ~9 ms.
        """
        cfg = self.config
        backend = cfg.backend
        if Path(path).suffix.lower() == ".keras" and (backend == "onnx" or (swap and backend == "auto")):
            backend = "keras" if swap else "auto"
        classifier = open_classifier(path, backend, cfg.threads, log=log)
        predictor = LivePredictor(classifier, cfg.smoothing, cfg.threshold, cfg.top_k)
        predictor.warmup()
        return predictor

    def _load(self, path: Path, kind: str) -> None:
        self.loading = BackgroundLoad(lambda: self._open_predictor(path), path, kind)

    def poll_background(self) -> None:
        """Once per loop: follow the training process, swap a loaded model in, watch --model."""
        run = self.training
        if run is not None:
            code = run.poll()
            if code is not None:
                self.training = None
                if code == 0 and run.model_path.is_file():
                    log(f"teach: trained in {run.elapsed:.1f} s; loading {run.model_path}")
                    self._load(run.model_path, "teach")
                else:
                    error = run.error()
                    log(f"teach: failed (exit {code}) after {run.elapsed:.1f} s: {error} "
                        f"(log {run.log_path}); the old model keeps running")
                    self.say(f"training failed: {error}", RED)
        load = self.loading
        if load is not None and load.done:
            self.loading = None
            if load.error is not None:
                what = "the new model" if load.kind == "teach" else str(load.path)
                log(f"{'teach' if load.kind == 'teach' else 'model'}: cannot load {load.path}: "
                    f"{load.error}; the old model keeps running")
                self.say(f"cannot load {what}: {load.error}", RED)
            else:
                self.predictor = load.value
                self.model_path = load.path
                if self.explainer is not None:  # explain the new model from now on
                    self.stop_explain()
                    self.start_explain()
                self.score = (0, 0)           # the demo accuracy is the new model's from now on
                names = ", ".join(self.predictor.class_names)
                if load.kind == "teach":
                    log(f"teach: new model live {time.monotonic() - self.teach_started:.1f} s "
                        f"after t (loaded in {time.monotonic() - load.started:.1f} s): {names}")
                    self.say(f"new model: {names}", GREEN)
                else:
                    log(f"model: reloaded {load.path}: {names}")
                    self.say(f"model reloaded ({load.path.name}): {names}", GREEN)
        if self.watcher is not None and self.loading is None and self.watcher.changed():
            log(f"model: {self.watcher.path} changed; loading it")
            self._load(self.watcher.path, "watch")

    def teach_line(self) -> tuple[str, tuple[int, int, int]] | None:
        now = time.monotonic()
        if self.training is not None:
            epochs = self.training.epochs()
            text = f"training... {self.training.elapsed:.0f} s"
            return (text + (f" (epoch {epochs})" if epochs else ""), YELLOW)
        if self.loading is not None and self.loading.kind == "teach":
            return f"training... {now - self.teach_started:.0f} s (loading the new model)", YELLOW
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

    def set_roi(self, roi) -> None:
        if roi != self.roi:
            self.roi = roi
            self.predictor.reset()
            log("roi: " + ",".join(map(str, roi)))

    def save_snapshot(self, annotated: np.ndarray, frame: Frame | None) -> Path:
        folder = Path(self.config.snapshot_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = folder / f"cifarlab-snapshot-{stamp}-{frame.index if frame else 0:06d}.png"
        if not cv2.imwrite(str(path), annotated):
            log(f"snapshot: cannot write {path}")
        else:
            log(f"snapshot: {path}")
        return path

    # ---- outputs -----------------------------------------------------------------------
    def _open_outputs(self) -> None:
        if self.config.jsonl:
            path = Path(self.config.jsonl)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.jsonl = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in run()
            except OSError as exc:
                raise CifarlabError(f"{path}: cannot write ({exc.strerror})") from None

    def _record(self, annotated: np.ndarray) -> None:
        if self.writer is None:
            path = Path(self.config.record)
            path.parent.mkdir(parents=True, exist_ok=True)
            h, w = annotated.shape[:2]
            fps = float(getattr(self.source, "fps", 30.0) or 30.0)
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            if not self.writer.isOpened():
                self.writer = None
                raise CifarlabError(f"{path}: cannot write a video there (use a .mp4 path in a "
                                    "writable folder)")
        self.writer.write(annotated)

    def _write_jsonl(self, frame: Frame, pred, ms: float) -> None:
        record = {
            "frame": frame.index,
            "timestamp": round(frame.timestamp, 4),
            "label": pred.label,
            "class": pred.top_class,
            "confidence": round(float(pred.confidence), 6),
            "top_k": [{"label": n, "confidence": round(float(p), 6)} for n, p in pred.top_k],
            "inference_ms": round(ms, 3),
            "roi": list(self.roi),
            **({"truth": frame.truth} if frame.truth is not None else {}),
        }
        self.jsonl.write(json.dumps(record) + "\n")

    # ---- the loop ----------------------------------------------------------------------
    def process(self, frame: Frame) -> tuple[np.ndarray, object, float]:
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
        # demo truths count only for a model of their classes (not after `t` taught others)
        self.truth = frame.truth if frame.truth in self.predictor.class_names else None
        self._clean = image
        if self.explainer is not None and self.explainer.map is not None:
            self._clean = image.copy()  # collected crops stay free of the heatmap
            blend(image, clamp_roi(self.roi, image.shape), self.explainer.map)
        if frame.decisive and pred is not None and self.truth is not None:
            right, scored = self.score
            self.score = (right + (pred.top_class == frame.truth), scored + 1)
        return image, pred, ms

    def annotate(self, image: np.ndarray, pred, notice: str | None = None) -> np.ndarray:
        fps = 0.0
        if len(self.frame_times) > 1:
            fps = (len(self.frame_times) - 1) / max(1e-6, self.frame_times[-1] - self.frame_times[0])
        state = OverlayState(
            roi=self.roi, prediction=pred, fps=fps,
            inference_ms=float(np.mean(self.infer_ms)) if self.infer_ms else 0.0,
            inference_on=self.inference_on, paused=self.paused,
            backend=self.predictor.backend, notice=notice,
            show_help=self.config.window, truth=self.truth, score=self.score,
            collect=self.collect_panel(), teach=self.teach_line())
        return draw_overlay(image, state)

    def run(self) -> int:
        cfg = self.config
        check_display(cfg)
        if self.source is None and cfg.source == "auto":
            self.source = open_auto_source(cfg)
            cfg = self.config = replace(cfg, source="0" if self.source else "demo")
        elif self.source is None and source_kind(cfg.source) != "demo":
            # open the source first: a missing camera or file fails before the model load
            self.source = open_source(cfg, [])
        if cfg.model and cfg.watch_model:
            self.watcher = ModelWatcher(cfg.model)   # before the load: a change meanwhile counts
        try:
            if self.predictor is None:
                self.model_path = resolve_model_path(cfg.model)
                classifier = open_classifier(self.model_path, cfg.backend, cfg.threads, log=log)
                self.predictor = LivePredictor(classifier, cfg.smoothing, cfg.threshold, cfg.top_k)
            self.predictor.warmup()
            if self.source is None:
                self.source = open_source(cfg, self.predictor.class_names)
        except BaseException:
            if self.source is not None:
                self.source.close()
            raise
        log(f"live: source {cfg.source} ({self.source.kind}), backend {self.predictor.backend}, "
            f"classes {len(self.predictor.class_names)}, input "
            f"{self.predictor.input_size[0]}x{self.predictor.input_size[1]}")
        try:
            self._open_outputs()
            if cfg.window:
                return self._run_window()
            return self._run_headless()
        finally:
            if self.training is not None:
                self.training.stop()
                log(f"teach: training stopped ({self.training.out} is incomplete)")
                self.training = None
            if self.explainer is not None:
                self.explainer.close()
            self.source.close()
            if self.writer is not None:
                self.writer.release()
            if self.jsonl is not None:
                self.jsonl.close()
            if cfg.window:
                try:
                    cv2.destroyAllWindows()
                    cv2.waitKey(1)
                except cv2.error:
                    pass
            mean = float(np.mean(self.infer_ms)) if self.infer_ms else 0.0
            log(f"live: {self.processed} frames processed, inference {mean:.2f} ms (last 30 mean)")
            if self.score[1]:
                log(f"live: {score_text(self.score)}")

    def _done(self) -> bool:
        return self.config.max_frames is not None and self.processed >= self.config.max_frames

    def _run_headless(self) -> int:
        while not self._done():
            self.poll_background()
            try:
                frame = self.source.read(timeout=1.0)
            except EndOfStream:
                log("live: end of video")
                return 0
            if frame is None:
                continue
            image, pred, ms = self.process(frame)
            # collecting crops the frame kept by process(): draw the overlay on a copy then
            annotated = self.annotate(image if self.collector is None else image.copy(), pred,
                                      self.source.status)
            self.processed += 1
            if self.jsonl is not None and pred is not None:
                self._write_jsonl(frame, pred, ms)
            if self.config.record:
                self._record(annotated)
        return 0

    def _window_open(self) -> bool:
        try:
            return cv2.getWindowProperty(WINDOW_NAME, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def _run_window(self) -> int:
        try:
            cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise CifarlabError(f"cannot open a window ({str(exc).strip().splitlines()[-1]}); "
                                "is a display available? use --no-window for headless runs") from None
        cv2.setMouseCallback(WINDOW_NAME, self._on_mouse)
        ready = False
        frame: Frame | None = None
        clean: np.ndarray | None = None      # the current frame without overlay (for redraws)
        annotated: np.ndarray | None = None
        pred = None
        while not self.quit and not self._done():
            self.poll_background()
            notice = self.source.status
            redraw = False
            if not self.paused:
                try:
                    new = self.source.read(timeout=0.03)
                except EndOfStream:
                    log("live: end of video")
                    return 0
                if new is not None:
                    frame = new
                    clean, pred, ms = self.process(frame)
                    self.processed += 1
                    annotated = self.annotate(clean.copy(), pred, notice)
                    if self.config.record:
                        self._record(annotated)
                    if self.jsonl is not None and pred is not None:
                        self._write_jsonl(frame, pred, ms)
                else:
                    redraw = notice is not None or self.teach_line() is not None
            else:
                redraw = True
                notice = notice or "PAUSED - space to resume"
            if redraw and clean is not None:
                annotated = self.annotate(clean.copy(), pred if self.inference_on else None, notice)
            if annotated is not None:
                cv2.imshow(WINDOW_NAME, annotated)
            key = cv2.waitKey(30 if self.paused else 1)
            if annotated is not None and not ready:
                ready = True
                log("window: ready")
            while self._clicks:
                self._clicks -= 1
                self.set_inference(not self.inference_on)
            self.handle_key(key, annotated, frame)
            if not self.quit and ready and not self._window_open():
                log("quit: window closed")
                self.quit = True
        return 0


def run_live(config: LiveConfig) -> int:
    return LiveApp(config).run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_live(LiveConfig(source="demo")))
