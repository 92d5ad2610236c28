"""ROOT/<class>/<image> folders: detection, the stratified seeded split, split records, class
weights, the cache, `data info`, and the ROOT/<split>/<class>/<image> layout left as it was."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.images import SHAPE_CLASSES, shapes_images, write_image_folder

from cifarlab.cli.main import main
from cifarlab.data import (
    CLASS_FOLDERS,
    SPLIT_FOLDERS,
    class_weights,
    load_dataset,
    read_split_record,
    save_split_record,
    with_validation,
)
from cifarlab.errors import CifarlabError


def write_flat(root: Path, per_class: dict[str, int], size: int = 16, seed: int = 0,
               start: int = 0) -> Path:
    """ROOT/<class>/<i>.png, generated images (distinct noise per file); returns ROOT."""
    for c, (cls, n) in enumerate(per_class.items()):
        images, _ = shapes_images(n, size, seed=seed * 100 + c)
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            cv2.imwrite(str(root / cls / f"{start + i:04d}.png"), image)
    return root


def _check_consistent(data) -> None:
    """split_files line up with the arrays: same length, label = class folder of the file,
    in class order then by name; no file in two splits."""
    seen: set[str] = set()
    for name, split in data.splits.items():
        files = data.split_files[name]
        assert len(files) == len(split)
        assert files == sorted(files, key=lambda f: (data.class_names.index(f.split("/")[0]), f))
        folders = [f.split("/")[0] for f in files]
        assert [data.class_names[label] for label in split.labels] == folders
        assert not seen & set(files)
        seen |= set(files)


def test_flat_layout_loads(tmp_path):
    root = write_flat(tmp_path / "flat", {"cat": 20, "dog": 20, "fox": 20})
    (root / ".ipynb_checkpoints").mkdir()  # hidden clutter is ignored
    (root / "README.txt").write_text("loose non-image files in ROOT are ignored")
    data = load_dataset(root, image_size=16, use_cache=False)
    assert data.format == "image-folder" and data.layout == CLASS_FOLDERS
    assert data.class_names == ["cat", "dog", "fox"]
    assert list(data.splits) == ["train", "val", "test"]
    # 20 per class: floor(0.15 * 20) = 3 to val and to test, 14 to train
    assert data.counts() == {"train": {"cat": 14, "dog": 14, "fox": 14},
                             "val": {"cat": 3, "dog": 3, "fox": 3},
                             "test": {"cat": 3, "dog": 3, "fox": 3}}
    for split in data.splits.values():
        assert split.images.shape[1:] == (16, 16, 3) and split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64
    _check_consistent(data)
    assert sum(len(f) for f in data.split_files.values()) == 60
    # the pixels are the file's: first test image equals that file decoded
    first = root / data.split_files["test"][0]
    expected = cv2.cvtColor(cv2.imread(str(first)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(data.splits["test"].images[0], expected)
    # with a val split present, with_validation leaves it alone
    assert with_validation(data, 0.2) is data
    assert data.split_info["method"] == "seeded" and data.split_info["seed"] == 0


def test_split_is_stratified_with_a_small_data_rule(tmp_path):
    root = write_flat(tmp_path / "flat", {"big": 40, "mid": 7, "tiny": 3})
    data = load_dataset(root, use_cache=False)
    counts = data.counts()
    # every split has every class: 40 -> 28/6/6, 7 -> 5/1/1, 3 -> 1/1/1
    assert counts["train"] == {"big": 28, "mid": 5, "tiny": 1}
    assert counts["val"] == {"big": 6, "mid": 1, "tiny": 1}
    assert counts["test"] == {"big": 6, "mid": 1, "tiny": 1}
    _check_consistent(data)


def test_ten_images_of_two_classes(tmp_path):
    root = write_flat(tmp_path / "flat", {"no": 10, "yes": 10})
    data = load_dataset(root, use_cache=False)
    assert data.counts() == {"train": {"no": 8, "yes": 8}, "val": {"no": 1, "yes": 1},
                             "test": {"no": 1, "yes": 1}}
    assert data.split("val") and data.split("test")


def test_split_is_seeded(tmp_path):
    root = write_flat(tmp_path / "flat", {"a": 30, "b": 30})
    cache = tmp_path / "cache"
    first = load_dataset(root, cache_dir=cache)
    again = load_dataset(root, cache_dir=cache)
    fresh = load_dataset(root, use_cache=False)
    other = load_dataset(root, cache_dir=cache, split_seed=1)
    assert (first.cache, again.cache, fresh.cache, other.cache) == ("miss", "hit", "off", "hit")
    for same in (again, fresh):
        assert same.split_files == first.split_files and same.fingerprint == first.fingerprint
        for name in first.splits:
            np.testing.assert_array_equal(same.splits[name].images, first.splits[name].images)
            np.testing.assert_array_equal(same.splits[name].labels, first.splits[name].labels)
    # another seed: another split (same sizes), another fingerprint, the same cache entry
    assert other.split_files["test"] != first.split_files["test"]
    assert other.split_files["val"] != first.split_files["val"]
    assert {k: len(v) for k, v in other.split_files.items()} == \
        {k: len(v) for k, v in first.split_files.items()}
    assert other.fingerprint != first.fingerprint
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 1
    assert load_dataset(root, cache_dir=cache, split_seed=1).split_files == other.split_files
    with pytest.raises(CifarlabError, match="split seed must be a whole number"):
        load_dataset(root, cache_dir=cache, split_seed=-1)


def test_adding_images_to_one_class_keeps_the_others_split(tmp_path):
    root = write_flat(tmp_path / "flat", {"a": 20, "b": 20})
    before = load_dataset(root, use_cache=False)
    write_flat(root, {"b": 5}, seed=7, start=100)
    after = load_dataset(root, use_cache=False)
    for name in ("val", "test"):
        assert [f for f in after.split_files[name] if f.startswith("a/")] == \
            [f for f in before.split_files[name] if f.startswith("a/")]


def test_recorded_split_is_reused_after_adding_files(tmp_path):
    root = write_flat(tmp_path / "flat", {"a": 20, "b": 20})
    cache = tmp_path / "cache"
    first = load_dataset(root, cache_dir=cache, split_seed=3)
    record_path = save_split_record(first, tmp_path / "run" / "splits.json")
    record = json.loads(record_path.read_text())
    assert record["files"] == first.split_files and record["seed"] == 3
    assert record["counts"] == {"train": 28, "val": 6, "test": 6}
    assert read_split_record(record_path)["files"] == first.split_files

    write_flat(root, {"a": 4, "b": 6}, seed=9, start=500)  # 10 new images
    (root / first.split_files["train"][0]).unlink()  # and one recorded image removed
    reused = load_dataset(root, cache_dir=cache, split_record=record_path)
    assert reused.cache == "miss"  # the folder changed
    assert reused.split_files["val"] == first.split_files["val"]
    assert reused.split_files["test"] == first.split_files["test"]
    new = {f for f in reused.split_files["train"] if int(Path(f).stem) >= 500}
    assert len(new) == 10 and len(reused.split_files["train"]) == 28 - 1 + 10
    assert set(reused.split_files["train"]) == (set(first.split_files["train"][1:]) | new)
    assert reused.split_info["method"] == "record"
    assert (reused.split_info["added_to_train"], reused.split_info["missing"]) == (10, 1)
    _check_consistent(reused)
    # the seed is ignored when a record is given; a fresh seeded draw would differ
    assert load_dataset(root, cache_dir=cache, split_record=record_path,
                        split_seed=99).split_files == reused.split_files
    # the record as a dict (Dataset.split_record()) or a bare {split: [files]} works too
    from_dict = load_dataset(root, cache_dir=cache, split_record=first.split_record())
    bare = load_dataset(root, cache_dir=cache, split_record=dict(first.split_files))
    assert from_dict.split_files == bare.split_files == reused.split_files
    assert from_dict.cache == "hit"
    # the updated record (new files now listed in train) reproduces itself
    again = load_dataset(root, cache_dir=cache, split_record=reused.split_record())
    assert again.split_files == reused.split_files and again.split_info["added_to_train"] == 0


def test_bad_split_records(tmp_path):
    root = write_flat(tmp_path / "flat", {"a": 5, "b": 5})
    with pytest.raises(CifarlabError, match="no such split record"):
        load_dataset(root, split_record=tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CifarlabError, match="cannot read the split record"):
        load_dataset(root, split_record=tmp_path / "bad.json")
    with pytest.raises(CifarlabError, match="not a split record"):
        load_dataset(root, split_record={"files": {"holdout": ["a/0000.png"]}})
    with pytest.raises(CifarlabError, match="in both 'train' and 'test'"):
        load_dataset(root, split_record={"train": ["a/0000.png"], "test": ["a/0000.png"]})
    with pytest.raises(CifarlabError, match="belongs to another dataset"):
        load_dataset(root, split_record={"train": ["x/1.png"], "test": ["y/2.png"]})
    nested = write_image_folder(tmp_path / "nested", {"train": 6}, size=16)
    with pytest.raises(CifarlabError, match="applies only to ROOT/<class>/<image>"):
        load_dataset(nested, split_record={"train": ["circle/0000.png"]})


def test_too_few_images_and_other_malformed_folders(tmp_path):
    root = write_flat(tmp_path / "few", {"a": 10, "b": 2, "c": 1})
    with pytest.raises(CifarlabError, match=r"'b' has 2, 'c' has 1; .*needs at least 3 images "
                                            r"per class"):
        load_dataset(root, use_cache=False)

    one = write_flat(tmp_path / "one", {"only": 10})
    with pytest.raises(CifarlabError, match="needs at least 2"):
        load_dataset(one, use_cache=False)

    loose = tmp_path / "loose"
    loose.mkdir()
    for i in range(3):
        cv2.imwrite(str(loose / f"{i}.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(CifarlabError, match=r"holds images directly.*ROOT/<class>/<image>.*"
                                            r"ROOT/<train\|val\|test>/<class>/<image>"):
        load_dataset(loose, use_cache=False)

    deep = tmp_path / "deep"
    write_flat(deep / "inner", {"a": 3, "b": 3})  # one level too deep
    with pytest.raises(CifarlabError, match=r"none of its folders \(inner\) holds images"):
        load_dataset(deep, use_cache=False)

    empty_class = write_flat(tmp_path / "empty", {"a": 5, "b": 5})
    (empty_class / "c").mkdir()
    with pytest.raises(CifarlabError, match="c: class folder has no images"):
        load_dataset(empty_class, use_cache=False)


def test_classes_txt_sets_the_order(tmp_path):
    root = write_flat(tmp_path / "flat", {"apple": 10, "zebra": 12, "mango": 11})
    (root / "classes.txt").write_text("zebra\napple\nmango\n")
    data = load_dataset(root, use_cache=False)
    assert data.class_names == ["zebra", "apple", "mango"]
    _check_consistent(data)  # labels follow classes.txt's order
    assert data.counts()["train"] == {"zebra": 10, "apple": 8, "mango": 9}

    (root / "classes.txt").write_text("zebra\napple\n")
    with pytest.raises(CifarlabError, match=r"\['mango'\] are not in classes.txt"):
        load_dataset(root, use_cache=False)
    (root / "classes.txt").write_text("zebra\napple\nmango\nkiwi\n")  # kiwi has no folder
    with pytest.raises(CifarlabError, match="'kiwi' has 0"):
        load_dataset(root, use_cache=False)


def test_class_weights_for_an_imbalanced_set(tmp_path):
    weights = class_weights(np.array([0] * 30 + [1] * 10), 2)
    assert weights == pytest.approx({0: 40 / 60, 1: 40 / 20})
    # a class with no images gets 1.0 (never applied); every key is there for Keras
    assert class_weights(np.array([0, 0, 0, 2]), 3) == pytest.approx({0: 4 / 6, 1: 1.0, 2: 2.0})
    with pytest.raises(CifarlabError, match="labels must be in 0..1"):
        class_weights(np.array([0, 2]), 2)
    with pytest.raises(CifarlabError, match="no labels"):
        class_weights(np.array([], dtype=np.int64), 2)

    root = write_flat(tmp_path / "flat", {"common": 40, "rare": 10})
    data = load_dataset(root, use_cache=False)
    train = data.split("train")
    assert data.counts()["train"] == {"common": 28, "rare": 8}
    per_class = data.class_weights()
    assert per_class == pytest.approx({0: 36 / (2 * 28), 1: 36 / (2 * 8)})
    # balanced: each class adds the same total weight, the mean weight per image is 1
    per_image = np.array([per_class[int(label)] for label in train.labels])
    assert per_image.mean() == pytest.approx(1.0)
    assert per_image[train.labels == 0].sum() == pytest.approx(per_image[train.labels == 1].sum())


def test_flat_cache_invalidation(tmp_path):
    root = write_flat(tmp_path / "flat", {"a": 10, "b": 10})
    cache = tmp_path / "cache"
    assert load_dataset(root, cache_dir=cache).cache == "miss"
    assert load_dataset(root, cache_dir=cache).cache == "hit"
    write_flat(root, {"a": 1}, seed=5, start=50)
    added = load_dataset(root, cache_dir=cache)
    assert added.cache == "miss" and sum(len(s) for s in added.splits.values()) == 21
    assert load_dataset(root, cache_dir=cache, image_size=8).cache == "miss"


def test_nested_layout_is_unchanged(tmp_path):
    root = write_image_folder(tmp_path / "nested", {"train": 9, "test": 3}, size=16)
    cache = tmp_path / "cache"
    data = load_dataset(root, cache_dir=cache)
    hit = load_dataset(root, cache_dir=cache, split_seed=5)  # the seed does not apply
    assert (data.cache, hit.cache) == ("miss", "hit")
    for d in (data, hit):
        assert d.format == "image-folder" and d.layout == SPLIT_FOLDERS
        assert d.class_names == SHAPE_CLASSES and list(d.splits) == ["train", "test"]
        assert d.counts()["train"] == {c: 3 for c in SHAPE_CLASSES}
        assert d.split_files == {} and d.split_record() is None
    assert hit.fingerprint == data.fingerprint
    with pytest.raises(CifarlabError, match="has no drawn split to record"):
        save_split_record(data, tmp_path / "splits.json")
    # a folder named train/ makes it the split layout even next to class-like folders
    write_flat(root, {"stray": 3})
    assert load_dataset(root, use_cache=False).layout == SPLIT_FOLDERS


def test_data_info_shows_layout_and_split_sizes(tmp_path, capsys):
    root = write_flat(tmp_path / "flat", {"cat": 10, "dog": 20})
    cache = str(tmp_path / "cache")
    assert main(["data", "info", "--data", str(root), "--cache-dir", cache]) == 0
    out = capsys.readouterr().out
    assert "layout:      class-folders (ROOT/<class>/<image>)" in out
    assert "seed 0" in out
    assert "splits:      train 22, val 4, test 4" in out
    assert main(["data", "info", "--data", str(root), "--cache-dir", cache, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == CLASS_FOLDERS and info["cache"] == "hit"
    assert info["splits"] == {"train": 22, "val": 4, "test": 4}
    assert info["counts"]["test"] == {"cat": 1, "dog": 3}
    assert info["split_info"]["method"] == "seeded"

    loose = tmp_path / "loose"
    loose.mkdir()
    cv2.imwrite(str(loose / "0.png"), np.zeros((8, 8, 3), np.uint8))
    assert main(["data", "info", "--data", str(loose)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds images directly" in err[0]
