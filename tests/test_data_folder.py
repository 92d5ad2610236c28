"""Image-folder datasets, the decoded-array cache and the validation split."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.images import SHAPE_CLASSES, write_image_folder
from PIL import Image

from cifarlab.data import load_dataset, with_validation
from cifarlab.data.cache import read_cache
from cifarlab.errors import CifarlabError

FORMATS = [".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"]


def _solid(path: Path, color, size=(20, 30), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


@pytest.fixture()
def mixed_folder(tmp_path) -> Path:
    """Two classes, every supported format, several image sizes, a val split, classes.txt."""
    root = tmp_path / "mixed"
    for split in ("train", "val", "test"):
        for i, ext in enumerate(FORMATS):
            _solid(root / split / "red" / f"{i}{ext}", (255, 0, 0), size=(10 + 7 * i, 40 - 3 * i))
            _solid(root / split / "blue" / f"{i}{ext}", (0, 0, 255), size=(64, 48))
    (root / "classes.txt").write_text("red\nblue\n")  # not alphabetical on purpose
    return root


def test_mixed_formats_sizes_and_class_order(mixed_folder):
    data = load_dataset(mixed_folder, image_size=16)
    assert data.format == "image-folder"
    assert data.class_names == ["red", "blue"]
    assert list(data.splits) == ["train", "val", "test"]
    for split in data.splits.values():
        assert split.images.shape == (12, 16, 16, 3) and split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64
        red = split.images[split.labels == 0].reshape(-1, 3).astype(int)
        blue = split.images[split.labels == 1].reshape(-1, 3).astype(int)
        assert len(red) and len(blue)
        # lossy formats (jpg, webp) are close, not exact
        assert (np.abs(red - [255, 0, 0]).max(axis=1) < 40).all()
        assert (np.abs(blue - [0, 0, 255]).max(axis=1) < 40).all()
    assert data.counts()["val"] == {"red": 6, "blue": 6}
    # with a val split present, with_validation keeps it
    assert with_validation(data, 0.5).splits["val"] is data.splits["val"]


def test_sorted_class_names_without_classes_txt(shapes_folder):
    data = load_dataset(shapes_folder, image_size=24)
    assert data.class_names == SHAPE_CLASSES
    assert data.split("train").images.shape == (300, 24, 24, 3)
    assert data.counts()["test"] == {c: 30 for c in SHAPE_CLASSES}


def test_transparent_and_grey_images(tmp_path):
    root = tmp_path / "d"
    _solid(root / "train" / "a" / "grey.png", 200, mode="L")
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(root / "train" / "a" / "clear.png")
    data = load_dataset(root, image_size=8, use_cache=False)
    images = data.split("train").images
    assert images.shape == (2, 8, 8, 3)
    assert (images[0] == 128).all()  # clear.png (sorted first): transparent -> mid-grey
    assert (images[1] == 200).all()  # grey.png: L mode -> equal RGB


def test_hidden_entries_are_ignored(tmp_path):
    root = write_image_folder(tmp_path / "d", {"train": 6}, size=16)
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "circle" / "._0000.png").write_bytes(b"AppleDouble junk")
    data = load_dataset(root, use_cache=False)
    assert data.class_names == SHAPE_CLASSES and len(data.split("train")) == 6


def test_errors(tmp_path):
    root = write_image_folder(tmp_path / "d", {"train": 6}, size=16)
    with pytest.raises(CifarlabError, match="no 'test' split"):
        load_dataset(root, use_cache=False).split("test")

    (root / "val").mkdir()
    with pytest.raises(CifarlabError, match="val: split is empty"):
        load_dataset(root, use_cache=False)
    (root / "val").rmdir()

    (root / "train" / "empty_class").mkdir()
    (root / "train" / "empty_class" / "notes.txt").write_text("no images here")
    with pytest.raises(CifarlabError, match="empty_class: class folder has no images"):
        load_dataset(root, use_cache=False)
    (root / "train" / "empty_class" / "notes.txt").unlink()
    (root / "train" / "empty_class").rmdir()

    (root / "classes.txt").write_text("circle\nsquare\n")
    with pytest.raises(CifarlabError, match=r"\['triangle'\] are not in classes.txt"):
        load_dataset(root, use_cache=False)
    (root / "classes.txt").write_text("circle\ncircle\nsquare\ntriangle\n")
    with pytest.raises(CifarlabError, match="lists a class twice"):
        load_dataset(root, use_cache=False)
    (root / "classes.txt").unlink()

    bad = root / "train" / "square" / "0001.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated PNG
    with pytest.raises(CifarlabError, match=r"0001\.png: not a readable image"):
        load_dataset(root, use_cache=False)
    bad.write_bytes(b"this is not an image at all")
    with pytest.raises(CifarlabError, match=r"0001\.png: not a readable image"):
        load_dataset(root, use_cache=False)

    only_val = tmp_path / "only_val"
    (only_val / "val" / "a").mkdir(parents=True)
    with pytest.raises(CifarlabError, match="needs a train/ or test/ folder"):
        load_dataset(only_val)


def test_cache_hit_miss_and_invalidation(tmp_path):
    root = write_image_folder(tmp_path / "d", {"train": 9, "test": 3}, size=16)
    cache = tmp_path / "cache"
    first = load_dataset(root, cache_dir=cache)
    second = load_dataset(root, cache_dir=cache)
    assert (first.cache, second.cache) == ("miss", "hit")
    assert second.fingerprint == first.fingerprint and second.class_names == first.class_names
    np.testing.assert_array_equal(second.split("train").images, first.split("train").images)

    # rewrite one image (same name, different pixels): miss, with the new content
    target = root / "test" / "circle" / "0000.png"
    cv2.imwrite(str(target), np.full((16, 16, 3), 7, np.uint8))
    changed = load_dataset(root, cache_dir=cache)
    assert changed.cache == "miss" and changed.fingerprint != first.fingerprint
    assert (changed.split("test").images[0] == 7).all()
    assert load_dataset(root, cache_dir=cache).cache == "hit"

    # add an image: miss, one more image
    cv2.imwrite(str(root / "train" / "square" / "new.png"), np.zeros((16, 16, 3), np.uint8))
    added = load_dataset(root, cache_dir=cache)
    assert added.cache == "miss" and len(added.split("train")) == 10
    assert len(list(cache.iterdir())) == 1  # the stale entry was replaced, not kept

    # other options have their own entry
    assert load_dataset(root, cache_dir=cache, image_size=8).cache == "miss"
    assert load_dataset(root, cache_dir=cache, use_cache=False).cache == "off"


def _damage(entry: Path, damage: str) -> None:
    header = entry / "header.json"
    arrays = json.loads(header.read_text())["arrays"]["train"]
    images, labels = entry / arrays["images"], entry / arrays["labels"]
    if damage == "garbage-header":
        header.write_text("not a cache header")
    elif damage == "truncated-images":
        images.write_bytes(images.read_bytes()[:-100])
    elif damage == "missing-labels":
        labels.unlink()
    elif damage == "foreign-labels":  # a readable array that does not fit the images
        np.save(labels, np.arange(3))
    else:  # a header of another cache version
        header.write_text(json.dumps({**json.loads(header.read_text()), "version": 2}))


@pytest.mark.parametrize("damage", ["garbage-header", "truncated-images", "missing-labels",
                                    "foreign-labels", "other-version"])
def test_damaged_cache_is_rebuilt(tmp_path, damage):
    root = write_image_folder(tmp_path / "d", {"train": 6}, size=16)
    cache = tmp_path / "cache"
    first = load_dataset(root, cache_dir=cache)
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert isinstance(first.split("train").images, np.memmap)  # read back from the entry
    expected = np.array(first.split("train").images)  # before the damage, which is in place
    _damage(entry, damage)
    assert read_cache(entry) is None
    rebuilt = load_dataset(root, cache_dir=cache)
    assert rebuilt.cache == "miss" and rebuilt.fingerprint == first.fingerprint
    np.testing.assert_array_equal(rebuilt.split("train").images, expected)
    assert read_cache(entry) is not None
    assert load_dataset(root, cache_dir=cache).cache == "hit"
    assert not [p for p in cache.rglob("*") if p.name.startswith(".tmp-")]


def test_cache_entry_is_npy_files_and_a_json_header(tmp_path):
    root = write_image_folder(tmp_path / "d", {"train": 6, "test": 3}, size=16)
    cache = tmp_path / "cache"
    data = load_dataset(root, cache_dir=cache)
    (entry,) = cache.iterdir()
    header = json.loads((entry / "header.json").read_text())
    assert header["meta"]["fingerprint"] == data.fingerprint
    assert sorted(p.name for p in entry.iterdir()) == sorted(
        ["header.json", *(f for files in header["arrays"].values() for f in files.values())])
    for name, files in header["arrays"].items():
        np.testing.assert_array_equal(np.load(entry / files["images"]), data.split(name).images)
        np.testing.assert_array_equal(np.load(entry / files["labels"]), data.split(name).labels)
    hit = load_dataset(root, cache_dir=cache).split("train")
    assert isinstance(hit.images, np.memmap) and hit.images.mode == "r"


def test_interrupted_cache_write_keeps_the_previous_entry(tmp_path, monkeypatch):
    """A crash before the header is written leaves the old entry, which is no longer current
    (the source changed) and so is decoded again: never a mix of old header and new arrays."""
    import cifarlab.data.cache as cache_module

    root = write_image_folder(tmp_path / "d", {"train": 6}, size=16)
    cache = tmp_path / "cache"
    first = load_dataset(root, cache_dir=cache)
    (entry,) = cache.iterdir()
    before = sorted(p.name for p in entry.iterdir())
    cv2.imwrite(str(root / "train" / "square" / "new.png"), np.zeros((16, 16, 3), np.uint8))

    def crash(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cache_module, "write_json_atomic", crash)
    changed = load_dataset(root, cache_dir=cache)
    assert changed.cache == "miss" and len(changed.split("train")) == 7
    meta, splits = read_cache(entry)  # the previous entry, intact
    assert meta["fingerprint"] == first.fingerprint and len(splits["train"]) == 6
    assert [p for p in entry.iterdir() if p.name not in before]  # the new arrays, unnamed
    monkeypatch.undo()
    assert load_dataset(root, cache_dir=cache).cache == "miss"  # still decoded again
    assert sorted(p.name for p in entry.iterdir()) != before  # the old arrays removed
    assert load_dataset(root, cache_dir=cache).cache == "hit"


def test_old_single_file_cache_is_ignored(tmp_path):
    root = write_image_folder(tmp_path / "d", {"train": 3}, size=16)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "d-0123456789abcdef.cache").write_bytes(b"CIFARLAB-CACHE\n" + bytes(64))
    assert load_dataset(root, cache_dir=cache).cache == "miss"
    assert load_dataset(root, cache_dir=cache).cache == "hit"


def test_unwritable_cache_only_warns(tmp_path, caplog):
    root = write_image_folder(tmp_path / "d", {"train": 3}, size=16)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    data = load_dataset(root, cache_dir=blocker / "cache")
    assert len(data.split("train")) == 3
    assert [r.levelname for r in caplog.records if "cannot write the dataset cache" in r.getMessage()] \
        == ["WARNING"]


def test_default_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "envcache"))
    root = write_image_folder(tmp_path / "d", {"train": 3}, size=16)
    assert load_dataset(root).cache == "miss"
    assert list((tmp_path / "envcache" / "datasets").iterdir())
    assert load_dataset(root).cache == "hit"


def test_with_validation_is_stratified_and_seeded(tmp_path):
    root = write_image_folder(tmp_path / "d", {"train": 60}, size=8)
    data = load_dataset(root, use_cache=False)
    a, b = with_validation(data, 0.2, seed=1), with_validation(data, 0.2, seed=1)
    c = with_validation(data, 0.2, seed=2)
    assert len(a.splits["val"]) == 12 and len(a.splits["train"]) == 48
    assert np.bincount(a.splits["val"].labels).tolist() == [4, 4, 4]  # stratified
    np.testing.assert_array_equal(a.splits["val"].images, b.splits["val"].images)
    assert not np.array_equal(a.splits["val"].images, c.splits["val"].images)
    assert "val" not in data.splits  # the input is untouched
    assert with_validation(data, 0) is data
    with pytest.raises(CifarlabError, match="between 0 and 1"):
        with_validation(data, 1.5)
    tiny = load_dataset(write_image_folder(tmp_path / "t", {"train": 3}, size=8), use_cache=False)
    with pytest.raises(CifarlabError, match="cannot carve"):
        with_validation(tiny, 0.3)


def test_symlinked_class_folder_changes_are_seen(tmp_path):
    real = write_image_folder(tmp_path / "real", {"train": 6}, size=16)
    root = tmp_path / "linked"
    (root / "train").mkdir(parents=True)
    for cls in SHAPE_CLASSES:
        os.symlink(real / "train" / cls, root / "train" / cls)
    cache = tmp_path / "cache"
    assert load_dataset(root, cache_dir=cache).cache == "miss"
    assert load_dataset(root, cache_dir=cache).cache == "hit"
    cv2.imwrite(str(real / "train" / "circle" / "extra.png"), np.zeros((16, 16, 3), np.uint8))
    again = load_dataset(root, cache_dir=cache)
    assert again.cache == "miss" and len(again.split("train")) == 7
