#!/usr/bin/env bash
# Reproduce the shipped model: train the `fast` preset on CIFAR-10, copy it to models/, and
# evaluate it on the 10,000 test images (models/cifar10-fast-report/: metrics.json, report.html).
#   scripts/ship_model.sh PATH_TO_CIFAR10 [extra `cifarlab train` options]
# Rerunning after an interruption resumes the training run from its last finished epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: scripts/ship_model.sh PATH_TO_CIFAR10 [train options]}
shift
RUN=runs/ship-fast
SHIP_ARGS=(--model fast --widths 128,384,384 --epochs 32 --translate 4 --cutout 8 --seed 0 --precision bfloat16)
[[ -f $RUN/model.keras ]] || cifarlab train --data "$DATA" "${SHIP_ARGS[@]}" --out "$RUN" "$@"
cp "$RUN/model.keras" models/cifar10-fast.keras
cifarlab evaluate models/cifar10-fast.keras --data "$DATA" --out models/cifar10-fast-report
