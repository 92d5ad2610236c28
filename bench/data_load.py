"""Benchmark dataset loading: first import (cold, fresh cache dir) and cached loads.

    python bench/data_load.py [--data PATH] [--out bench/results/data_load.json]

Targets: first import <= 60 s, second (cached) load <= 2 s. The cached load is timed
--repeat times both in the same process and in fresh Python processes (what a second
`cifarlab` command sees; interpreter and import time excluded, reported separately); the
median of all of them is checked against the target. The machine's load average is recorded
because other jobs on a 2-core machine easily double these times.
`--quick`: a generated folder of 40 PNGs, one repeat, record in a temp folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import record
from _common import CIFAR10_JPEG, tiny_image_folder

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
t0 = time.perf_counter()
from cifarlab.data import load_dataset
t1 = time.perf_counter()
d = load_dataset(sys.argv[1], cache_dir=sys.argv[2], progress=False)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "cache": d.cache}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=CIFAR10_JPEG, help="dataset source")
    parser.add_argument("--repeat", type=int, default=3,
                        help="cached loads to time (same process and fresh processes each)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON result (default: bench/results/data_load.json)")
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    out = args.out or run.path("data_load.json")

    from cifarlab.data import load_dataset

    with tempfile.TemporaryDirectory(prefix="cifarlab-bench-") as cache_dir:
        if args.quick:
            args.repeat = 1
            args.data = tiny_image_folder(Path(cache_dir) / "data", ["a", "b"], {"train": 30, "test": 10})
            cache_dir = str(Path(cache_dir) / "cache")
        t0 = time.perf_counter()
        first = load_dataset(args.data, cache_dir=Path(cache_dir), progress=True)
        first_s = time.perf_counter() - t0
        same, fresh = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            second = load_dataset(args.data, cache_dir=Path(cache_dir), progress=False)
            same.append(time.perf_counter() - t0)
            del second
        for _ in range(args.repeat):
            fresh.append(json.loads(subprocess.run(
                [sys.executable, "-c", CHILD, str(args.data), cache_dir], check=True,
                capture_output=True, text=True).stdout.strip().splitlines()[-1]))
        second = load_dataset(args.data, cache_dir=Path(cache_dir), progress=False)
        cache_bytes = sum(p.stat().st_size for p in Path(cache_dir).rglob("*") if p.is_file())

    assert second.fingerprint == first.fingerprint
    result = {
        "data": str(args.data),
        "format": first.format,
        "splits": {n: len(s) for n, s in first.splits.items()},
        "image_size": list(first.image_size),
        "first_load_s": round(first_s, 2),
        "first_cache": first.cache,
        "second_load_s_same_process": [round(t, 3) for t in same],
        "second_cache": second.cache,
        "second_load_s_fresh_process": [round(c["load_s"], 3) for c in fresh],
        "second_load_s_median": round(statistics.median([*same, *(c["load_s"] for c in fresh)]), 3),
        "fresh_process_import_s": round(statistics.median(c["import_s"] for c in fresh), 3),
        "fresh_process_cache": sorted({c["cache"] for c in fresh}),
        "cache_file_mb": round(cache_bytes / 1e6, 1),
        "targets": {"first_load_s": 60, "second_load_s": 2},
        "ok": first_s <= 60 and statistics.median([*same, *(c["load_s"] for c in fresh)]) <= 2,
    }
    run.write(out, result)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] or args.quick else 1  # --quick checks that it runs, not the targets


if __name__ == "__main__":
    sys.exit(main())
