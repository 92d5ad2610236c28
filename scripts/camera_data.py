"""The folders the `camera-wide` recipe trains and is tuned on, made from ../shared/datasets:

    python scripts/camera_data.py DEST

DEST/camera: CIFAR-10 training images and real in-class photos (`--data` of `cifarlab train`);
DEST/outliers and DEST/outliers-held-out: the class-disjoint split of the real outlier photos
(`--outliers-data`; `evaluate --ood`); DEST/cifar-val and DEST/real-val: DEST/camera's validation
photos of each source (`cifarlab calibrate --data`, `cifarlab openset --data`). Existing folders
are kept as they are. Prints the five paths.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # the shared data paths live there
from _common import (OUTLIER_CLASSES, camera_training_folder,  # noqa: E402
                     outlier_training_folder, validation_folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path)
    dest = parser.parse_args().dest
    camera = camera_training_folder(dest / "camera")
    folders = [camera, outlier_training_folder(OUTLIER_CLASSES, dest / "outliers"),
               outlier_training_folder(OUTLIER_CLASSES, dest / "outliers-held-out", held_out=True),
               validation_folder(camera, dest / "cifar-val", real=False),
               validation_folder(camera, dest / "real-val", real=True)]
    print("\n".join(str(f) for f in folders))


if __name__ == "__main__":
    main()
