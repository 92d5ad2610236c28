"""Frame sources read on their own thread; every wait has a timeout, so nothing here can hang.

Two delivery modes (decided by the app, see `app.py`):
- `latest` (cameras, streams): the reader thread keeps only the newest frame; a slow consumer
  drops stale frames instead of falling behind (a webcam buffers several frames otherwise).
- `sequential` (video files): every frame, in order, through a small bounded queue, so the
  same file always gives the same predictions. With a window the file plays at its own FPS;
  headless it runs as fast as the loop allows.

A camera or stream that stops delivering (read fails, or no frame for `read_timeout` seconds —
a read stuck inside the driver is abandoned, not waited on) is reconnected with exponential
backoff for at most `reconnect_timeout` seconds; `status` says so meanwhile (the overlay shows
it), and after that `read` raises `SourceLost`.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# Silence FFmpeg's own logging (read when the first capture is opened) and OpenCV's: a missing
# camera or a refused stream must end in our one-line error, not a screen of warnings.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from cifarlab.errors import CifarlabError  # noqa: E402

logger = logging.getLogger(__name__)

try:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # pragma: no cover - older OpenCV builds
    pass

STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "rtmp://")
BACKOFF_START, BACKOFF_MAX = 0.25, 4.0


@dataclass
class Frame:
    image: np.ndarray   # HxWx3 uint8 BGR (OpenCV order)
    index: int          # frame number from the source, counted from 0 (continues across --loop)
    timestamp: float    # seconds: position in the video for files, since opening otherwise
    truth: str | None = None   # demo: true label of the picture resting in the region
    decisive: bool = False     # demo: the one frame per picture scored for the demo accuracy


class EndOfStream(Exception):
    """A video file ended (and --loop is off)."""


class SourceLost(CifarlabError):
    """A camera or stream went away and did not come back in time."""


def source_kind(spec: str) -> str:
    if spec == "demo":
        return "demo"
    if spec.isdigit():
        return "camera"
    if spec.lower().startswith(STREAM_PREFIXES):
        return "stream"
    return "file"


def _open_with_timeout(opener: Callable[[], cv2.VideoCapture | None], timeout: float):
    """Run `opener` on a helper thread; None if it fails or takes longer than `timeout`."""
    result: list = []

    def target() -> None:
        try:
            cap = opener()
        except Exception:  # noqa: BLE001 - any backend failure means "could not open"
            cap = None
        result.append(cap)

    thread = threading.Thread(target=target, daemon=True, name="cifarlab-open")
    thread.start()
    thread.join(timeout)
    if thread.is_alive() or not result or result[0] is None:
        return None, thread.is_alive()
    cap = result[0]
    if not cap.isOpened():
        cap.release()
        return None, False
    return cap, False


def make_opener(spec: str, kind: str, width: int | None, height: int | None,
                timeout: float) -> Callable[[], cv2.VideoCapture]:
    ms = int(timeout * 1000)

    def open_camera() -> cv2.VideoCapture:
        cap = cv2.VideoCapture(int(spec))
        if cap.isOpened():
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if width and height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        return cap

    def open_stream() -> cv2.VideoCapture:
        return cv2.VideoCapture(spec, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])

    def open_file() -> cv2.VideoCapture:
        return cv2.VideoCapture(spec)

    return {"camera": open_camera, "stream": open_stream, "file": open_file}[kind]


class VideoSource:
    """A camera, stream or video file behind a reader thread (see the module doc)."""

    def __init__(self, spec: str, kind: str, opener: Callable[[], cv2.VideoCapture], *,
                 mode: str = "latest", loop: bool = False, realtime: bool = False,
                 open_timeout: float = 10.0, read_timeout: float = 5.0,
                 reconnect_timeout: float = 15.0, queue_size: int = 8):
        self.spec, self.kind, self.mode = spec, kind, mode
        self.loop, self.realtime = loop, realtime
        self._opener = opener
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.reconnect_timeout = reconnect_timeout
        cap, hung = _open_with_timeout(opener, open_timeout)
        if cap is None:
            raise CifarlabError(open_failure_message(spec, kind, open_timeout, hung))
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1.0 <= fps <= 240.0 else 30.0
        self._cond = threading.Condition()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._latest: Frame | None = None
        self._returned = -1
        self._stop = threading.Event()
        self._end = False
        self._lost: str | None = None
        self._status: str | None = None
        self._index = 0
        self._t0 = time.monotonic()
        self._last_frame_at = time.monotonic()
        self._generation = 0
        self._start_reader(cap)

    # ---- reader side -------------------------------------------------------------------
    def _start_reader(self, cap: cv2.VideoCapture | None) -> None:
        self._generation += 1
        thread = threading.Thread(target=self._run, args=(cap, self._generation), daemon=True,
                                  name=f"cifarlab-capture-{self._generation}")
        thread.start()

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _deliver(self, image: np.ndarray, generation: int) -> bool:
        ts = self._index / self.fps if self.kind == "file" else time.monotonic() - self._t0
        frame = Frame(image, self._index, ts)
        self._index += 1
        self._last_frame_at = time.monotonic()
        if self.mode == "sequential":
            while self._current(generation):
                try:
                    self._queue.put(frame, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False
        with self._cond:
            self._latest = frame
            self._status = None
            self._cond.notify_all()
        return True

    def _finish(self, lost: str | None = None) -> None:
        with self._cond:
            if lost:
                self._lost = lost
            else:
                self._end = True
            self._cond.notify_all()

    def _set_status(self, text: str | None) -> None:
        with self._cond:
            self._status = text
            self._cond.notify_all()

    def _run(self, cap: cv2.VideoCapture | None, generation: int) -> None:
        due = time.monotonic()
        try:
            while self._current(generation):
                if cap is None:
                    cap = self._reconnect(generation)
                    if cap is None:
                        return
                ok, image = cap.read()
                if not self._current(generation):
                    return
                if ok and image is not None:
                    if self.realtime and self.kind == "file":
                        due += 1.0 / self.fps
                        delay = due - time.monotonic()
                        if delay > 0:
                            self._stop.wait(delay)
                        elif delay < -0.25:  # fell behind (paused, slow loop): resync, no rush
                            due = time.monotonic()
                    if image.ndim == 2:
                        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                    elif image.shape[2] == 4:
                        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
                    if not self._deliver(image, generation):
                        return
                    continue
                if self.kind == "file":
                    if self.loop and self._index > 0:
                        cap.release()
                        cap, _ = _open_with_timeout(self._opener, self.open_timeout)
                        if cap is None:
                            self._finish(lost=f"{self.spec}: cannot reopen the video to loop it")
                            return
                        continue
                    if self._index == 0:
                        self._finish(lost=f"{self.spec}: opened, but no frame could be decoded "
                                          "(damaged file or a codec OpenCV lacks)")
                    else:
                        self._finish()
                    return
                cap.release()
                cap = None  # camera unplugged or stream dropped: reconnect
        finally:
            if cap is not None:
                cap.release()

    def _reconnect(self, generation: int) -> cv2.VideoCapture | None:
        deadline = time.monotonic() + self.reconnect_timeout
        delay, attempt = BACKOFF_START, 0
        what = "camera" if self.kind == "camera" else "stream"
        while self._current(generation):
            attempt += 1
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._set_status(f"{what} {self.spec} lost - reconnecting (attempt {attempt}, "
                             f"giving up in {left:.0f}s)")
            logger.info(f"source: lost, reconnecting (attempt {attempt})")
            cap, _ = _open_with_timeout(self._opener, min(self.open_timeout, max(0.5, left)))
            if cap is not None:
                ok, image = cap.read()
                if ok and image is not None:
                    logger.info("source: reconnected")
                    self._set_status(None)
                    self._deliver(image, generation)
                    return cap
                cap.release()
            self._stop.wait(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, BACKOFF_MAX)
        if self._current(generation):
            self._finish(lost=f"{what} {self.spec} was lost and did not come back within "
                              f"{self.reconnect_timeout:g}s")
        return None

    # ---- consumer side -----------------------------------------------------------------
    @property
    def status(self) -> str | None:
        """A notice for the overlay while the source is reconnecting or stalled, else None."""
        return self._status

    def _check_stall(self) -> None:
        """A read stuck longer than read_timeout: abandon that reader and reconnect."""
        if self.kind == "file" or self._end or self._lost:
            return
        stalled = time.monotonic() - self._last_frame_at
        if stalled > self.read_timeout and self._status is None:
            self._set_status(f"no frame for {stalled:.0f}s - reconnecting")
            self._last_frame_at = time.monotonic() + self.reconnect_timeout  # one restart per stall
            self._start_reader(None)

    def read(self, timeout: float = 0.1) -> Frame | None:
        """The next frame (sequential) or the newest unseen one (latest); None if none arrived
        within `timeout`. Raises EndOfStream at the end of a file, SourceLost when gone."""
        if self.mode == "sequential":
            try:
                frame = self._queue.get(timeout=timeout)
                return frame
            except queue.Empty:
                pass
            with self._cond:
                if self._queue.empty() and self._end:
                    raise EndOfStream
                if self._lost:
                    raise SourceLost(self._lost)
            self._check_stall()
            return None
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._latest is not None and self._latest.index > self._returned:
                    self._returned = self._latest.index
                    return self._latest
                if self._lost:
                    raise SourceLost(self._lost)
                if self._end:
                    raise EndOfStream
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        self._check_stall()
        return None

    def close(self) -> None:
        self._stop.set()


def open_failure_message(spec: str, kind: str, timeout: float, hung: bool) -> str:
    late = f" (no answer within {timeout:g}s)" if hung else ""
    if kind == "camera":
        return (f"no camera at index {spec} was found{late}; use --source demo for a synthetic "
                "scene, or --source path/to/video.mp4")
    if kind == "stream":
        return f"cannot open stream {spec}{late}; check the URL, the network and that the server is up"
    return f"{spec}: cannot open it as a video{late} (not a video, or a codec OpenCV lacks)"


def open_video_source(spec: str, *, sequential: bool, loop: bool = False, realtime: bool = False,
                      width: int | None = None, height: int | None = None,
                      open_timeout: float = 10.0, read_timeout: float = 5.0,
                      reconnect_timeout: float = 15.0,
                      opener: Callable[[], cv2.VideoCapture] | None = None) -> VideoSource:
    kind = source_kind(spec)
    if kind == "file" and opener is None:
        path = Path(spec)
        if not path.exists():
            raise CifarlabError(f"{spec}: no such video file (for a camera pass its index, e.g. "
                                "--source 0; for a synthetic scene --source demo)")
        if path.is_dir():
            raise CifarlabError(f"{spec}: is a folder, not a video file")
    opener = opener or make_opener(spec, kind, width, height, open_timeout)
    mode = "sequential" if sequential and kind == "file" else "latest"
    return VideoSource(spec, kind, opener, mode=mode, loop=loop, realtime=realtime,
                       open_timeout=open_timeout, read_timeout=read_timeout,
                       reconnect_timeout=reconnect_timeout)
