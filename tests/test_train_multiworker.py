"""Multi-worker training for real: two worker processes on this machine, one TF_CONFIG each."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from cifarlab.data import load_dataset
from cifarlab.inference import open_classifier


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_one_model_and_only_the_chief_writes(shapes_folder, tmp_path):
    cluster = [f"127.0.0.1:{port}" for port in free_ports(2)]
    outs = [tmp_path / "worker0", tmp_path / "worker1"]
    workers = []
    for index, out in enumerate(outs):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": cluster},
                                                      "task": {"type": "worker", "index": index}})}
        command = [sys.executable, "-m", "cifarlab.cli.main", "train", "--strategy", "multiworker",
                   "--data", str(shapes_folder), "--image-size", "32", "--model", "fast",
                   "--epochs", "2", "--batch-size", "32", "--lr", "0.05", "--out", str(out), "--quiet"]
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True))
    try:
        results = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (_, err) in zip(workers, results):
        assert worker.returncode == 0, err[-3000:]

    chief, other = outs
    assert (chief / "model.keras").is_file() and (chief / "summary.json").is_file()
    assert (chief / "checkpoint" / "last.keras").is_file()
    log = (chief / "log.csv").read_text().splitlines()
    assert len(log) == 3 and all(np.isfinite(float(v)) for v in log[-1].split(",")[1:])
    assert not other.exists(), sorted(other.rglob("*"))
    # The global batch of 32 was split 16 + 16 between the workers (DATA sharding): steps per
    # epoch count global batches, as on one machine.
    assert json.loads((chief / "summary.json").read_text())["epochs_run"] == 2
    clf = open_classifier(chief / "model.keras")
    test = load_dataset(shapes_folder, image_size=32).split("test")
    assert (clf.predict(test.images).argmax(1) == test.labels).mean() > 0.6
