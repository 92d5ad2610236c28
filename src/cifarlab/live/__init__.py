"""`cifarlab live`: classify a region of a camera, video file, stream or synthetic demo scene.

Modules: `config` (LiveConfig, the one settings object), `capture` (sources read on their own
thread, every read with a timeout, reconnect with backoff), `roi` (region maths and the crop that
feeds `resize_rgb`), `predictor` (warm-up, smoothing, threshold), `overlay`
(drawing), `demo` (synthetic scene) and `app` (the loop).
"""
