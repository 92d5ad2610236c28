"""The typed model contract: one reader/writer per place it is stored, versions handled clearly."""

from __future__ import annotations

import json
import zipfile

import pytest

from cifarlab.errors import CifarlabError
from cifarlab.models.io import METADATA_ENTRY, read_metadata, save_model_file
from cifarlab.models.metadata import FORMAT_VERSION, ModelMetadata, read_sidecar, write_sidecar

LEGACY = {"format": "cifarlab-model/1", "class_names": ["a", "b"], "input_size": [32, 32],
          "mean": [1, 2, 3], "std": [4, 5, 6], "model": "seed", "command": "cifarlab train",
          "version": "0.1.0", "val_metrics": {"accuracy": 0.5}, "created": "2026-11-01"}


def rewrite_entry(path, data: dict):
    """A copy of a .keras file whose metadata entry is replaced by `data`."""
    out = path.with_name("edited-" + path.name)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename != METADATA_ENTRY:
                dst.writestr(item, src.read(item))
        dst.writestr(METADATA_ENTRY, json.dumps(data))
    return out


def test_round_trip_through_every_store(tmp_path):
    meta = ModelMetadata.from_dict(LEGACY)
    assert meta.model == "baseline" and meta.format_version == FORMAT_VERSION  # seed -> baseline
    assert meta.class_names == ("a", "b") and meta.input_size == (32, 32) and meta.num_classes == 2
    assert ModelMetadata.from_json(meta.to_json()) == meta
    target = tmp_path / "m.tflite"
    write_sidecar(target, meta)
    assert read_sidecar(target) == meta
    assert read_sidecar(tmp_path / "other.tflite") is None


def test_model_files_of_format_1_still_load(tiny_model, tmp_path):
    legacy = rewrite_entry(tiny_model, LEGACY)
    meta = read_metadata(legacy)
    assert meta.class_names == ("a", "b") and meta.val_metrics == {"accuracy": 0.5}


def test_the_shipped_model_reads_as_a_typed_contract():
    from cifarlab.models.io import default_model_path

    path = default_model_path()
    if not path.is_file():
        pytest.skip("no shipped model")
    meta = read_metadata(path)
    assert meta.num_classes == 10 and meta.input_size == (32, 32) and meta.model == "fast"


def test_a_newer_format_is_a_clear_error(tiny_model):
    newer = rewrite_entry(tiny_model, {**LEGACY, "format_version": FORMAT_VERSION + 1})
    with pytest.raises(CifarlabError, match="newer cifarlab.*upgrade"):
        read_metadata(newer)


@pytest.mark.parametrize("broken", [{"format": "something/9", "class_names": ["a"], "input_size": [8, 8]},
                                    {"format_version": 2, "input_size": [8, 8]},
                                    {"format_version": 2, "class_names": [], "input_size": [8, 8]}])
def test_foreign_or_empty_metadata_is_refused(broken):
    with pytest.raises(CifarlabError):
        ModelMetadata.from_dict(broken, "x.keras")


def test_saved_files_carry_the_current_version(tiny_model, tmp_path):
    import keras

    model = keras.saving.load_model(tiny_model, safe_mode=True)
    meta = read_metadata(tiny_model)
    out = save_model_file(model, tmp_path / "again.keras", meta)
    with zipfile.ZipFile(out) as archive:
        stored = json.loads(archive.read(METADATA_ENTRY))
    assert stored["format_version"] == FORMAT_VERSION and read_metadata(out) == meta
