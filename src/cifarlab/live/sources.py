"""Which source `cifarlab live` opens: `--source auto` (the first camera, else the demo scene),
a camera, a video file, a stream or the demo scene; and the check for a display to show it on."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace

from cifarlab.errors import CifarlabError
from cifarlab.live.capture import open_video_source, source_kind
from cifarlab.live.config import LiveConfig

logger = logging.getLogger(__name__)


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
        logger.info("no camera at index 0; showing the built-in demo scene instead "
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
