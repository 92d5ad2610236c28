"""Where a live run's results go: `--jsonl` rows, the `--record` video and `s` snapshots."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.live.capture import Frame
from cifarlab.live.predictor import Prediction

logger = logging.getLogger(__name__)


def jsonl_row(frame: Frame, pred: Prediction, ms: float, roi: tuple[int, int, int, int]) -> dict:
    """One classified frame as a `--jsonl` row (a demo frame also names its true label);
    `ood_score` is null for a model without the open-set score."""
    return {
        "frame": frame.index,
        "timestamp": round(frame.timestamp, 4),
        "label": pred.label,
        "class": pred.top_class,
        "confidence": round(float(pred.confidence), 6),
        "top_k": [{"label": n, "confidence": round(float(p), 6)} for n, p in pred.top_k],
        "ood_score": None if pred.ood_score is None else round(float(pred.ood_score), 6),
        "unknown": bool(pred.unknown),
        "inference_ms": round(ms, 3),
        "roi": list(roi),
        **({"truth": frame.truth} if frame.truth is not None else {}),
    }


class OutputSink:
    """Opened by `open(fps)` and closed by `close()`; every output is optional."""

    def __init__(self, jsonl: Path | None = None, record: Path | None = None,
                 snapshot_dir: Path = Path(".")):
        self.jsonl_path = Path(jsonl) if jsonl else None
        self.record_path = Path(record) if record else None
        self.snapshot_dir = Path(snapshot_dir)
        self.fps = 30.0
        self._jsonl = None
        self._writer: cv2.VideoWriter | None = None

    def open(self, fps: float | None = None) -> None:
        """Create the JSONL file now (a bad path fails before the first frame); the video is
        created with the first frame, whose size it takes, at `fps` frames a second."""
        self.fps = float(fps or 30.0)
        if self.jsonl_path is None:
            return
        try:
            self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
            self._jsonl = open(self.jsonl_path, "w", encoding="utf-8")  # noqa: SIM115 - close()
        except OSError as exc:
            raise CifarlabError(f"{self.jsonl_path}: cannot write ({exc.strerror})") from None

    def write(self, frame: Frame, pred: Prediction | None, ms: float,
              roi: tuple[int, int, int, int], annotated: np.ndarray) -> None:
        """The outputs of one processed frame: its row (when it was classified), its picture."""
        if self._jsonl is not None and pred is not None:
            self._jsonl.write(json.dumps(jsonl_row(frame, pred, ms, roi)) + "\n")
        if self.record_path is not None:
            self._record(annotated)

    def _record(self, annotated: np.ndarray) -> None:
        if self._writer is None:
            self._writer = self._open_video(annotated.shape)
        self._writer.write(annotated)

    def _open_video(self, shape: tuple[int, ...]) -> cv2.VideoWriter:
        path = self.record_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # said below: the writer cannot open there either
        h, w = shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        if not writer.isOpened():
            raise CifarlabError(f"{path}: cannot write a video there (use a .mp4 path in a "
                                "writable folder)")
        return writer

    def snapshot(self, annotated: np.ndarray, index: int) -> Path:
        """`annotated` as `cifarlab-snapshot-<time>-<frame index>.png` in the snapshot folder."""
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.snapshot_dir / f"cifarlab-snapshot-{stamp}-{index:06d}.png"
        if not cv2.imwrite(str(path), annotated):
            logger.info(f"snapshot: cannot write {path}")
        else:
            logger.info(f"snapshot: {path}")
        return path

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
