"""Inference speed of the three runtimes side by side: Keras (one traced tf.function), LiteRT
(XNNPACK) and ONNX Runtime (CPU), on the same model and inputs.

Measures single-image latency (p50/p99 over --single-runs calls of the per-frame path:
`predict_one` for LiteRT/ONNX, a batch-1 call for Keras) and batch throughput (images/s at
--batch-size). Model: --model, else the shipped models/cifar10-fast.keras, else a freshly built
*untrained* `fast` model (same architecture and cost; the results say which).

    python bench/inference_throughput.py [--model M] [--threads N]
writes bench/results/inference_throughput.json (`--quick`: 20 single calls, 2 batches of 16,
record in a temp folder).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import record
from _common import untrained_fast_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "cifar10-fast.keras"


def timed(fn, runs: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out


def fresh_model(folder: Path) -> Path:
    return untrained_fast_model(folder, "bench/inference_throughput.py")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="intra-op threads for every runtime")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--single-runs", type=int, default=2000)
    parser.add_argument("--batch-runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/inference_throughput.json")
    record.add_quick_option(parser)
    args = parser.parse_args(argv)
    run = record.begin(args.quick)  # other processes on the machine skew timings: the record says which
    if args.quick:
        args.single_runs, args.batch_runs, args.batch_size = 20, 2, 16

    import tensorflow as tf

    from cifarlab.export.onnx import keras_to_onnx
    from cifarlab.inference import traced_call
    from cifarlab.inference.litert import LiteRTClassifier, keras_to_tflite
    from cifarlab.inference.onnx_runtime import OnnxClassifier
    from cifarlab.models.io import load_keras_model
    from cifarlab.models.openset import without_ood_score

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="cifarlab-bench-"))
    if args.model:
        path, which = args.model, f"--model {args.model}"
    elif SHIPPED.is_file():
        path, which = SHIPPED, f"shipped {SHIPPED.relative_to(ROOT)}"
    else:
        path, which = fresh_model(tmp), "freshly built untrained `fast` model (no shipped model found)"
    model, meta = load_keras_model(path)
    model = without_ood_score(model)  # the classifier alone: the open-set output's cost is live_latency.py --against
    size = meta.input_size
    params = int(model.count_params())

    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (args.batch_size, *size, 3), dtype=np.uint8)
    single = batch[0]

    keras_fn = traced_call(model, size)
    single_tf = tf.constant(single[None])
    batch_tf = tf.constant(batch)

    start = time.perf_counter()
    litert = LiteRTClassifier(keras_to_tflite(model, size), metadata=meta, num_threads=args.threads)
    litert_convert = time.perf_counter() - start
    start = time.perf_counter()
    onnx_path = tmp / "model.onnx"
    onnx_path.write_bytes(keras_to_onnx(model, size, meta))
    onnx = OnnxClassifier(onnx_path, meta, num_threads=args.threads)
    onnx_convert = time.perf_counter() - start

    reference = keras_fn(batch_tf).numpy()
    runtimes = {
        "keras_tf_function": (lambda: keras_fn(single_tf).numpy(), lambda: keras_fn(batch_tf).numpy(),
                              reference, None),
        "litert_xnnpack": (lambda: litert.predict_one(single), lambda: litert.predict(batch, args.batch_size),
                           litert.predict(batch), litert_convert),
        "onnxruntime_cpu": (lambda: onnx.predict_one(single), lambda: onnx.predict(batch, args.batch_size),
                            onnx.predict(batch), onnx_convert),
    }
    results = {}
    for name, (one, many, probs, convert_s) in runtimes.items():
        lat = timed(one, args.single_runs, warmup=min(50, args.single_runs)) * 1e3
        thr = timed(many, args.batch_runs, warmup=min(3, args.batch_runs))
        results[name] = {
            "single_latency_ms": {"p50": round(float(np.percentile(lat, 50)), 4),
                                  "p99": round(float(np.percentile(lat, 99)), 4),
                                  "mean": round(float(lat.mean()), 4)},
            f"batch{args.batch_size}_images_per_s": round(float(args.batch_size / np.median(thr)), 1),
            "max_abs_diff_vs_keras": float(np.abs(probs - reference).max()),
            "conversion_s": None if convert_s is None else round(convert_s, 2),
        }
        r = results[name]
        print(f"{name:18s} single p50 {r['single_latency_ms']['p50']:.3f} ms  "
              f"p99 {r['single_latency_ms']['p99']:.3f} ms  batch {args.batch_size}: "
              f"{r[f'batch{args.batch_size}_images_per_s']:,.0f} img/s", file=sys.stderr)

    import ai_edge_litert
    import onnxruntime

    report = {
        "model": which,
        "model_params": params,
        "input_size": list(size),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "single_runs": args.single_runs,
        "batch_runs": args.batch_runs,
        "inputs": "random uint8 images (speed does not depend on content)",
        "notes": "timings are wall-clock on a shared machine; see the record's load. "
                 "single-image = the per-frame path (LiteRT/ONNX predict_one; Keras batch-1 "
                 "tf.function call incl. .numpy()); throughput = median over batch runs",
        "results": results,
        "runtimes": {"ai_edge_litert": getattr(ai_edge_litert, "__version__", "?"),
                     "onnxruntime": onnxruntime.__version__},
    }
    out = run.write(args.out or run.path("inference_throughput.json"), report)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
