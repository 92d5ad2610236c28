"""The repository and the shared CIFAR-10 copy next to it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"
SHARED_REAL = ROOT.parent / "shared" / "datasets" / "tinyimagenet-subsets"
SHIPPED_MODEL = ROOT / "models" / "cifar10-fast.keras"
