"""Safe extraction of downloaded tar archives.

tarfile's own `filter="data"` vets every member: a path that would land outside the destination
(`..`, or absolute after the leading "/" is stripped), a link pointing outside it, device files
and FIFOs are refused with a `CifarlabError` naming the member. Extraction goes into a temporary
folder inside the destination and is renamed into place only once complete, so a truncated or
refused archive leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

from cifarlab.errors import CifarlabError

_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error)
# Why the data filter refused a member, in words that do not name the staging folder.
_REFUSED_BECAUSE = {
    tarfile.OutsideDestinationError: "it would be written outside the destination ('..')",
    tarfile.AbsolutePathError: "it has an absolute path",
    tarfile.AbsoluteLinkError: "it is a link to an absolute path",
    tarfile.LinkOutsideDestinationError: "it is a link pointing outside the destination",
    tarfile.SpecialFileError: "it is a device file or FIFO",
}


def safe_extract(archive: str | Path, dest: str | Path) -> list[Path]:
    """Extract `archive` into `dest` safely; return the top-level paths it created or replaced.

    An existing top-level entry of the same name (an older extraction) is replaced only after
    the new one is complete.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=f".{archive.name}.extract-"))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(staging, filter="data")
        except tarfile.FilterError as exc:
            because = _REFUSED_BECAUSE.get(type(exc), str(exc))
            raise CifarlabError(f"{archive}: member {exc.tarinfo.name!r} refused: {because}; "
                                "refusing to extract this archive") from None
        except _TAR_ERRORS as exc:
            raise CifarlabError(f"{archive}: truncated or invalid archive ({exc}); delete it and "
                                "download it again") from None
        except OSError as exc:
            raise CifarlabError(f"{archive}: cannot extract into {dest} ({exc}); check the "
                                "free space and permissions") from None
        created = []
        for entry in sorted(staging.iterdir()):
            target = dest / entry.name
            if target.exists() or target.is_symlink():
                old = Path(tempfile.mkdtemp(dir=dest, prefix=f".{entry.name}.old-"))
                os.replace(target, old / entry.name)
                os.replace(entry, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(entry, target)
            created.append(target)
        return created
    finally:
        shutil.rmtree(staging, ignore_errors=True)
