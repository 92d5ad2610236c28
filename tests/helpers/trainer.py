"""A stand-in trainer for `live --collect`'s `t` key: a script that acts like `cifarlab train
--from` without TensorFlow, and the command line that runs it."""

from __future__ import annotations

import sys
from pathlib import Path

FAKE_TRAINER = r'''
"""A stand-in for `cifarlab train --data D --from PARENT --out RUN`: after --sleep seconds it
writes RUN/log.csv and RUN/model.keras = PARENT relabelled with D's class folders (so the
parent must have as many classes), or with --mode fail prints the trainer's error line and
exits 2. No TensorFlow: it starts in a blink."""
import json, os, sys, time, zipfile
from pathlib import Path

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
time.sleep(float(args.get("--sleep", "0.5")))
print("Epoch 1/2", flush=True)
if args.get("--mode") == "fail":
    print("cifarlab train: error: simulated failure (the trainer gave up)", file=sys.stderr)
    sys.exit(2)
data, out = Path(args["--data"]), Path(args["--out"])
classes = sorted(d.name for d in data.iterdir() if d.is_dir() and not d.name.startswith("."))
out.mkdir(parents=True)
(out / "log.csv").write_text("epoch,loss\n0,1.0\n1,0.5\n")
tmp = out / ".model.keras.tmp"
with zipfile.ZipFile(args["--from"]) as src, zipfile.ZipFile(tmp, "w") as dst:
    for item in src.infolist():
        payload = src.read(item.filename)
        if item.filename == "cifarlab.json":
            meta = json.loads(payload)
            meta["class_names"] = classes
            meta["parent"] = args["--from"]
            payload = json.dumps(meta)
        dst.writestr(item, payload)
os.replace(tmp, out / "model.keras")
print("done", flush=True)
'''


def write_fake_trainer(folder: Path) -> Path:
    path = folder / "fake_train.py"
    path.write_text(FAKE_TRAINER)
    return path


def fake_command(script: Path, mode: str = "ok", sleep: float = 0.5) -> tuple[str, ...]:
    return (sys.executable, str(script), "--data", "{data}", "--from", "{from}", "--out", "{out}",
            "--mode", mode, "--sleep", str(sleep))
