"""Benchmark `import cifarlab`: seconds in fresh Python processes, and that it imports no TensorFlow.

    python bench/import_time.py [--repeat 20]

Target: under 0.5 s (the package registers its Keras layers only once Keras is imported). Each
repeat is a new interpreter (a second import in one process costs nothing); the interpreter's own
start-up is timed apart, with `python -c pass`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import record

TARGET_SECONDS = 0.5
CHILD = """
import json, sys, time
started = time.perf_counter()
import cifarlab
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "loaded": [m for m in ("tensorflow", "keras", "numpy")
                                                 if m in sys.modules]}))
"""


def timed(code: str) -> tuple[float, str]:
    """(wall seconds of a fresh `python -c code`, its stdout)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=True)
    return time.perf_counter() - started, proc.stdout


def summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "runs": [round(v, 4) for v in values]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="fresh processes to time")
    record.add_quick_option(parser)
    args = parser.parse_args()
    run = record.begin(args.quick)
    repeat = 3 if args.quick else args.repeat
    imports, processes, loaded = [], [], set()
    for _ in range(repeat):
        wall, out = timed(CHILD)
        child = json.loads(out)
        imports.append(child["seconds"])
        processes.append(wall)
        loaded.update(child["loaded"])
    interpreter = [timed("pass")[0] for _ in range(repeat)]
    results = {
        "import_seconds": summary(imports),
        "process_seconds": summary(processes),
        "interpreter_only_seconds": summary(interpreter),
        "modules_loaded": sorted(loaded),
        "target_seconds": TARGET_SECONDS,
        "meets_target": statistics.median(imports) < TARGET_SECONDS,
    }
    path = run.write(run.path("import_time.json"), results)
    print(f"import cifarlab: median {results['import_seconds']['median']:.3f} s over {repeat} fresh "
          f"processes; loaded: {', '.join(results['modules_loaded']) or 'no TensorFlow, Keras or NumPy'}"
          f" -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
