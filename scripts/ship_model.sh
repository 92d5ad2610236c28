#!/usr/bin/env bash
# Reproduce the shipped model (recipes in training/recipes.py) from ../shared/datasets:
#  1. `fast-robust-wide` on CIFAR-10: the parent, robust to camera-like corruptions;
#  2. `camera-tune` from it: CIFAR-10 plus real photos of the classes, real outlier photos as
#     "none of my classes", the energy score (folders made by scripts/camera_data.py);
#  3. the temperature refitted on CIFAR-10 validation images, the `unknown` threshold on held-out
#     real photos of the classes (keeps 92% of them);
#  4. copied to models/ and evaluated: CIFAR-10 test and CIFAR-10-C in full, held-out outlier
#     classes (models/cifar10-fast-report/, bench/results/robustness-camera-tune.json) and the
#     real photos (bench/results/real_photos-camera-tune.json).
#   scripts/ship_model.sh
# Rerunning after an interruption resumes the training run that was interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=runs/ship-data   # made fresh: folders made by an older builder are kept as they are
PARENT=runs/ship-fast-robust-wide
RUN=runs/ship-camera-tune
SHIPPED=models/cifar10-fast.keras
python scripts/camera_data.py "$DATA"
[[ -f $PARENT/model.keras ]] || cifarlab train --data ../shared/datasets/cifar10-jpeg \
  --recipe fast-robust-wide --seed 0 --precision bfloat16 --out "$PARENT"
[[ -f $RUN/model.keras ]] || cifarlab train --data "$DATA/camera" --recipe camera-tune \
  --from "$PARENT/model.keras" --outliers-data "$DATA/outliers" --seed 0 --precision bfloat16 --out "$RUN"
cifarlab calibrate --model "$RUN/model.keras" --data "$DATA/cifar-val" --out "$RUN/shipped.keras"
cifarlab openset --model "$RUN/shipped.keras" --data "$DATA/real-val" --keep 0.92
cp "$RUN/shipped.keras" "$SHIPPED"
python bench/robustness.py --model shipped=$SHIPPED --ood "$DATA/outliers-held-out" \
  --out bench/results/robustness-camera-tune.json --report models/cifar10-fast-report
python bench/real_photos.py $SHIPPED --name camera-tune
