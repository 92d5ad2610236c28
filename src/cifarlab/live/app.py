"""The live loop: read a frame, crop the region, classify, smooth, draw, show/record/log.

Frame-delivery decision (documented in `cifarlab live --help` too):
- cameras and streams: the latest frame only (stale frames are dropped, latency stays low);
- video files: every frame in order (headless: as fast as possible, so a file always yields
  the same JSONL; with a window: paced at the file's FPS);
- demo: every frame, generated from the frame index (paced at 30 FPS with a window).

State changes go to stdout as `name: VALUE` lines (`inference: OFF`, `paused: ON`,
`roi: x,y,w,h`, `snapshot: PATH`, `window: ready`), flushed at once, so scripts and tests
can follow them.
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
from cifarlab.live.capture import EndOfStream, Frame, open_video_source, source_kind
from cifarlab.live.config import WINDOW_NAME, LiveConfig
from cifarlab.live.overlay import OverlayState, draw_overlay, score_text
from cifarlab.inference import open_classifier
from cifarlab.live.predictor import LivePredictor
from cifarlab.live.roi import centered_square, clamp_roi, crop_for_model, scale_roi

KEY_ESC = 27
ROI_STEP = 1.15


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
        self.truth = frame.truth
        if frame.decisive and pred is not None:
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
            show_help=self.config.window, truth=self.truth, score=self.score)
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
        try:
            if self.predictor is None:
                classifier = open_classifier(cfg.model, cfg.backend, cfg.threads, log=log)
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
            try:
                frame = self.source.read(timeout=1.0)
            except EndOfStream:
                log("live: end of video")
                return 0
            if frame is None:
                continue
            image, pred, ms = self.process(frame)
            annotated = self.annotate(image, pred, self.source.status)
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
                    redraw = notice is not None
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
