"""Peak memory of a short training run on the memory-mapped dataset cache, by dataset size.

    python bench/data_memory.py                  # 50,000 and 500,000 images
    python bench/data_memory.py --quick          # 2,000 images, to check the script runs

For each size, synthetic 32x32 uint8 images (class-tinted noise) are written through the dataset
cache (`cifarlab.data.cache.write_cache`) by one fresh process; another fresh process opens the
entry (`read_cache`: the images are memory maps) and runs `train(config, dataset=...)` with the
`fast` recipe at small widths for --steps steps. That process reports its peak RSS (getrusage) and
the peaks of its anonymous and file-backed resident memory, sampled from /proc/self/status. Pages
of a memory map are file-backed and the kernel drops them under pressure, so a dataset larger
than memory trains as long as the anonymous part fits; the anonymous peak is the figure to watch.
With --in-memory-reference the same run is repeated on a copy of the arrays in memory.
Writes bench/results/data_memory.json (`--quick`: the quick folder, see bench/record.py).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
import record

SIZES = (50_000, 500_000)
QUICK_SIZE = 2_000
CLASSES = [f"class{i}" for i in range(10)]
CHUNK = 10_000
STATUS_FIELDS = ("VmRSS", "RssAnon", "RssFile")


def write_synthetic_cache(entry: Path, n: int) -> None:
    """n class-tinted noise images, as a cache entry with one "train" split."""
    import numpy as np
    from _common import tiny_images

    from cifarlab.data import Split
    from cifarlab.data.cache import write_cache

    images = np.empty((n, 32, 32, 3), np.uint8)
    labels = np.empty(n, np.int64)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        images[start:stop], labels[start:stop] = tiny_images(stop - start, len(CLASSES), seed=start)
    meta = {"classes": CLASSES, "fingerprint": f"synthetic-{n}", "format": "synthetic",
            "source_key": f"synthetic-{n}"}
    write_cache(entry, meta, {"train": Split(images, labels)})


def status_mb() -> dict[str, float]:
    """VmRSS, RssAnon and RssFile of this process now, in MB (Linux; empty elsewhere)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in STATUS_FIELDS if k in fields}


class PeakSampler(threading.Thread):
    """Samples `status_mb` every `every` seconds and keeps the peak of each field."""

    def __init__(self, every: float = 0.02):
        super().__init__(daemon=True)
        self.every, self.peaks, self.done = every, {}, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for key, value in status_mb().items():
                self.peaks[key] = max(self.peaks.get(key, 0.0), value)
            self.done.wait(self.every)


def stop_after(steps: int):
    import keras

    class StopAfter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 >= steps:
                self.model.stop_training = True

    return StopAfter()


def train_on_cache(entry: Path, steps: int, batch_size: int, in_memory: bool) -> dict:
    """Train a few steps on the cached dataset; this process's memory figures."""
    import numpy as np

    from cifarlab.data import Dataset, Split
    from cifarlab.data.cache import read_cache
    from cifarlab.training.config import TrainConfig
    from cifarlab.training.train import train

    sampler = PeakSampler()
    sampler.start()
    after_imports = status_mb()
    meta, splits = read_cache(entry)
    if in_memory:
        splits = {name: Split(np.array(s.stored), s.labels) for name, s in splits.items()}
    data = Dataset(meta["classes"], splits, "synthetic", f"synthetic ({entry.name})",
                   meta["fingerprint"], "hit")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cifarlab-bench-run-") as out:
        config = TrainConfig(data=str(entry), model="fast", widths=(16, 32, 32), epochs=1,
                             batch_size=batch_size, out=Path(out) / "run", quiet=True,
                             command="bench/data_memory.py")
        summary = train(config, extra_callbacks=[stop_after(steps)], dataset=data)
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    return {"images": len(splits["train"]), "in_memory": in_memory, "steps": steps,
            "batch_size": batch_size, "train_images": summary["train_images"],
            "val_images": summary["val_images"], "seconds": round(seconds, 1),
            "dataset_mb": round(splits["train"].stored.nbytes / 2**20, 1),
            "rss_mb_after_imports": {k: round(v, 1) for k, v in after_imports.items()},
            "peak_rss_mb_getrusage": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_mb_sampled": {k: round(v, 1) for k, v in sampler.peaks.items()}}


def run_child(*argv: str) -> str:
    done = subprocess.run([sys.executable, __file__, *argv], check=True, capture_output=True,
                          text=True)
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def measure(n: int, steps: int, batch_size: int, in_memory_reference: bool) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="cifarlab-bench-cache-") as folder:
        entry = Path(folder) / f"synthetic-{n}"
        run_child("--write-cache", str(entry), "--images", str(n))
        disk_mb = sum(p.stat().st_size for p in entry.iterdir()) / 2**20
        rows = []
        for in_memory in (False, True) if in_memory_reference else (False,):
            child = ["--train-on", str(entry), "--steps", str(steps), "--batch-size", str(batch_size)]
            rows.append({**json.loads(run_child(*child, *(["--in-memory"] if in_memory else []))),
                         "cache_mb_on_disk": round(disk_mb, 1)})
            print(json.dumps(rows[-1]), flush=True)
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="images per run")
    parser.add_argument("--steps", type=int, default=5, help="training steps per run")
    parser.add_argument("--batch-size", type=int, default=256, help="training batch size")
    parser.add_argument("--in-memory-reference", action="store_true",
                        help="also train on an in-memory copy of the arrays, for comparison")
    record.add_quick_option(parser)
    parser.add_argument("--write-cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--train-on", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_cache:
        write_synthetic_cache(args.write_cache, args.images)
        return 0
    if args.train_on:
        print(json.dumps(train_on_cache(args.train_on, args.steps, args.batch_size, args.in_memory)))
        return 0

    run = record.begin(args.quick)
    sizes, steps = ([QUICK_SIZE], 2) if args.quick else (args.sizes, args.steps)
    path, results = run.path("data_memory.json"), {"runs": []}
    for n in sizes:
        results["runs"] += measure(n, steps, args.batch_size, args.in_memory_reference)
        run.write(path, results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
