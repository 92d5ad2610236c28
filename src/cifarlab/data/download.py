"""Download the official CIFAR archives, verified by MD5, optionally extracted safely.

The body is streamed to a temporary file in the target folder and renamed to its final name
only after its length and MD5 are verified: an interrupted, truncated or corrupt download
never leaves a file under the final name. A final file that already has the right MD5 is not
downloaded again.

Mirrors: `url` (the `--url` flag) or else the environment variable `CIFARLAB_DOWNLOAD_URL`.
Either may be a *full URL* to the archive (it ends in .tar.gz, .tgz or .tar) or a *base URL*
(a folder) to which the official file name is appended, e.g. `http://mirror/cifar/` gives
`http://mirror/cifar/cifar-10-python.tar.gz`. The MD5 is still checked against the official
checksum unless another one is given (`--md5`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from cifarlab.data.archive import safe_extract
from cifarlab.errors import CifarlabError

OFFICIAL_BASE_URL = "https://www.cs.toronto.edu/~kriz/"
URL_ENV = "CIFARLAB_DOWNLOAD_URL"
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


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (TimeoutError, socket.timeout)) or isinstance(
        getattr(exc, "reason", None), (TimeoutError, socket.timeout))


def fetch(url: str, target: Path, md5: str, timeout: float = DEFAULT_TIMEOUT,
          progress: bool = True) -> Path:
    """Stream `url` to `target` (via a temp file next to it), verifying length and MD5."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - http(s)/file
            except urllib.error.HTTPError as exc:
                raise CifarlabError(f"{url}: HTTP error {exc.code} {exc.reason}; check the URL "
                                    f"(--url or ${URL_ENV})") from None
            except (urllib.error.URLError, OSError, ValueError) as exc:
                if _is_timeout(exc):
                    raise CifarlabError(f"{url}: no answer within {timeout:g} s; check the network "
                                        "or raise --timeout") from None
                reason = getattr(exc, "reason", exc)
                raise CifarlabError(f"{url}: cannot connect ({reason}); check the network and the "
                                    f"URL (--url or ${URL_ENV})") from None
            with response:
                length = response.headers.get("Content-Length")
                expected = int(length) if length and length.isdigit() else None
                digest, received = hashlib.md5(), 0
                with tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=target.name, disable=not progress, file=sys.stderr) as bar:
                    while True:
                        try:
                            block = response.read(CHUNK)
                        except http.client.IncompleteRead as exc:
                            block = exc.partial
                            out.write(block)
                            digest.update(block)
                            received += len(block)
                            break
                        except (OSError, http.client.HTTPException) as exc:
                            if _is_timeout(exc):
                                raise CifarlabError(
                                    f"{url}: the server stopped sending for {timeout:g} s after "
                                    f"{received:,} bytes; retry or raise --timeout") from None
                            raise CifarlabError(f"{url}: download failed after {received:,} bytes "
                                                f"({exc}); retry") from None
                        if not block:
                            break
                        out.write(block)
                        digest.update(block)
                        received += len(block)
                        bar.update(len(block))
        if expected is not None and received != expected:
            raise CifarlabError(f"{url}: truncated download: got {received:,} of {expected:,} "
                                "bytes; retry")
        if digest.hexdigest() != md5.lower():
            raise CifarlabError(f"{url}: MD5 {digest.hexdigest()} does not match the expected "
                                f"{md5}; the file is corrupt or not the official archive, retry "
                                "or use another mirror")
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def download(dataset: str, dest: str | Path = "data", url: str | None = None,
             timeout: float = DEFAULT_TIMEOUT, extract: bool = True, md5: str | None = None,
             progress: bool = True, log=print) -> Path:
    """Fetch a CIFAR archive into `dest`; return the extracted folder (or the archive).

    Skips the download when the archive is already there with the right MD5, and the
    extraction when the folder is already there and the archive was not re-downloaded.
    """
    remote = _remote(dataset)
    if timeout <= 0:
        raise CifarlabError(f"--timeout must be positive, got {timeout:g}")
    dest = Path(dest).expanduser()
    target = dest / remote.filename
    expected_md5 = (md5 or remote.md5).lower()
    fresh = False
    if target.is_file() and file_md5(target) == expected_md5:
        log(f"{target}: already downloaded (MD5 ok)")
    else:
        source = resolve_url(dataset, url)
        log(f"downloading {source} -> {target}")
        fetch(source, target, expected_md5, timeout, progress)
        fresh = True
    if not extract:
        return target
    folder = dest / remote.folder
    if folder.is_dir() and not fresh:
        log(f"{folder}: already extracted")
        return folder
    safe_extract(target, dest)
    if not folder.is_dir():
        raise CifarlabError(f"{target}: has no {remote.folder}/ folder; it is not the official "
                            "archive")
    log(f"extracted {folder}")
    return folder
