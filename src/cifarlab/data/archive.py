"""Safe extraction of downloaded tar archives.

Every member is checked before anything is written: absolute paths, `..` components,
symbolic and hard links, device files and FIFOs are refused with a `CifarlabError` naming the
member. Extraction goes into a temporary folder inside the destination and is renamed into
place only once complete, so a truncated or refused archive leaves nothing behind. tarfile's
own `filter="data"` is applied as a second line of defence.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from cifarlab.errors import CifarlabError

_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error)


def check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Raise CifarlabError if extracting `member` could write outside the target or a non-file."""
    name = member.name
    where = f"{archive}: member {name!r}"
    path = PurePosixPath(name.replace("\\", "/"))
    if not name or path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise CifarlabError(f"{where} has an absolute path; refusing to extract this archive")
    if ".." in path.parts:
        raise CifarlabError(f"{where} contains '..'; refusing to extract this archive")
    if member.issym() or member.islnk():
        raise CifarlabError(f"{where} is a link (-> {member.linkname!r}); refusing to extract "
                            "this archive")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise CifarlabError(f"{where} is a device file or FIFO; refusing to extract this archive")
    if not (member.isfile() or member.isdir()):
        raise CifarlabError(f"{where} is not a regular file or folder; refusing to extract "
                            "this archive")


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
                members = tar.getmembers()
                for member in members:
                    check_member(member, archive)
                tar.extractall(staging, members=members, filter="data")
        except tarfile.FilterError as exc:  # second line: tarfile's own "data" filter
            member = getattr(exc, "tarinfo", None)
            raise CifarlabError(f"{archive}: member {getattr(member, 'name', '?')!r} refused "
                                f"({exc}); refusing to extract this archive") from None
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
