#!/usr/bin/env bash
# Reproduce the shipped model: train its recipe (`camera-wide`, training/recipes.py) on CIFAR-10
# plus the real in-class photos of ../shared/datasets/tinyimagenet-subsets/cifar-classes-train, with
# outlier exposure from the outlier classes not held out (bench/_common.py says which), copy it to
# models/, and measure it: CIFAR-10 test and its CIFAR-10-C corruptions (models/cifar10-fast-report/,
# bench/results/robustness-camera-wide.json) and the real photos (bench/results/real_photos-camera-wide.json).
#   scripts/ship_model.sh [extra `cifarlab train` options]
# Rerunning after an interruption resumes the training run from its last finished epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=runs/ship-camera-wide
RECIPE=camera-wide   # training/recipes.py
python - <<'PY'
import sys; sys.path.insert(0, "bench")
from _common import OUTLIER_CLASSES, camera_training_folder, outlier_training_folder
camera_training_folder("runs/data/camera")
outlier_training_folder(OUTLIER_CLASSES, "runs/data/outliers")
outlier_training_folder(OUTLIER_CLASSES, "runs/data/outliers-held-out", held_out=True)
PY
if [[ ! -f $RUN/model.keras ]]; then
  cifarlab train --data runs/data/camera --recipe "$RECIPE" --outliers-data runs/data/outliers \
    --seed 0 --precision bfloat16 --out "$RUN" "$@"
fi
cp "$RUN/model.keras" models/cifar10-fast.keras
cp "$RUN/log.csv" "bench/results/$RECIPE-log.csv"   # scripts/readme_pictures.sh draws it
python bench/robustness.py --data ../shared/datasets/cifar10-jpeg --model shipped-full=models/cifar10-fast.keras \
  --out "bench/results/robustness-$RECIPE.json" --report models/cifar10-fast-report \
  --ood runs/data/outliers-held-out
python bench/real_photos.py models/cifar10-fast.keras --tta --name camera-wide
