"""`cifarlab live`: classify a region of a camera, video file, stream or synthetic demo scene.

Modules: `config` (LiveConfig, the one settings object), `capture` (sources read on their own
thread, every read with a timeout, reconnect with backoff), `sources` (which source to open),
`roi` (region maths and the crop that feeds `resize_rgb`), `predictor` (warm-up, smoothing,
threshold), `overlay` (drawing), `demo` (synthetic scene), `app` (the session), `loop` (the
headless and window loops), `swap` (the model running and its hot swap), `sink` (JSONL, video,
snapshots), `keys` (the key -> action table), and `collect`, `teach` and `explain` (keys 1-9,
t and e).
"""
