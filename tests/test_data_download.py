"""Safe archive extraction, verified downloads from a local HTTP server, and dataset names
(`--data cifar10`, the default) downloading the official archive into the cache."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from pathlib import Path

import pytest
from helpers.cifar import make_cifar10_python

from cifarlab.cli.main import main
from cifarlab.data import load_dataset
from cifarlab.data.archive import safe_extract
from cifarlab.data.cache import cache_root
from cifarlab.data.download import DATASETS, download, resolve_url
from cifarlab.errors import CifarlabError


def _tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"evil") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            if member.isfile():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return path


def _info(name: str, kind=tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("members,match", [
    ([_info("ok/a.txt"), _info("../escape.txt")],
     r"member '../escape.txt' refused: it would be written outside the destination \('..'\)"),
    ([_info("ok/../../escape.txt")], "'ok/../../escape.txt' refused: .* outside the destination"),
    ([_info("ok/link", tarfile.SYMTYPE, "/etc/passwd")],
     "'ok/link' refused: it is a link to an absolute path"),
    ([_info("ok/link", tarfile.SYMTYPE, "../../etc/passwd")],
     "'ok/link' refused: it is a link pointing outside the destination"),
    ([_info("ok/a.txt"), _info("ok/hard", tarfile.LNKTYPE, "../outside.txt")],
     "'ok/hard' refused: it is a link pointing outside the destination"),
    ([_info("ok/dev", tarfile.CHRTYPE)], "'ok/dev' refused: it is a device file or FIFO"),
    ([_info("ok/fifo", tarfile.FIFOTYPE)], "'ok/fifo' refused: it is a device file or FIFO"),
], ids=["dotdot", "nested-dotdot", "symlink", "relative-symlink", "hardlink", "chardev", "fifo"])
def test_malicious_archives_are_refused(tmp_path, members, match):
    archive = _tar(tmp_path / "evil.tar.gz", members)
    dest = tmp_path / "work" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(CifarlabError, match=match):
        safe_extract(archive, dest)
    assert _tree(dest) == set()  # nothing extracted, no staging left
    assert _tree(tmp_path / "work") == {"dest"}
    assert not Path("/tmp/cifarlab-absolute-escape.txt").exists()


def test_contained_members_are_extracted_inside(tmp_path):
    """tarfile's data filter strips a leading "/" and allows a hard link to a member: both stay
    inside the destination."""
    archive = _tar(tmp_path / "odd.tar.gz", [_info("/tmp/cifarlab-absolute-escape.txt"),
                                             _info("ok/a.txt"),
                                             _info("ok/hard", tarfile.LNKTYPE, "ok/a.txt")])
    dest = tmp_path / "dest"
    assert safe_extract(archive, dest) == [dest / "ok", dest / "tmp"]
    assert _tree(dest) == {"ok", "ok/a.txt", "ok/hard", "tmp", "tmp/cifarlab-absolute-escape.txt"}
    assert (dest / "ok" / "hard").read_bytes() == b"evil" and not (dest / "ok" / "hard").is_symlink()
    assert not Path("/tmp/cifarlab-absolute-escape.txt").exists()


def test_symlink_then_write_through_it_is_refused(tmp_path):
    # the classic two-step: a symlink to outside, then a file "inside" it
    archive = _tar(tmp_path / "evil.tar", [_info("d", tarfile.SYMTYPE, str(tmp_path / "outside")),
                                           _info("d/pwned.txt")])
    (tmp_path / "outside").mkdir()
    dest = tmp_path / "dest"
    with pytest.raises(CifarlabError, match="'d' refused: it is a link to an absolute path"):
        safe_extract(archive, dest)
    assert not (tmp_path / "outside" / "pwned.txt").exists() and _tree(dest) == set()


def test_safe_extract_replaces_previous_and_refuses_truncated(tmp_path):
    archive, _ = make_cifar10_python(tmp_path / "src", archive=True)
    dest = tmp_path / "dest"
    (dest / "cifar-10-batches-py").mkdir(parents=True)
    (dest / "cifar-10-batches-py" / "stale").write_text("old")
    assert safe_extract(archive, dest) == [dest / "cifar-10-batches-py"]
    assert not (dest / "cifar-10-batches-py" / "stale").exists()
    assert (dest / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py"]

    blob = archive.read_bytes()
    truncated = tmp_path / "trunc.tar.gz"
    truncated.write_bytes(blob[: len(blob) * 2 // 3])
    fresh = tmp_path / "fresh"
    with pytest.raises(CifarlabError, match="truncated or invalid archive"):
        safe_extract(truncated, fresh)
    assert _tree(fresh) == set()


@pytest.fixture()
def fake_archive(tmp_path) -> tuple[bytes, str]:
    archive, _ = make_cifar10_python(tmp_path / "built", archive=True)
    blob = archive.read_bytes()
    return blob, hashlib.md5(blob).hexdigest()


def test_download_end_to_end(tmp_path, server, fake_archive, caplog):
    blob, md5 = fake_archive
    server.routes["/mirror/cifar-10-python.tar.gz"] = (blob, None)
    dest = tmp_path / "data"
    folder = download("cifar10", dest, url=server.base + "/mirror/", md5=md5, progress=False)
    assert folder == dest / "cifar-10-batches-py"
    assert (dest / "cifar-10-python.tar.gz").read_bytes() == blob
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    data = load_dataset(folder, use_cache=False)
    assert data.format == "cifar10-python" and len(data.split("train")) == 15
    assert load_dataset(dest / "cifar-10-python.tar.gz", use_cache=False).fingerprint == data.fingerprint

    # second call: right MD5 already there -> no request at all
    del server.routes["/mirror/cifar-10-python.tar.gz"]
    with caplog.at_level(logging.INFO, logger="cifarlab.data.download"):
        download("cifar10", dest, url=server.base + "/mirror/", md5=md5, progress=False)
    assert any("already downloaded" in r.getMessage() for r in caplog.records)


def test_download_full_url_from_env_and_no_extract(tmp_path, server, fake_archive, monkeypatch):
    blob, md5 = fake_archive
    server.routes["/x/any-name.tgz"] = (blob, None)
    monkeypatch.setenv("CIFARLAB_DOWNLOAD_URL", server.base + "/x/any-name.tgz")
    path = download("cifar10", tmp_path, extract=False, md5=md5, progress=False)
    assert path == tmp_path / "cifar-10-python.tar.gz" and path.read_bytes() == blob
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_download_bad_md5_leaves_nothing(tmp_path, server, fake_archive):
    blob, _ = fake_archive
    server.routes["/cifar-10-python.tar.gz"] = (blob, None)
    with pytest.raises(CifarlabError, match="MD5 .* does not match the expected c58f3010"):
        download("cifar10", tmp_path / "d", url=server.base, progress=False)
    assert _tree(tmp_path / "d") == set()


def test_download_truncated_body_leaves_nothing(tmp_path, server, fake_archive):
    blob, md5 = fake_archive
    server.routes["/cifar-10-python.tar.gz"] = (blob[:1000], len(blob))
    with pytest.raises(CifarlabError, match=f"truncated download: got 1,000 of {len(blob):,}"):
        download("cifar10", tmp_path / "d", url=server.base, md5=md5, progress=False)
    assert _tree(tmp_path / "d") == set()


def test_download_http_error_and_bad_existing_file(tmp_path, server):
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "cifar-100-python.tar.gz").write_bytes(b"an old broken download")
    with pytest.raises(CifarlabError, match="HTTP error 404"):
        download("cifar100", dest, url=server.base + "/", progress=False)
    # the wrong-MD5 file was not trusted, and not deleted by a failed retry either
    assert _tree(dest) == {"cifar-100-python.tar.gz"}


def test_download_timeout(tmp_path):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection but never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(CifarlabError, match="no answer within 0.5 s|stopped sending"):
            download("cifar10", tmp_path, url=url, timeout=0.5, progress=False)
    finally:
        listener.close()
    assert _tree(tmp_path) == set()


def test_download_connection_refused(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(CifarlabError, match="cannot connect"):
        download("cifar10", tmp_path, url=f"http://127.0.0.1:{port}/", timeout=2, progress=False)


def test_resolve_url(monkeypatch):
    monkeypatch.delenv("CIFARLAB_DOWNLOAD_URL", raising=False)
    assert resolve_url("cifar10") == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert resolve_url("cifar10-binary", "http://m/base") == "http://m/base/cifar-10-binary.tar.gz"
    assert resolve_url("cifar100", "http://m/f.tar.gz") == "http://m/f.tar.gz"
    monkeypatch.setenv("CIFARLAB_DOWNLOAD_URL", "http://env/")
    assert resolve_url("cifar100") == "http://env/cifar-100-python.tar.gz"
    assert resolve_url("cifar100", "http://flag/") == "http://flag/cifar-100-python.tar.gz"
    assert {k: v.md5 for k, v in DATASETS.items()} == {
        "cifar10": "c58f30108f718f92721af3b95e74349a",
        "cifar10-binary": "c32a1d4ab5d03f1284b67883e8d87530",
        "cifar100": "eb9058c3a382ffc7106e4002c42a8d85",
    }
    with pytest.raises(CifarlabError, match="unknown dataset"):
        resolve_url("mnist")


def test_a_dataset_name_is_downloaded_into_the_cache_on_first_use(cifar10_mirror, capsys):
    blob = cifar10_mirror()
    archive = cache_root() / "downloads" / "cifar-10-python.tar.gz"
    for _ in range(2):  # the second time from the cache: no request
        assert main(["data", "info", "--data", "cifar10", "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["source"] == str(archive) and info["format"] == "cifar10-python"
        assert info["splits"] == {"train": 15, "test": 3}
        cifar10_mirror.server.routes.clear()
    assert archive.read_bytes() == blob
    assert [p.name for p in archive.parent.iterdir()] == [archive.name]  # no partial file left


@pytest.mark.slow
def test_train_and_evaluate_read_cifar10_without_data(cifar10_mirror, tmp_path):
    cifar10_mirror(per_batch=40)  # 20 training images a class
    run, report = tmp_path / "run", tmp_path / "eval"
    assert main(["train", "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    assert main(["evaluate", str(run / "model.keras"), "--out", str(report), "--no-progress"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    archive = cache_root() / "downloads" / "cifar-10-python.tar.gz"
    assert metrics["num_samples"] == 40 and metrics["evaluation"]["dataset_source"] == str(archive)
    assert json.loads((run / "summary.json").read_text())["train_images"] > 0


@pytest.mark.parametrize("argv", [["train", "--out", "{tmp}/out"], ["evaluate", "--out", "{tmp}/out"],
                                  ["data", "info", "--data", "cifar10"]], ids=lambda argv: argv[0])
def test_no_network_is_a_one_line_error(argv, tmp_path, monkeypatch, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"  # nothing listens there once closed
    monkeypatch.setenv("CIFARLAB_DOWNLOAD_URL", url)
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    code = main([arg.format(tmp=tmp_path) for arg in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"cifarlab {argv[0]}: error: cifar10 is not in the cache and cannot be "
                             f"downloaded: {url}cifar-10-python.tar.gz: cannot connect (")
    assert err[0].endswith("; pass --data PATH to a dataset you have, or set "
                           "$CIFARLAB_DOWNLOAD_URL to a mirror")
    assert not (tmp_path / "out").exists() and not any((tmp_path / "cache").rglob("*.gz"))
