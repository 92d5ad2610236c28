"""`cifarlab live` with a real window under Xvfb: overlay drawn, clicks toggle inference, q quits;
--collect: keys save crops, `t` trains and the new model's classes appear (or a failed run
leaves the old model running)."""

from __future__ import annotations

import functools
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.images import shapes_images
from helpers.trainer import fake_command, write_fake_trainer

from cifarlab.live.overlay import FONT, ROI_OFF, ROI_ON, metrics
from cifarlab.live.roi import centered_square

TOOLS = ("Xvfb", "xdotool", "import")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="needs Xvfb, xdotool and ImageMagick's import")
W, H = 640, 480
START_ATTEMPTS = 3     # starts of `cifarlab live` until a window paints (start_live)


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
    """The window's pixels, from a screenshot of the whole screen."""
    subprocess.run(["import", "-window", "root", str(path)], env=env, check=True, timeout=20)
    x, y = geometry["X"], geometry["Y"]
    return cv2.imread(str(path))[y : y + geometry["HEIGHT"], x : x + geometry["WIDTH"]]


def retake(env, path: Path, geometry: dict, measure, good: float,
           timeout: float = 20.0) -> tuple[np.ndarray, float]:
    """A screenshot and `measure` of it, retaken until the measure exceeds `good` or `timeout`
    passes: on a busy machine the window may not have painted the frame yet."""
    deadline = time.monotonic() + timeout
    while True:
        shot = screenshot(env, path, geometry)
        value = measure(shot)
        if value > good or time.monotonic() > deadline:
            return shot, value
        time.sleep(0.3)


def roi_on_share(window: np.ndarray) -> float:
    """The share of the ROI box's edge pixels in the inference-on colour."""
    return float((roi_edge_pixels(window) == ROI_ON).all(axis=1).mean())


def roi_edge_pixels(window: np.ndarray) -> np.ndarray:
    x, y, w, h = centered_square((H, W), 0.5)
    return np.concatenate([window[y + 20 : y + h - 20, x], window[y + 20 : y + h - 20, x + w - 1]])


@pytest.mark.gui
def test_window_overlay_click_and_quit(display, tiny_model, tmp_path):
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc, lines, wid, geometry = start_live(env, tmp_path, "--model", str(tiny_model),
                                            "--snapshot-dir", str(tmp_path), size=(W, H))
    try:
        on, share = retake(env, tmp_path / "on.png", geometry, roi_on_share, 0.9)
        assert share > 0.9, f"green ROI box not on screen: {window_state(env, wid, on)}"
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


# ---- --collect and t: collect crops with the keyboard, train, see the new model -----------

TW, TH = 960, 720      # larger than above so the overlay text is big enough to find


@functools.cache
def real_trainer_has_from() -> bool:
    help_text = subprocess.run([sys.executable, "-m", "cifarlab.cli.main", "train", "--help"],
                               capture_output=True, text=True, timeout=300, check=False).stdout
    return "--from" in help_text


def text_score(window: np.ndarray, text: str, scale: float, thickness: int) -> float:
    """How well `text`, drawn as the overlay draws it, matches somewhere in `window` (1 = exactly)."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    template = np.zeros((th + base + 6, tw + 6), np.uint8)
    cv2.putText(template, text, (3, th + 3), FONT, scale, 255, thickness, cv2.LINE_AA)
    gray = np.ascontiguousarray(window.max(axis=2))   # white, yellow, green, red text alike
    return float(cv2.matchTemplate(gray, template, cv2.TM_CCOEFF_NORMED).max())


def shot_showing(env, path: Path, geometry: dict, text: str, scale: float,
                 thickness: int) -> tuple[np.ndarray, float]:
    """A screenshot and how well it shows `text`, retaken until it does (`retake`)."""
    return retake(env, path, geometry, lambda shot: text_score(shot, text, scale, thickness), 0.8)


def window_state(env, wid: str, shot: np.ndarray) -> str:
    """For a failed screenshot check: the window's X map state, the shot's brightest pixel, that of
    the window captured on its own, and the top-level windows on the screen."""
    def run(*args: str) -> str:
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=20).stdout

    state = re.search(r"Map State: (\w+)", run("xwininfo", "-id", wid))
    own = run("convert", f"x:{wid}", "-format", "%[max]", "info:").strip()
    tops = [line.strip() for line in run("xwininfo", "-root", "-children").splitlines() if "0x" in line]
    return (f"window {state[1] if state else 'not found'}, screenshot max {int(shot.max())}, "
            f"the window alone max {own}; top-level windows: {tops}")


def seed_folder(root: Path, counts: dict[str, int]) -> dict[Path, bytes]:
    """ROOT/<class>/seed-NNN.png: circles for roundy, squares for boxy, noise for background."""
    shape_of = {"roundy": 0, "boxy": 1}
    images, labels = shapes_images(300, 48, seed=3)
    rng = np.random.default_rng(5)
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        pool = images[labels == shape_of[name]] if name in shape_of else \
            rng.integers(0, 90, (n, 48, 48, 3), dtype=np.uint8)
        for i in range(n):
            cv2.imwrite(str(root / name / f"seed-{i:03d}.png"), pool[i])
    return {p: p.read_bytes() for p in root.rglob("*.png")}


def start_live(env, tmp_path: Path, *args: str, size: tuple[int, int] = (TW, TH), source: str = "demo"):
    """`cifarlab live` on `source` (the demo, or a video of frames of `size`) in a window of `size`:
    (process, lines, window, geometry).

    Under Xvfb on a loaded machine, OpenCV's Qt maps a window now and then and never paints it
    (all black, also after a fresh Expose, while the app runs and reads keys; a bare
    namedWindow + imshow loop does the same, with any window flags and QT_X11_NO_MITSHM): then
    the app is started again, up to START_ATTEMPTS times, and a later window must paint."""
    for attempt in range(1, START_ATTEMPTS + 1):
        proc, lines, wid, geometry = open_live(env, tmp_path, *args, size=size, source=source)
        first, brightest = retake(env, tmp_path / "first.png", geometry, np.max, 0)  # a demo frame is never black
        if brightest > 0:
            return proc, lines, wid, geometry
        state = window_state(env, wid, first)
        proc.kill()
        proc.wait(5)
        print(f"\nwindow {attempt} of {START_ATTEMPTS} never painted ({state})")
    raise AssertionError(f"the window never painted in {START_ATTEMPTS} starts: {state}")


def open_live(env, tmp_path: Path, *args: str, size: tuple[int, int], source: str):
    demo_size = ["--width", str(size[0]), "--height", str(size[1])] if source == "demo" else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "cifarlab.cli.main", "live", "--source", source, *demo_size, *args],
        env=env, stdout=subprocess.PIPE, stderr=(tmp_path / "stderr.txt").open("w"), text=True,
        cwd=tmp_path)
    lines = Lines(proc.stdout)
    try:
        lines.wait_for("window: ready", 120)
    except AssertionError:
        proc.kill()
        raise
    wid = xdotool(env, "search", "--sync", "--onlyvisible", "--name", "^cifarlab live$").split()[-1]
    geometry = {k: int(v) for k, v in (kv.split("=") for kv in
                xdotool(env, "getwindowgeometry", "--shell", wid).split() if "=" in kv)
                if k in ("X", "Y", "WIDTH", "HEIGHT")}
    assert (geometry["WIDTH"], geometry["HEIGHT"]) == size
    return proc, lines, wid, geometry


def collected(lines: Lines) -> list[tuple[int, str, Path, int]]:
    """(key, class, path, count) of every `collect: K CLASS -> PATH (N)` line so far."""
    while not lines.q.empty():
        lines.seen.append(lines.q.get())
    found = []
    for line in lines.seen:
        m = re.fullmatch(r"collect: (\d) (\S+) -> (.+) \((\d+)\)", line)
        if m:
            found.append((int(m[1]), m[2], Path(m[3]), int(m[4])))
    return found


@pytest.mark.parametrize("trainer", ["fake", "real"])
@pytest.mark.gui
def test_collect_and_teach_in_the_window(display, tiny_model, tmp_path, trainer):
    """Keys save crops into the right folders (holding one saves ~4 a second, the existing files
    stay), `t` trains in a separate process while the video runs, and the overlay then shows
    the new model's classes. `fake` is a stand-in trainer (test_live_collect.FAKE_TRAINER);
    `real` runs `cifarlab train --from` on 3 classes x 30+ images and reports the t-to-live time."""
    if trainer == "real" and not real_trainer_has_from():
        pytest.skip("`cifarlab train` has no --from option yet (being built in another change); "
                    "the fake trainer run covers the window until then")
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "TF_CPP_MIN_LOG_LEVEL": "2"}
    root = tmp_path / "things"
    seeded = seed_folder(root, {"roundy": 30, "boxy": 30})
    extra = []
    if trainer == "fake":
        script = write_fake_trainer(tmp_path)
        extra = ["--train-command", shlex.join(fake_command(script, sleep=2.0))]
    proc, lines, wid, geometry = start_live(
        env, tmp_path, "--model", str(tiny_model), "--collect", str(root),
        "--classes", "roundy,boxy,background", *extra)
    _, scale, thick, _ = metrics(TH, TW)
    try:
        # keys: DIR's class folders sorted first (1 boxy, 2 roundy), then background (3)
        for key in "12":
            xdotool(env, "key", "--window", wid, key)
            time.sleep(0.4)
        xdotool(env, "mousemove", "--window", wid, str(TW // 2), str(TH // 2))
        xdotool(env, "windowfocus", "--sync", wid)
        xdotool(env, "keydown", "3")              # held: the X server repeats it
        time.sleep(6.0)
        xdotool(env, "keyup", "3")
        time.sleep(0.5)
        held = [c for c in collected(lines) if c[0] == 3]
        assert 10 <= len(held) <= 26, f"holding 3 for 6 s saved {len(held)} crops (about 4/s)"
        while len([c for c in collected(lines) if c[0] == 3]) < 30:
            xdotool(env, "key", "--window", wid, "3")
            time.sleep(0.3)
        saves = collected(lines)
        assert {(k, name) for k, name, _, _ in saves} == {(1, "boxy"), (2, "roundy"), (3, "background")}
        for key, name, path, count in saves:
            assert path.parent == root / name and path.suffix == ".png"
            assert cv2.imread(str(path)).shape == (TH // 2, TH // 2, 3)   # the full ROI
        assert len({p for _, _, p, _ in saves}) == len(saves)
        assert {p: p.read_bytes() for p in seeded} == seeded            # added to, not replaced
        counts = {n: len(list((root / n).glob("*.png"))) for n in ("boxy", "roundy", "background")}
        assert counts["boxy"] == counts["roundy"] == 31 and counts["background"] >= 30
        time.sleep(0.3)
        shot, score = shot_showing(env, tmp_path / "collect.png", geometry,
                                   f"3  background ({counts['background']})", scale, thick)
        assert score > 0.8, window_state(env, wid, shot)

        start = time.monotonic()
        xdotool(env, "key", "--window", wid, "t")
        lines.wait_for("teach: training on", 10)
        time.sleep(1.0)
        shot, score = shot_showing(env, tmp_path / "training.png", geometry, "training...", scale * 1.1, thick + 1)
        assert score > 0.8, window_state(env, wid, shot)
        live = lines.wait_for("teach: new model live", 180)
        seconds = time.monotonic() - start
        print(f"\nt-to-live ({trainer} trainer, 3 classes x 30+ images, {TW}x{TH} demo): "
              f"{seconds:.1f} s; {live}")
        assert live.endswith(": background, boxy, roundy")
        time.sleep(1.0)
        shot, score = shot_showing(env, tmp_path / "taught.png", geometry,
                                   "new model: background, boxy, roundy", scale * 1.1, thick + 1)
        assert score > 0.8, window_state(env, wid, shot)
        bars = bars_naming(shot, ("background", "boxy", "roundy"), scale, thick)  # the new classes
        assert text_score(bars, "triangle", scale, thick) < 0.7    # the old ones are gone
        quit_live(env, wid, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def bars_naming(shot: np.ndarray, names, scale: float, thick: int) -> np.ndarray:
    """The top-3 bars (top left of the window), checked to name each of `names`."""
    bars = shot[: TH // 4, : TW // 3]
    for name in names:
        assert text_score(bars, name, scale, thick) > 0.8, name
    return bars


def quit_live(env, wid: str, proc) -> None:
    xdotool(env, "key", "--window", wid, "q")
    assert proc.wait(timeout=10) == 0


@pytest.mark.gui
def test_failed_training_keeps_the_old_model(display, tiny_model, tmp_path):
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "TF_CPP_MIN_LOG_LEVEL": "2"}
    root = tmp_path / "things"
    seed_folder(root, {"roundy": 5, "boxy": 5, "background": 5})
    script = write_fake_trainer(tmp_path)
    proc, lines, wid, geometry = start_live(
        env, tmp_path, "--model", str(tiny_model), "--collect", str(root),
        "--train-command", shlex.join(fake_command(script, "fail", sleep=1.0)))
    _, scale, thick, _ = metrics(TH, TW)
    try:
        xdotool(env, "key", "--window", wid, "t")
        lines.wait_for("teach: training on", 10)
        failed = lines.wait_for("teach: failed (exit 2)", 60)
        assert "simulated failure (the trainer gave up)" in failed
        time.sleep(1.0)
        shot, score = shot_showing(env, tmp_path / "failed.png", geometry,
                                   "training failed: simulated failure (the trainer gave up)", scale * 1.1, thick + 1)
        assert score > 0.8, window_state(env, wid, shot)
        bars_naming(shot, ("circle", "square", "triangle"), scale, thick)  # the old model still classifies
        assert not [line for line in lines.seen if "new model" in line]
        quit_live(env, wid, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
