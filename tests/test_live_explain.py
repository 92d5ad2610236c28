"""Key `e` in `cifarlab live`: the class-activation map blended over the region."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cifarlab.errors import CifarlabError
from cifarlab.live.explain import LiveExplainer, blend


def test_worker_computes_maps_and_blend_colours_only_the_region(tiny_model):
    from helpers.images import shapes_images

    images, _ = shapes_images(1, size=32, seed=3)
    explainer = LiveExplainer(tiny_model)
    try:
        deadline = time.monotonic() + 60
        while explainer.map is None and time.monotonic() < deadline:
            explainer.update(images[0], 0)
            time.sleep(0.05)
        assert explainer.error is None and explainer.map is not None
        assert explainer.map.shape == (32, 32) and 0 <= explainer.map.min() and explainer.map.max() <= 1
    finally:
        explainer.close()
    frame = np.full((120, 160, 3), 100, np.uint8)
    blend(frame, (40, 20, 60, 60), explainer.map)
    assert (frame[20:80, 40:100] != 100).any()  # the region is coloured
    outside = frame.copy()
    outside[20:80, 40:100] = 100
    assert (outside == 100).all()  # nothing outside it


def test_exported_models_cannot_be_explained(tmp_path):
    with pytest.raises(CifarlabError, match="needs a .keras model"):
        LiveExplainer(tmp_path / "m.tflite")


def test_e_key_toggles_the_heatmap_in_a_headless_run(tiny_model):
    from cifarlab.live.app import LiveApp
    from cifarlab.live.config import LiveConfig

    app = LiveApp(LiveConfig(model=tiny_model, source="demo", window=False, max_frames=1))
    assert app.model_path == tiny_model
    app.handle_key(ord("e"))
    assert isinstance(app.explainer, LiveExplainer)
    app.handle_key(ord("e"))
    assert app.explainer is None
