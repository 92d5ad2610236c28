"""`cifarlab live` with a real window under Xvfb: overlay drawn, clicks toggle inference, q quits."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cifarlab.live.overlay import ROI_OFF, ROI_ON
from cifarlab.live.roi import centered_square

TOOLS = ("Xvfb", "xdotool", "import")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="needs Xvfb, xdotool and ImageMagick's import")
W, H = 640, 480


@pytest.fixture
def display():
    """A private Xvfb server; its display number is chosen by Xvfb itself (-displayfd)."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24",
                               "-nolisten", "tcp"], pass_fds=(write_fd,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        number = b""
        deadline = time.monotonic() + 20
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
        os.close(read_fd)
        if not number.strip():
            pytest.skip("Xvfb did not start")
        yield f":{number.decode().strip()}"
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()


class Lines:
    """Collects a process's stdout lines on a thread; `wait_for` has a timeout."""

    def __init__(self, stream):
        self.q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.q.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout}s; got {self.seen}")


def xdotool(env, *args: str, timeout: float = 20) -> str:
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True,
                          timeout=timeout).stdout


def screenshot(env, path: Path, geometry: dict) -> np.ndarray:
    subprocess.run(["import", "-window", "root", str(path)], env=env, check=True, timeout=20)
    shot = cv2.imread(str(path))
    x, y = geometry["X"], geometry["Y"]
    return shot[y : y + H, x : x + W]


def roi_edge_pixels(window: np.ndarray) -> np.ndarray:
    x, y, w, h = centered_square((H, W), 0.5)
    return np.concatenate([window[y + 20 : y + h - 20, x], window[y + 20 : y + h - 20, x + w - 1]])


def test_window_overlay_click_and_quit(display, tiny_model, tmp_path):
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cifarlab.cli.main", "live", "--model", str(tiny_model),
         "--source", "demo", "--width", str(W), "--height", str(H), "--snapshot-dir", str(tmp_path)],
        env=env, stdout=subprocess.PIPE, stderr=(tmp_path / "stderr.txt").open("w"), text=True,
        cwd=tmp_path)
    try:
        lines = Lines(proc.stdout)
        lines.wait_for("window: ready", 90)
        wid = xdotool(env, "search", "--sync", "--onlyvisible", "--name", "^cifarlab live$").split()[-1]
        geometry = {k: int(v) for k, v in (kv.split("=") for kv in
                    xdotool(env, "getwindowgeometry", "--shell", wid).split() if "=" in kv)
                    if k in ("X", "Y", "WIDTH", "HEIGHT")}
        assert (geometry["WIDTH"], geometry["HEIGHT"]) == (W, H)
        time.sleep(1.0)

        on = screenshot(env, tmp_path / "on.png", geometry)
        edge = roi_edge_pixels(on)
        assert (edge == ROI_ON).all(axis=1).mean() > 0.9, "green ROI box not on screen"
        status = on[10:40, W - 200 : W - 20]
        assert status.mean() < 90 and status.max() > 200  # dark box with light text

        xdotool(env, "mousemove", "--window", wid, str(W // 2), str(H // 2), "click", "1")
        lines.wait_for("inference: OFF", 10)
        time.sleep(0.5)
        off = screenshot(env, tmp_path / "off.png", geometry)
        assert (roi_edge_pixels(off) == ROI_OFF).all(axis=1).mean() > 0.9, "grey ROI box missing"

        xdotool(env, "mousemove", "--window", wid, str(W // 2), str(H // 2), "click", "1")
        lines.wait_for("inference: ON", 10)
        xdotool(env, "key", "--window", wid, "s")
        snap = Path(lines.wait_for("snapshot: ", 10).split("snapshot: ", 1)[1])
        assert cv2.imread(str(snap)).shape == (H, W, 3)

        start = time.monotonic()
        xdotool(env, "key", "--window", wid, "q")
        assert proc.wait(timeout=2) == 0
        assert time.monotonic() - start < 2
        lines.wait_for("quit", 2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
