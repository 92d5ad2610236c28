#!/usr/bin/env bash
# Remake every picture in README.md from the shipped model (each PNG < 300 KB):
#   docs/pictures/live-demo.png          the live window on the built-in demo (real CIFAR-10 photos), under Xvfb
#   docs/pictures/confusion_matrix.png   }  from `cifarlab evaluate` of the shipped model
#   docs/pictures/reliability.png        }
#   docs/pictures/cam.png                class-activation maps of a few test photos (`predict --explain`)
#   docs/pictures/training_curves.png    loss/accuracy per epoch of the shipped model's training run
#   docs/pictures/time_to_accuracy.png   test accuracy vs training minutes of the fast-robust run
#                                        (bench/time_to_accuracy.py; the wide run was not timed that way)
# Usage: scripts/readme_pictures.sh DATA   (DATA: CIFAR-10, e.g. ../shared/datasets/cifar10-jpeg)
# Needs Xvfb, xdotool and ImageMagick's `import` (./setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: scripts/readme_pictures.sh CIFAR10_DATA}
BIN=.venv/bin
OUT=docs/pictures
RUN=camera-tune   # the shipped model's training run: bench/results/$RUN-log.csv
TIMED=fast-robust      # bench/results/time_to_accuracy-$TIMED.png
mkdir -p "$OUT"

report=$(mktemp -d)
"$BIN/cifarlab" evaluate --data "$DATA" --out "$report" --no-progress
cp "$report/confusion_matrix.png" "$report/reliability.png" "$OUT/"
rm -rf "$report"

"$BIN/python" -m cifarlab.training.curves "bench/results/$RUN-log.csv" "$OUT/training_curves.png" \
  "training run of the shipped model ($RUN)"
cp "bench/results/time_to_accuracy-$TIMED.png" "$OUT/time_to_accuracy.png"

photos=$(mktemp -d)
"$BIN/python" - "$DATA" "$photos" <<'PY'
import sys
from pathlib import Path
import cv2
data, out = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("cat", "ship", "horse", "truck"):  # shown at 192 px so the written label is legible
    photo = cv2.imread(str(sorted((data / "test" / name).glob("*.jpg"))[3]))
    cv2.imwrite(str(out / f"{name}.png"), cv2.resize(photo, (192, 192), interpolation=cv2.INTER_CUBIC))
PY
"$BIN/cifarlab" predict "$photos" --explain "$photos/cam" > /dev/null
"$BIN/python" - "$photos/cam" "$OUT/cam.png" <<'PY'
import sys
from pathlib import Path
import cv2
import numpy as np
tiles = [cv2.imread(str(p)) for p in sorted(Path(sys.argv[1]).glob("*.cam.png"))]
cv2.imwrite(sys.argv[2], np.concatenate(tiles, axis=1))
PY
rm -rf "$photos"

# The live window: demo source, 1280x720, screenshot after a few photos have been classified.
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1280x720x24 -nolisten tcp &
xvfb=$!
trap 'kill $xvfb $live 2>/dev/null || true' EXIT
sleep 1
DISPLAY=$display "$BIN/cifarlab" live --source demo --width 1280 --height 720 &
live=$!
for _ in $(seq 60); do
  DISPLAY=$display xdotool search --name "cifarlab live" >/dev/null 2>&1 && break
  sleep 0.5
done
sleep 12
DISPLAY=$display import -window "$(DISPLAY=$display xdotool search --name 'cifarlab live' | head -1)" "$OUT/live-demo.png"
DISPLAY=$display xdotool search --name "cifarlab live" key q || kill $live
wait $live || true
# 1280x720 true colour is ~800 KB: half-size-ish and a 192-colour palette keep it legible under 300 KB
convert "$OUT/live-demo.png" -resize 960x540 -dither None -colors 192 "PNG8:$OUT/live-demo.png"
for f in "$OUT"/*.png; do
  size=$(stat -c %s "$f")
  (( size < 300 * 1024 )) || { echo "readme_pictures: $f is $size bytes (limit 300 KB)" >&2; exit 1; }
done
echo "readme_pictures: wrote $(ls "$OUT" | tr '\n' ' ')"
