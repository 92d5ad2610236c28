"""Key `e`: the class-activation map of the region, blended over it on the video.

A map (`cifarlab.inference.cam`, the measured-best method: LayerCAM, which needs a gradient and
so the Keras model) costs several frames' worth of inference (bench/results/live_latency.json).
So it is computed on a worker thread from the latest region crop while the video goes on, and
each frame only blends the newest map over the region (`blend`, the per-frame cost).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cifarlab.inference.cam import CamExplainer, overlay_heatmap
from cifarlab.models.io import require_keras_file


class LiveExplainer:
    def __init__(self, model_path: Path):
        require_keras_file(model_path, "explaining")
        self.model_path = Path(model_path)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="cifarlab-explain")
        self._explainer: CamExplainer | None = None
        self._pending: Future | None = None
        self.map: np.ndarray | None = None    # the newest map, model-input size, 0..1
        self.error: str | None = None

    def _compute(self, rgb: np.ndarray, class_index: int) -> np.ndarray:
        if self._explainer is None:
            from cifarlab.models.io import load_keras_model

            self._explainer = CamExplainer(load_keras_model(self.model_path)[0])
        maps, _ = self._explainer.explain(rgb[None], class_index)
        return maps[0]

    def update(self, rgb: np.ndarray, class_index: int) -> None:
        """Take a finished map, and start the next one from this crop if the worker is free."""
        if self._pending is not None and not self._pending.done():
            return
        if self._pending is not None:
            try:
                self.map = self._pending.result()
            except Exception as exc:  # noqa: BLE001 - shown on screen, the video goes on
                self.error = f"{exc.__class__.__name__}: {exc}"
        self._pending = self._pool.submit(self._compute, rgb, class_index)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def blend(image: np.ndarray, roi: tuple[int, int, int, int], cam: np.ndarray) -> None:
    """Blend `cam` over the region of the BGR frame, in place."""
    x, y, w, h = roi
    region = image[y : y + h, x : x + w]
    region[...] = overlay_heatmap(region, cam, bgr=True)
