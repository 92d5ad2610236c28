#!/usr/bin/env bash
# Reproduce the shipped model models/cifar10-fast.keras and its records:
# 1. the data folders of ../shared/datasets (bench/camera_data.py): CIFAR-10 and real in-class
#    photos to train on, real outlier photos split by class into training and held-out;
# 2. train its recipe (`camera-wide`, training/recipes.py);
# 3. refit its softmax temperature on CIFAR-10 validation images (`cifarlab calibrate`) and its
#    "unknown" threshold on real validation photos (`cifarlab openset --keep 0.92`), into models/;
# 4. evaluate it: the 10,000 test images, their CIFAR-10-C corruptions and the held-out outlier
#    classes (models/cifar10-fast-report/, bench/results/robustness-camera-wide-shipped.json), and the real
#    photos (bench/results/real_photos-camera-wide-shipped.json).
#   scripts/ship_model.sh [extra `cifarlab train` options]
# Rerunning after an interruption resumes the training run from its last finished epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=runs/data
RUN=runs/ship-camera
RECIPE=camera-wide   # training/recipes.py
python bench/camera_data.py "$DATA"
[[ -f $RUN/model.keras ]] || cifarlab train --data "$DATA/camera" --recipe "$RECIPE" \
  --outliers-data "$DATA/outliers" --seed 0 --precision bfloat16 --out "$RUN" "$@"
cp "$RUN/log.csv" "bench/results/$RECIPE-shipped-log.csv"   # docs/pictures/training_curves.png
cifarlab calibrate --model "$RUN/model.keras" --data "$DATA/cifar-val" --out "$RUN/calibrated.keras"
cifarlab openset --model "$RUN/calibrated.keras" --data "$DATA/real-val" --keep 0.92 \
  --out models/cifar10-fast.keras   # 0.92: at most 8% of real in-class photos called unknown
python bench/robustness.py --model shipped=models/cifar10-fast.keras --ood "$DATA/outliers-held-out" \
  --out "bench/results/robustness-$RECIPE-shipped.json" --report models/cifar10-fast-report
python bench/real_photos.py models/cifar10-fast.keras --name "$RECIPE-shipped"
