"""Benchmarks cannot silently break: every bench script runs with `--quick` and writes a record
with the common fields of bench/record.py, and never touches bench/results/ doing so."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
# A bench script is a bench/*.py file that runs as a program; helper modules (record.py,
# _common.py) have no __main__ block.
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if '__name__ == "__main__"' in p.read_text())
COMMON = {"machine", "command", "load", "date", "quick", "results"}
MACHINE = {"cpu", "cores", "memory_gb", "python", "tensorflow", "keras", "cpu_flags"}


def load_record_module():
    return load_bench_module("record")


def load_bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def check_common_fields(record: dict, script: str) -> None:
    assert COMMON <= set(record), f"missing {COMMON - set(record)}"
    assert MACHINE <= set(record["machine"]), f"machine lacks {MACHINE - set(record['machine'])}"
    assert {"avx512_bf16", "amx_bf16"} <= set(record["machine"]["cpu_flags"])
    assert script in record["command"] and "--quick" in record["command"]
    assert set(record["load"]) == {"start", "end", "heavy_processes_at_start"}
    assert set(record["load"]["start"]) == {"1min", "5min", "15min"}
    assert isinstance(record["load"]["heavy_processes_at_start"], list)
    assert record["quick"] is True
    assert isinstance(record["results"], dict) and record["results"]


def test_scripts_are_found():
    names = {p.name for p in SCRIPTS}
    assert {"train_throughput.py", "time_to_accuracy.py", "transfer.py"} <= names
    assert not names & {"record.py", "_common.py"}


@pytest.mark.slow
@pytest.mark.timeout(900)  # a quick run is seconds to a few minutes, more while others use the CPU
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_quick_run_writes_a_common_record(script: Path, tmp_path: Path):
    records = tmp_path / "records"
    env = {**os.environ, "CIFARLAB_BENCH_QUICK_DIR": str(records), "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.time()
    proc = subprocess.run([sys.executable, str(script), "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=870)
    assert proc.returncode == 0, f"{script.name} --quick failed:\n{proc.stderr[-3000:]}"
    written = sorted(records.glob("*.json"))
    assert written, f"{script.name} --quick wrote no record to $CIFARLAB_BENCH_QUICK_DIR"
    for path in written:
        check_common_fields(json.loads(path.read_text()), script.name)
        real = RESULTS / path.name
        assert not real.exists() or real.stat().st_mtime < started, f"--quick overwrote {real}"


def test_record_has_the_common_fields_and_reads_old_records(tmp_path, monkeypatch):
    record = load_record_module()
    monkeypatch.setattr(record, "SAMPLE_SECONDS", 0.05)
    run = record.begin(quick=True)
    path = run.write(run.path("x.json"), {"images_per_second": 1.0})
    assert path.parent == record.results_dir(True) and record.results_dir(False) == RESULTS
    written = json.loads(path.read_text())
    assert COMMON <= set(written) and MACHINE <= set(written["machine"])
    assert written["machine"]["cores"] == os.cpu_count()
    assert record.results_of(written) == {"images_per_second": 1.0}
    old = {"command": "python bench/x.py", "machine": {"cpus": 2}, "epochs": [1]}  # before record.py
    assert record.results_of(old) is old


def test_outlier_split_holds_out_every_third_class_and_training_sees_only_the_rest(tmp_path):
    common = load_bench_module("_common")
    root = tmp_path / "other-classes"
    for name in ["f", "b", "a", "e", "d", "c", "g", ".hidden"]:
        (root / name).mkdir(parents=True)
    train, held_out = common.outlier_split(root)
    assert held_out == ["a", "d", "g"] and train == ["b", "c", "e", "f"]
    dest = common.outlier_training_folder(root, tmp_path / "outliers")
    assert sorted(p.name for p in dest.iterdir()) == train
    assert all((dest / name).is_symlink() and (dest / name).resolve() == root.resolve() / name for name in train)
    assert common.outlier_training_folder(root, dest) == dest  # again: unchanged
    (dest / "a").symlink_to(root / "a")
    with pytest.raises(FileExistsError, match="a"):
        common.outlier_training_folder(root, dest)


def test_the_camera_folders_cifar_validation_is_what_training_on_cifar_holds_out(tmp_path):
    """A model trained on CIFAR-10 with --seed 0 (the shipped model's parent) never saw the camera
    folders' CIFAR-10 validation images, on which the shipped model is calibrated."""
    from helpers.images import write_image_folder

    from cifarlab.data import load_dataset
    from cifarlab.data.dataset import with_validation
    from cifarlab.data.images import read_image_rgb
    from cifarlab.training.recipes import get_recipe

    common = load_bench_module("_common")
    assert common.CIFAR_VAL_FRACTION == get_recipe("fast-robust-wide").values["val_fraction"]
    root = write_image_folder(tmp_path / "cifar", {"train": 600, "test": 3}, size=32)
    held_out = with_validation(load_dataset(root, use_cache=False), common.CIFAR_VAL_FRACTION, seed=0)
    names = sorted(common.cifar_validation(root))
    assert len(names) == len(held_out.split("val")) == 12
    np.testing.assert_array_equal(np.stack([read_image_rgb(root / "train" / n) for n in names]),
                                  held_out.split("val").images)


def test_quick_records_go_to_the_quick_folder(tmp_path, monkeypatch):
    record = load_record_module()
    monkeypatch.setenv(record.QUICK_DIR_ENV, str(tmp_path))
    assert record.results_dir(True) == tmp_path


def test_heavy_processes_lists_a_busy_process(monkeypatch):
    record = load_record_module()
    monkeypatch.setattr(record, "HEAVY_CPU_PERCENT", 1.0)  # the machine may be shared: any real use
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\n"
                                "while time.time() < end: pass", "spinner-for-test"])
    try:
        time.sleep(0.3)
        heavy = record.heavy_processes()
    finally:
        spinner.kill()
        spinner.wait()
    mine = [p for p in heavy if p["pid"] == spinner.pid]
    assert mine and "spinner-for-test" in mine[0]["command"] and mine[0]["cpu_percent"] > 1.0
    assert all(p["pid"] != os.getpid() for p in heavy)
