#!/usr/bin/env bash
# Reproduce the shipped model: train its recipe (`fast-robust-wide`, training/recipes.py) on
# CIFAR-10, copy it to models/, and evaluate it on the 10,000 test images and their CIFAR-10-C
# corruptions (models/cifar10-fast-report/: metrics.json, report.html; the timing and the
# side-by-side figures go to bench/results/robustness.json).
#   scripts/ship_model.sh PATH_TO_CIFAR10 [extra `cifarlab train` options]
# Rerunning after an interruption resumes the training run from its last finished epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: scripts/ship_model.sh PATH_TO_CIFAR10 [train options]}
shift
RUN=runs/ship-fast-robust-wide
RECIPE=fast-robust-wide   # training/recipes.py
[[ -f $RUN/model.keras ]] || cifarlab train --data "$DATA" --recipe "$RECIPE" --seed 0 \
  --precision bfloat16 --out "$RUN" "$@"
# Runs trained before the open-set output existed get it here (a run trained now already has it).
cifarlab openset --model "$RUN/model.keras" --data "$DATA" --bank-size 500   # 500: the wide network is 18 MB, the file stays < 20 MB
cp "$RUN/model.keras" models/cifar10-fast.keras
python bench/robustness.py --data "$DATA" --model shipped-full=models/cifar10-fast.keras \
  --out "bench/results/robustness-$RECIPE.json" \
  --report models/cifar10-fast-report
