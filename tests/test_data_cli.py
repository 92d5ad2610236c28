"""`cifarlab data info|download`: output, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys

import pytest
from helpers.cifar import make_cifar10_python
from helpers.images import SHAPE_CLASSES, write_image_folder

from cifarlab.cli.main import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_and_text(tmp_path, capsys):
    root = write_image_folder(tmp_path / "d", {"train": 6, "test": 3}, size=16)
    cache = str(tmp_path / "cache")
    code, out, _ = _run(capsys, "data", "info", "--data", str(root), "--cache-dir", cache, "--json")
    assert code == 0
    info = json.loads(out)
    assert info["format"] == "image-folder" and info["classes"] == SHAPE_CLASSES
    assert info["splits"] == {"train": 6, "test": 3}
    assert info["counts"]["train"] == {c: 2 for c in SHAPE_CLASSES}
    assert info["image_size"] == [32, 32] and info["cache"] == "miss"
    assert len(info["fingerprint"]) == 16

    code, out, _ = _run(capsys, "data", "info", "--data", str(root), "--cache-dir", cache,
                        "--image-size", "32")
    assert code == 0
    assert "cache:       hit" in out and "format:      image-folder" in out
    assert "triangle" in out and info["fingerprint"] in out


def test_info_cifar_archive(tmp_path, capsys):
    archive, _ = make_cifar10_python(tmp_path, archive=True)
    code, out, _ = _run(capsys, "data", "info", "--data", str(archive), "--no-cache", "--json")
    info = json.loads(out)
    assert code == 0 and info["format"] == "cifar10-python" and info["cache"] == "off"
    assert info["splits"] == {"train": 15, "test": 3} and info["classes"][0] == "airplane"


@pytest.mark.parametrize("argv,match", [
    (["data", "info", "--data", "{tmp}/missing"], "no such file or folder"),
    (["data", "info", "--data", "{tmp}/bad"], r"0000\.png: not a readable image"),
    (["data", "download", "--dir", "{tmp}/dl", "--url", "http://127.0.0.1:9/", "--timeout", "2"],
     "cannot connect"),
])
def test_errors_are_one_line_exit_2(tmp_path, capsys, argv, match):
    bad = write_image_folder(tmp_path / "bad", {"train": 3}, size=16)
    (bad / "train" / "circle" / "0000.png").write_bytes(b"garbage")
    code, out, err = _run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cifarlab data: error: ")
    assert "Traceback" not in err
    assert re.search(match, lines[0])


def test_error_in_a_real_process(tmp_path):
    env = {**os.environ, "CIFARLAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "cifarlab.cli.main", "data", "info", "--data",
                           str(tmp_path / "nowhere")], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "no such file or folder" in err[0] and "Traceback" not in proc.stderr


def test_download_command(tmp_path, capsys, server):  # noqa: F811 - fixture
    archive, _ = make_cifar10_python(tmp_path / "built", archive=True)
    blob = archive.read_bytes()
    server.routes["/m/cifar-10-python.tar.gz"] = (blob, None)
    dest = tmp_path / "dl"
    code, out, err = _run(capsys, "data", "download", "--dataset", "cifar10", "--dir", str(dest),
                          "--url", server.base + "/m", "--md5", hashlib.md5(blob).hexdigest())
    assert code == 0, err
    assert f"ready: {dest / 'cifar-10-batches-py'}" in out
    code, out, _ = _run(capsys, "data", "info", "--data", str(dest), "--json", "--no-cache")
    assert code == 0 and json.loads(out)["splits"]["train"] == 15

    # official checksum by default: the fake fails verification and leaves no file
    code, _, err = _run(capsys, "data", "download", "--dir", str(tmp_path / "dl2"),
                        "--url", server.base + "/m/cifar-10-python.tar.gz")
    assert code == 2 and "does not match the expected c58f3010" in err
    assert not (tmp_path / "dl2" / "cifar-10-python.tar.gz").exists()


def test_help_documents_every_option(capsys):
    for action in ("info", "download"):
        with pytest.raises(SystemExit):
            main(["data", action, "--help"])
        out = capsys.readouterr().out
        for option in (["--data", "--json", "--cache-dir", "--no-cache"] if action == "info" else
                       ["--dataset", "--dir", "--url", "--timeout", "--no-extract", "--md5"]):
            assert option in out
        assert "(default:" in out
