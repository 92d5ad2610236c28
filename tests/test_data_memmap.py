"""Datasets that stay on disk: memory-mapped cache entries, splits as row selections of them,
the one seeded draw, and training batches read through the map."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from cifarlab.data import Dataset, Split, seeded_sample, with_validation
from cifarlab.data.cache import read_cache, write_cache
from cifarlab.data.dataset import Rows
from cifarlab.data.stats import channel_stats


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)


@pytest.fixture()
def mapped(tmp_path) -> Dataset:
    """A 60-image, 3-class dataset read back from a cache entry (images memory-mapped)."""
    labels = np.arange(60) % 3
    write_cache(tmp_path / "entry", {"classes": ["a", "b", "c"], "fingerprint": "f",
                                     "source_key": "k"}, {"train": Split(_images(60), labels)})
    meta, splits = read_cache(tmp_path / "entry")
    return Dataset(meta["classes"], splits, "synthetic", "test", meta["fingerprint"], "hit")


def test_select_and_rows_read_only_the_chosen_rows():
    base = _images(10)
    split = Split(base, np.arange(10) % 2)
    assert split.rows is base and split.images is base
    odd = split.select(np.array([1, 3, 5, 7, 9]))
    assert odd.stored is base and odd.index.tolist() == [1, 3, 5, 7, 9] and len(odd) == 5
    assert odd.labels.tolist() == [1] * 5 and odd.image_size == (8, 8)
    inner = odd.select(np.array([0, 4]))  # a selection of a selection: rows of the same array
    assert inner.stored is base and inner.index.tolist() == [1, 9]
    rows = inner.rows
    assert isinstance(rows, Rows) and len(rows) == 2 and rows.shape == (2, 8, 8, 3)
    assert rows.dtype == np.uint8 and rows.ndim == 4
    np.testing.assert_array_equal(rows[:], base[[1, 9]])
    np.testing.assert_array_equal(rows[[1, 0]], base[[9, 1]])
    np.testing.assert_array_equal(rows[1], base[9])
    np.testing.assert_array_equal(np.asarray(rows), base[[1, 9]])
    np.testing.assert_array_equal(inner.images, base[[1, 9]])
    assert inner.images is inner.images  # made once, then kept


def test_validation_split_of_a_memory_map_copies_no_pixels(mapped):
    stored = mapped.split("train").stored
    assert isinstance(stored, np.memmap) and not stored.flags.writeable
    split = with_validation(mapped, 0.2, seed=1)
    train, val = split.splits["train"], split.splits["val"]
    assert train.stored is stored and val.stored is stored
    assert sorted([*train.index, *val.index]) == list(range(60)) and len(val) == 12
    assert np.bincount(val.labels).tolist() == [4, 4, 4]
    np.testing.assert_array_equal(val.rows[:], np.asarray(stored)[val.index])
    np.testing.assert_array_equal(train.labels, mapped.split("train").labels[train.index])


def test_channel_stats_in_chunks_of_rows(mapped):
    split = with_validation(mapped, 0.2, seed=0).splits["train"]
    in_memory = np.array(split.rows)
    np.testing.assert_allclose(channel_stats(split.rows), channel_stats(in_memory), rtol=1e-6)
    pixels = in_memory.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(channel_stats(in_memory)[0], pixels.mean(0), rtol=1e-5)
    np.testing.assert_allclose(channel_stats(in_memory)[1], pixels.std(0), rtol=1e-5)


def test_seeded_sample_is_train_test_split_sorted():
    labels = np.arange(50) % 5
    drawn, rest = seeded_sample(50, 0.3, seed=4, labels=labels)
    theirs_rest, theirs_drawn = train_test_split(np.arange(50), test_size=0.3, random_state=4,
                                                 stratify=labels)
    np.testing.assert_array_equal(drawn, np.sort(theirs_drawn))
    np.testing.assert_array_equal(rest, np.sort(theirs_rest))
    assert len(drawn) == 15 and np.bincount(labels[drawn]).tolist() == [3] * 5
    assert len(seeded_sample(10, 0.25, seed=0)[0]) == 3  # a fraction rounds up
    again, _ = seeded_sample(50, 0.3, seed=4, labels=labels)
    other, _ = seeded_sample(50, 0.3, seed=5, labels=labels)
    np.testing.assert_array_equal(drawn, again)
    assert not np.array_equal(drawn, other)
    items = np.arange(100, 120)
    ordered, left = seeded_sample(items, 5, seed=2, sort=False)
    np.testing.assert_array_equal(ordered, train_test_split(items, test_size=5, random_state=2)[1])
    assert sorted([*ordered, *left]) == items.tolist() and list(ordered) != sorted(ordered)
    with pytest.raises(ValueError):
        seeded_sample(6, 2, seed=0, labels=np.arange(6) % 3)  # fewer drawn than classes


def test_training_batches_read_through_the_map_are_the_in_memory_ones(mapped):
    from cifarlab.training.pipeline import Augment, eval_dataset, train_dataset

    data = with_validation(mapped, 0.2, seed=0)
    train, val = data.splits["train"], data.splits["val"]
    augment = Augment(flip=True, translate=1, cutout=2)
    copy = dataclasses.replace(train, stored=np.array(train.rows), index=None)
    for (x, y), (x_mem, y_mem) in zip(train_dataset(train.rows, train.labels, 3, 16, 7, 0, 2, augment),
                                      train_dataset(copy.rows, copy.labels, 3, 16, 7, 0, 2, augment)):
        np.testing.assert_array_equal(x.numpy(), x_mem.numpy())
        np.testing.assert_array_equal(y.numpy(), y_mem.numpy())
    batches = list(eval_dataset(val.rows, val.labels, 3, 5))
    assert [len(x) for x, _ in batches] == [5, 5, 2]
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in batches]), val.images)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in batches]).argmax(1), val.labels)
