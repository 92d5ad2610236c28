"""The loops of `cifarlab live`, headless and with a window, and the one path every new frame
takes through them (`take_frame`: classify and annotate, count, JSONL row, recorded video).
`app` is the `app.LiveApp` whose session they run.

Frame delivery (documented in `cifarlab live --help` too):
- cameras and streams: the latest frame only (stale frames are dropped, latency stays low);
- video files: every frame in order (headless: as fast as possible, so a file always yields
  the same JSONL; with a window: paced at the file's FPS);
- demo: every frame, generated from the frame index (paced at 30 FPS with a window).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.live.capture import EndOfStream, Frame
from cifarlab.live.config import WINDOW_NAME
from cifarlab.live.predictor import Prediction

logger = logging.getLogger(__name__)
PAUSED_NOTICE = "PAUSED - space to resume"


def take_frame(app, frame: Frame, notice: str | None,
               keep_clean: bool) -> tuple[np.ndarray, np.ndarray, Prediction | None]:
    """Process a new frame, count it, write its outputs: (the frame without the overlay, the
    annotated frame, the prediction). `keep_clean` draws the overlay on a copy."""
    image, pred, ms = app.process(frame)
    app.processed += 1
    annotated = app.annotate(image.copy() if keep_clean else image, pred, notice)
    app.sink.write(frame, pred, ms, app.roi, annotated)
    return image, annotated, pred


def read_frame(app, timeout: float) -> Frame | None:
    """The next frame (None: none yet); EndOfStream at the end of a video file."""
    try:
        return app.source.read(timeout=timeout)
    except EndOfStream:
        logger.info("live: end of video")
        raise


def run_headless(app) -> int:
    try:
        while not app.done():
            app.poll_background()
            frame = read_frame(app, 1.0)
            if frame is not None:
                # collecting crops the frame kept by process(): the overlay goes on a copy then
                take_frame(app, frame, app.source.status, keep_clean=app.collector is not None)
    except EndOfStream:
        pass
    return 0


class Window:
    """The OpenCV window: shows a picture, reads a key, counts left clicks, tells if it was
    closed."""

    def __init__(self, name: str = WINDOW_NAME):
        self.name = name
        self.clicks = 0
        try:
            cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise CifarlabError(f"cannot open a window ({str(exc).strip().splitlines()[-1]}); "
                                "is a display available? use --no-window for headless runs") from None
        cv2.setMouseCallback(name, self._on_mouse)

    def _on_mouse(self, event, x, y, flags, param) -> None:  # noqa: ARG002 - cv2 signature
        if event == cv2.EVENT_LBUTTONDOWN:
            self.clicks += 1

    def show(self, picture: np.ndarray, wait_ms: int) -> int:
        """Show `picture` (None: keep the last one); the key pressed meanwhile (-1: none)."""
        if picture is not None:
            cv2.imshow(self.name, picture)
        return cv2.waitKey(wait_ms)

    def take_clicks(self) -> int:
        clicks, self.clicks = self.clicks, 0
        return clicks

    def is_open(self) -> bool:
        try:
            return cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    @staticmethod
    def close() -> None:
        try:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
        except cv2.error:
            pass


class WindowLoop:
    """The window's loop: a new frame goes through `take_frame`; with none (or paused) the last
    one is redrawn when its overlay has something new to say."""

    def __init__(self, app, window: Window):
        self.app, self.window = app, window
        self.clean: np.ndarray | None = None      # the current frame without overlay (for redraws)
        self.pred: Prediction | None = None
        self.ready = False

    def run(self) -> int:
        app = self.app
        try:
            while not app.quit and not app.done():
                app.poll_background()
                picture = self.picture()
                key = self.window.show(picture, 30 if app.paused else 1)
                self.after_show(picture, key)
        except EndOfStream:
            pass
        return 0

    def picture(self) -> np.ndarray | None:
        """What to show now: the next frame annotated, a redraw of the last one, or None (keep
        what is shown)."""
        app = self.app
        notice = app.source.status
        if app.paused:
            return self.redraw(notice or PAUSED_NOTICE)
        frame = read_frame(app, 0.03)
        if frame is None:
            return self.redraw(notice) if notice is not None or app.teach_line() is not None else None
        self.clean, annotated, self.pred = take_frame(app, frame, notice, keep_clean=True)
        app.shown = (annotated, frame)
        return annotated

    def redraw(self, notice: str | None) -> np.ndarray | None:
        if self.clean is None:
            return None
        app = self.app
        annotated = app.annotate(self.clean.copy(), self.pred if app.inference_on else None, notice)
        app.shown = (annotated, app.shown[1] if app.shown else None)
        return annotated

    def after_show(self, picture: np.ndarray | None, key: int) -> None:
        app = self.app
        if picture is not None and not self.ready:
            self.ready = True
            logger.info("window: ready")
        for _ in range(self.window.take_clicks()):
            app.toggle_inference()
        app.handle_key(key)
        if not app.quit and self.ready and not self.window.is_open():
            logger.info("quit: window closed")
            app.quit = True


def run_window(app) -> int:
    window = Window()
    try:
        return WindowLoop(app, window).run()
    finally:
        window.close()
