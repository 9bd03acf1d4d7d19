"""Writing files so that a failure never leaves a half-written one (no pandas here: the
report's parent process imports this and nothing heavier).

Every output marketlib writes (cache files, figures, executed notebooks, the report page, a
snapshot's manifest) goes through :func:`atomic_write_bytes` or :func:`atomic_output`: the
bytes go to a temp file in the destination's own folder, are flushed to disk, and the temp
file is renamed over the destination. A write that cannot finish (read-only folder, a file
where a folder should be, a full disk) raises :class:`~marketlib.errors.OutputError`, naming
the path and the reason, and leaves the previous file byte-identical.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from marketlib.errors import OutputError

_WHY = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied: the folder is read-only for this user",
    errno.EPERM: "permission denied: the folder is read-only for this user",
    errno.ENOTDIR: "a file stands where a folder should be",
    errno.EEXIST: "a file stands where a folder should be",
    errno.EISDIR: "a folder stands where the file should be",
}


def why(exc: OSError) -> str:
    """A short reason for an OSError, in words (the errno's meaning, not its number)."""
    return _WHY.get(exc.errno or -1, exc.strerror or type(exc).__name__)


def output_error(path: Path, exc: OSError, what: str = "file") -> OutputError:
    """The one-line error for an output that could not be written."""
    return OutputError(
        f"cannot write the {what} {path} ({why(exc)}): choose a writable place, free some "
        "space, or fix the permissions; nothing there was changed"
    )


def ensure_folder(folder: Path, what: str = "folder") -> Path:
    """Create ``folder`` (and its parents) or raise OutputError saying why it cannot be."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(folder, exc, what) from exc
    if not folder.is_dir():
        raise OutputError(f"cannot use {folder} as the {what}: it is a file, not a folder")
    return folder


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for place in (folder, *folder.parents):
        if place.exists():
            break
        missing.append(place)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed write created, so that it leaves nothing behind."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def atomic_output(path: Path, what: str = "file") -> Iterator[Path]:
    """A temp path beside ``path`` to write to; renamed over ``path`` when the block ends.

    For writers that want a file name (``savefig``, papermill, nbformat). If the block raises,
    the temp file is removed and ``path`` is untouched; an OSError becomes OutputError.
    """
    path = Path(path)
    created = _missing_folders(path.parent)
    try:
        ensure_folder(path.parent, "folder")
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        os.close(handle)
    except OSError as exc:
        _remove_empty(created)
        raise output_error(path, exc, what) from exc
    except BaseException:
        _remove_empty(created)
        raise
    temp = Path(temp_name)
    try:
        yield temp
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
            os.fchmod(written.fileno(), 0o666 & ~_umask())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        _remove_empty(created)
        raise output_error(path, exc, what) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        _remove_empty(created)
        raise


def atomic_write_bytes(path: Path, data: bytes, what: str = "file") -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``.

    Readers see the old file or the new one, never half of either. OutputError (naming the
    path) when it cannot be written; the previous file is then left as it was. The file gets
    the mode a plain ``open(path, "w")`` would give it (0666 less the umask): mkstemp's private
    0600 would keep a colleague or a web server from reading a report.
    """
    with atomic_output(path, what) as temp:
        temp.write_bytes(data)


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
