"""Download the official CIFAR archives, verified by MD5, optionally extracted safely.

`keras.utils.get_file` downloads into a temporary folder in the target folder (urllib checks
the length, get_file the MD5), and the file is renamed to its final name only once verified: an
interrupted, truncated or corrupt download never leaves a file under the final name. A final
file that already has the right MD5 is not downloaded again.

Mirrors: `url` (the `--url` flag) or else the environment variable `CIFARLAB_DOWNLOAD_URL`.
Either may be a *full URL* to the archive (it ends in .tar.gz, .tgz or .tar) or a *base URL*
(a folder) to which the official file name is appended, e.g. `http://mirror/cifar/` gives
`http://mirror/cifar/cifar-10-python.tar.gz`. The MD5 is still checked against the official
checksum unless another one is given (`--md5`, or else `CIFARLAB_DOWNLOAD_MD5`).

A dataset's name as a source (`--data cifar10`) means its official archive in the cache,
downloaded on first use (`official_archive`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from cifarlab.data.archive import safe_extract
from cifarlab.data.cache import cache_root
from cifarlab.errors import CifarlabError
from cifarlab.imports import import_tensorflow_quietly

logger = logging.getLogger(__name__)

OFFICIAL_BASE_URL = "https://www.cs.toronto.edu/~kriz/"
URL_ENV = "CIFARLAB_DOWNLOAD_URL"
MD5_ENV = "CIFARLAB_DOWNLOAD_MD5"
DEFAULT_DATASET = "cifar10"  # what `train` and `evaluate` read without --data
DOWNLOADS = "downloads"      # the official archives' folder in the cache
DEFAULT_TIMEOUT = 60.0
CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    filename: str
    md5: str
    folder: str  # top folder inside the archive


DATASETS = {
    "cifar10": Remote("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                      "cifar-10-batches-py"),
    "cifar10-binary": Remote("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530",
                             "cifar-10-batches-bin"),
    "cifar100": Remote("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                       "cifar-100-python"),
}


def resolve_url(dataset: str, url: str | None = None) -> str:
    """The URL to fetch: `url`, else $CIFARLAB_DOWNLOAD_URL, else the official one.

    A value ending in .tar.gz/.tgz/.tar is used as is; anything else is a base URL that the
    official file name is appended to.
    """
    remote = _remote(dataset)
    chosen = url or os.environ.get(URL_ENV) or OFFICIAL_BASE_URL
    if chosen.split("?", 1)[0].lower().endswith((".tar.gz", ".tgz", ".tar")):
        return chosen
    return chosen.rstrip("/") + "/" + remote.filename


def _remote(dataset: str) -> Remote:
    if dataset not in DATASETS:
        raise CifarlabError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[dataset]


class DownloadError(CifarlabError):
    """A download that failed: the URL, what went wrong and what to do."""

    def __init__(self, url: str, problem: str, remedy: str):
        super().__init__(f"{url}: {problem}; {remedy}")
        self.url, self.problem = url, problem


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, target: Path, md5: str, timeout: float = DEFAULT_TIMEOUT,
          progress: bool = True) -> Path:
    """Download `url` to `target` with `keras.utils.get_file`, verifying its MD5.

    get_file writes into a temporary folder next to `target` (it would leave a half-written file
    under its name if killed, and a wrong-MD5 one after checking); the file is renamed to `target`
    only once verified. `timeout` bounds every wait for the server (the socket default timeout,
    as get_file takes none).
    """
    import_tensorflow_quietly()  # slow import: only when downloading
    import keras

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
    try:
        shown = _KerasProgress(progress, f"downloading {url} -> {target}")
        with _socket_timeout(timeout), contextlib.redirect_stdout(shown):
            fetched = keras.utils.get_file(target.name, origin=url, file_hash=md5,
                                           hash_algorithm="md5", cache_dir=staging, cache_subdir="")
        os.replace(fetched, target)
        return target
    except Exception as exc:  # get_file re-raises urllib's errors as a bare Exception
        fetched = staging / target.name
        if isinstance(exc, ValueError) and fetched.is_file():  # "file hash does not match"
            raise DownloadError(url, f"MD5 {file_md5(fetched)} does not match the expected {md5}",
                                "the file is corrupt or not the official archive, retry or use "
                                "another mirror") from None
        raise _download_failure(url, timeout, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _KerasProgress(io.TextIOBase):
    """get_file's stdout: its progress bar to stderr (if shown at all) under `title`, instead of
    its "Downloading data from" line. The bar starts once the server has answered, so a download
    that cannot start shows its one-line error only."""

    def __init__(self, show: bool, title: str):
        self.show, self.title = show, title

    def write(self, text: str) -> int:
        if self.show and not text.startswith("Downloading data from"):
            if self.title:
                sys.stderr.write(self.title + "\n")
                self.title = ""
            sys.stderr.write(text)
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download_failure(url: str, timeout: float, exc: BaseException) -> DownloadError:
    """What went wrong, from the urllib error behind get_file's exception, and what to do."""
    cause = exc.__context__ if type(exc) is Exception and exc.__context__ is not None else exc
    if isinstance(cause, urllib.error.HTTPError):
        return DownloadError(url, f"HTTP error {cause.code} {cause.reason}",
                             f"check the URL (--url or ${URL_ENV})")
    if isinstance(cause, urllib.error.ContentTooShortError):
        counts = re.search(r"got only (\d+) out of (\d+) bytes", str(cause))
        got = f"got {int(counts[1]):,} of {int(counts[2]):,} bytes" if counts else str(cause)
        return DownloadError(url, f"truncated download: {got}", "retry")
    reason = getattr(cause, "reason", cause)
    if isinstance(reason, TimeoutError):
        return DownloadError(url, f"no answer within {timeout:g} s",
                             "check the network or raise --timeout")
    if isinstance(cause, (urllib.error.URLError, ConnectionError, ValueError)):
        return DownloadError(url, f"cannot connect ({reason})",
                             f"check the network and the URL (--url or ${URL_ENV})")
    return DownloadError(url, f"download failed ({cause})", "retry")


def download(dataset: str, dest: str | Path = "data", url: str | None = None,
             timeout: float = DEFAULT_TIMEOUT, extract: bool = True, md5: str | None = None,
             progress: bool = True) -> Path:
    """Fetch a CIFAR archive into `dest`; return the extracted folder (or the archive).

    Skips the download when the archive is already there with the right MD5, and the
    extraction when the folder is already there and the archive was not re-downloaded.
    """
    remote = _remote(dataset)
    if timeout <= 0:
        raise CifarlabError(f"--timeout must be positive, got {timeout:g}")
    dest = Path(dest).expanduser()
    target = dest / remote.filename
    expected_md5 = (md5 or os.environ.get(MD5_ENV) or remote.md5).lower()
    fresh = False
    if target.is_file() and file_md5(target) == expected_md5:
        logger.info("%s: already downloaded (MD5 ok)", target)
    else:
        source = resolve_url(dataset, url)
        logger.debug("downloading %s -> %s", source, target)
        fetch(source, target, expected_md5, timeout, progress)
        fresh = True
    if not extract:
        return target
    folder = dest / remote.folder
    if folder.is_dir() and not fresh:
        logger.info("%s: already extracted", folder)
        return folder
    safe_extract(target, dest)
    if not folder.is_dir():
        raise CifarlabError(f"{target}: has no {remote.folder}/ folder; it is not the official "
                            "archive")
    logger.info("extracted %s", folder)
    return folder


def official_archive(dataset: str, progress: bool = True) -> Path:
    """The official archive of `dataset` in the cache (`cache_root()`/downloads), downloaded on
    first use. An archive there was MD5-checked before it got its name, so it is not read again."""
    target = cache_root() / DOWNLOADS / _remote(dataset).filename
    if target.is_file():
        return target
    try:
        return download(dataset, target.parent, extract=False, progress=progress)
    except DownloadError as exc:
        raise CifarlabError(f"{dataset} is not in the cache and cannot be downloaded: {exc.url}: "
                            f"{exc.problem}; pass --data PATH to a dataset you have, or set "
                            f"${URL_ENV} to a mirror") from None
