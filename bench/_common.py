"""Shared by the benchmarks: where the shared data sets are, the class-disjoint outlier split,
an untrained stand-in model and tiny `--quick` data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"  # next to the repository
CIFAR10_JPEG = SHARED / "cifar10-jpeg"
TINY_IMAGENET = SHARED / "tinyimagenet-subsets"  # its README.md says what each folder may be used for
OUTLIER_CLASSES = TINY_IMAGENET / "other-classes"
HELD_OUT_EVERY = 3  # every third outlier class (sorted by name, from the first) is held out


def outlier_split(root: str | Path = OUTLIER_CLASSES) -> tuple[list[str], list[str]]:
    """(train classes, held-out classes) of the outlier folder ROOT/<class>/<image>: its class
    folders sorted by name, class i held out when i % HELD_OUT_EVERY == 0. Outlier exposure
    trains on the first list only; open-set figures are measured on the second."""
    names = sorted(d.name for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith("."))
    if not names:
        raise FileNotFoundError(f"{root}: no class folders (expected ROOT/<class>/<image>)")
    return ([n for i, n in enumerate(names) if i % HELD_OUT_EVERY],
            [n for i, n in enumerate(names) if not i % HELD_OUT_EVERY])


def outlier_training_folder(root: str | Path, dest: str | Path, held_out: bool = False) -> Path:
    """DEST/<class> symlinks to ROOT's train classes of `outlier_split` only (made if missing), for
    `cifarlab train --outliers-data DEST`; `held_out`: to its held-out classes instead (for
    `cifarlab evaluate --ood DEST`). An entry of DEST that is not one of them is an error."""
    root, dest = Path(root).resolve(), Path(dest)
    train = outlier_split(root)[1 if held_out else 0]
    dest.mkdir(parents=True, exist_ok=True)
    stray = sorted(p.name for p in dest.iterdir() if p.name not in train or p.resolve() != root / p.name)
    if stray:
        raise FileExistsError(f"{dest}: holds {', '.join(stray[:5])}, not the training outlier classes "
                              f"of {root}; use an empty folder")
    for name in train:
        if not (dest / name).exists():
            (dest / name).symlink_to(root / name, target_is_directory=True)
    return dest


REAL_IN_CLASS_TRAIN = TINY_IMAGENET / "cifar-classes-train"  # may be trained on (its README)
REAL_COPIES = 3       # each real training photo is listed this many times: a fifth of the images
REAL_VAL_EVERY = 6    # every sixth real photo (sorted per class) is validation, never trained on
REAL_PREFIX = "tin"   # the names of the real photos in a camera folder start so (CIFAR-10's are numbers)
CIFAR_VAL_FRACTION = 0.02  # CIFAR-10 validation: the images `cifarlab train --data CIFAR10 --seed 0`
                           # holds out, so a model trained that way never saw them (--from)


def cifar_validation(cifar: str | Path = CIFAR10_JPEG) -> set[str]:
    """'<class>/<file>' of the CIFAR-10 training images that `train --data CIFAR --seed 0` with
    the recipes' val share carves as validation (the product's own draw, on the sorted folders)."""
    from cifarlab.data.sampling import seeded_sample

    files = [f"{cls.name}/{f.name}" for cls in sorted(d for d in (Path(cifar) / "train").iterdir() if d.is_dir())
             for f in sorted(cls.iterdir())]
    labels = np.unique([f.split("/")[0] for f in files], return_inverse=True)[1]
    held, _ = seeded_sample(len(files), CIFAR_VAL_FRACTION, 0, labels=labels)
    return {files[i] for i in held}


def camera_training_folder(dest: str | Path, cifar: str | Path = CIFAR10_JPEG,
                           real: str | Path = REAL_IN_CLASS_TRAIN) -> Path:
    """DEST/<train|val|test>/<class>/ of symlinks: CIFAR-10's training images and the real
    in-class photos of `real` (REAL_COPIES times over) for training, a held-out share of both for
    validation (CIFAR-10's: `cifar_validation`), CIFAR-10 test as test; made once (an existing DEST is used as it is)."""
    cifar, real, dest = Path(cifar).resolve(), Path(real).resolve(), Path(dest)
    if (dest / "test").exists():
        return dest
    held_out = cifar_validation(cifar)
    for cls in sorted(d.name for d in (cifar / "train").iterdir() if d.is_dir()):
        for split in ("train", "val"):
            (dest / split / cls).mkdir(parents=True, exist_ok=True)
        for f in sorted((cifar / "train" / cls).iterdir()):
            (dest / ("val" if f"{cls}/{f.name}" in held_out else "train") / cls / f.name).symlink_to(f)
        photos = sorted((real / cls).iterdir()) if (real / cls).is_dir() else []
        for i, f in enumerate(photos):
            names = ([f"val/{cls}/{REAL_PREFIX}_{f.name}"] if i % REAL_VAL_EVERY == 0 else
                     [f"train/{cls}/{REAL_PREFIX}{copy}_{f.name}" for copy in range(REAL_COPIES)])
            for name in names:
                (dest / name).symlink_to(f)
    (dest / "test").symlink_to(cifar / "test", target_is_directory=True)
    return dest


def validation_folder(camera_data: str | Path, dest: str | Path, real: bool, train_per_class: int = 3) -> Path:
    """DEST/val/<class>/: CAMERA_DATA's validation photos of one source (the real photos when
    `real`, else CIFAR-10's), and DEST/train/<class>/ a few CIFAR-10 training images so DEST reads as
    a dataset; for `cifarlab openset|calibrate --data DEST`. Made once."""
    source, dest = Path(camera_data), Path(dest)
    if (dest / "val").exists():
        return dest
    for class_dir in sorted(d for d in (source / "val").iterdir() if d.is_dir()):
        photos = [f for f in sorted(class_dir.iterdir()) if f.name.startswith(REAL_PREFIX) == real]
        training = sorted(f for f in (source / "train" / class_dir.name).iterdir()
                          if not f.name.startswith(REAL_PREFIX))[:train_per_class]
        for split, files in (("val", photos), ("train", training)):
            if files:
                (dest / split / class_dir.name).mkdir(parents=True, exist_ok=True)
            for f in files:
                (dest / split / class_dir.name / f.name).symlink_to(f.resolve())
    return dest


def untrained_fast_model(folder: Path, command: str) -> Path:
    """A `fast` CIFAR-10 network with untrained weights: right shapes and cost, chance accuracy."""
    from cifarlab.data import CIFAR10_CLASSES
    from cifarlab.models.io import save_model_file
    from cifarlab.models.metadata import ModelMetadata
    from cifarlab.models.registry import build_model

    mean = np.array([125.3, 123.0, 113.9], np.float32)
    std = np.array([63.0, 62.1, 66.7], np.float32)
    model = build_model("fast", (32, 32), 10, mean, std)
    return save_model_file(model, folder / "untrained-fast.keras", ModelMetadata(
        class_names=tuple(CIFAR10_CLASSES), input_size=(32, 32), mean=tuple(mean.tolist()),
        std=tuple(std.tolist()), model="fast", command=f"{command} (untrained)", version="bench",
        created="bench"))


def save_plot(fig, ax, path: Path, **axes) -> None:
    """Label `ax` (matplotlib `ax.set` keywords), add grid and legend, and save `fig` as a PNG."""
    ax.set(**axes)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def tiny_images(n: int, classes: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`--quick` data: n noisy uint8 images whose mean colour depends on their class."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    tint = np.random.default_rng(classes).integers(0, 160, (classes, 1, 1, 3))  # the same in every split
    images = rng.integers(0, 96, (n, size, size, 3)) + tint[labels]
    return images.astype(np.uint8), labels.astype(np.int64)


def tiny_dataset(class_names: list[str], per_split: dict[str, int], size: int = 32):
    """`--quick` data as a `Dataset` (what `train(..., dataset=)` takes)."""
    from cifarlab.data import Dataset, Split
    from cifarlab.data.dataset import fingerprint_arrays

    splits = {name: Split(*tiny_images(n, len(class_names), size, seed))
              for seed, (name, n) in enumerate(per_split.items())}
    return Dataset(list(class_names), splits, "synthetic", "synthetic (--quick)",
                   fingerprint_arrays(list(class_names), splits), "off")


def tiny_image_folder(root: Path, class_names: list[str], per_split: dict[str, int], size: int = 32) -> Path:
    """`--quick` data as ROOT/<split>/<class>/<i>.png; returns ROOT."""
    import cv2

    for seed, (split, n) in enumerate(per_split.items()):
        images, labels = tiny_images(n, len(class_names), size, seed)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / class_names[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i:04d}.png"), image[..., ::-1])
    return root
