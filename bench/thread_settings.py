"""TensorFlow's thread settings on this machine: cifarlab's `fast` training step under each.

    python bench/thread_settings.py            # on a machine doing nothing else
    python bench/thread_settings.py --quick    # 1 step at batch 8 with narrow widths: does it run?

Each setting (intra-op threads, inter-op threads; 0 = TensorFlow's choice) runs in its own
process, since TensorFlow fixes its thread pools at start: the real `fast` step of
bench/step_profile.py (recipe optimizer and schedule, tf.data augmentation), `--warmup` steps,
then `--rounds` of `--steps` timed steps. Writes bench/results/thread_settings.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import record

SETTINGS = [(0, 0), (2, 1), (1, 2), (2, 2), (1, 1)]


def measure(intra: int, inter: int, steps: int, rounds: int, warmup: int, quick: bool) -> list[float]:
    """Images/s of each round, in a fresh process with these thread settings."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    import step_profile

    images, labels = step_profile.tiny_images(64 if quick else 4096, step_profile.CLASSES)
    step = step_profile.real_step("fast", "fused", images, labels, 8 if quick else None,
                                  (8, 16, 16) if quick else None)
    return step_profile.measure_in_rounds({"fast": step}, warmup, steps * rounds, rounds, lambda rates: None)["fast"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--one", nargs=2, type=int, metavar=("INTRA", "INTER"), help=argparse.SUPPRESS)
    record.add_quick_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds, args.warmup = 1, 1, 1
    if args.one:  # the child process: print the rates of one setting
        print(json.dumps(measure(*args.one, args.steps, args.rounds, args.warmup, args.quick)))
        return
    run = record.begin(args.quick)
    results = {"step": "cifarlab's fast training step (bench/step_profile.py real-fused)", "settings": {}}
    for intra, inter in SETTINGS[:2] if args.quick else SETTINGS:
        child = [sys.executable, __file__, "--one", str(intra), str(inter), "--steps", str(args.steps),
                 "--rounds", str(args.rounds), "--warmup", str(args.warmup)] + (["--quick"] if args.quick else [])
        out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
        rates = json.loads(out.strip().splitlines()[-1])
        results["settings"][f"intra {intra} / inter {inter}"] = [round(r, 1) for r in rates]
        print(f"intra {intra} / inter {inter}: {rates}")
        run.write(run.path("thread_settings.json"), results)


if __name__ == "__main__":
    main()
