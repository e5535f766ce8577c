"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Files get the permissions their creator asks for less the user's umask, as ``open(2)`` gives
them (a temporary file alone would be 0600 whatever the umask, and colleagues could not read a
shared report). A temporary's name carries its writer's pid, ``.<name>.<pid>-<random>.tmp``, so
that a later run can tell what a killed writer left behind from what is being written right now.
An output path that cannot work is refused in one line naming it, before any work is done.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from slurmkit.errors import Location, SlurmkitError

_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<pid>[0-9]+)-[a-z0-9_]{8}\.tmp$")


class OutputPathError(SlurmkitError, OSError):
    """An output path cannot be written (also an OSError, for callers that catch those)."""


def umask() -> int:
    """The process's umask (reading it means setting it: it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_name(name: str) -> str:
    """A hidden name beside ``name`` that :func:`remove_stale_temporaries` recognises."""
    return f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def write_bytes_atomic(path: Path | str, data: bytes, *, mode: int = 0o666, durable: bool = True) -> bool:
    """Write ``data`` to ``path`` via a temporary file and rename; the file gets ``mode`` less
    the umask (0o777 for an executable).

    Returns False (and leaves the file untouched, mtime included) when the content is already
    identical, so regenerating an unchanged sweep rewrites nothing. ``durable=False`` skips the
    fsync (still atomic: readers see the old or the new file) for bulk writes such as 10,000
    scripts, whose index file is then written durably last.
    """
    path = Path(path)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except (FileNotFoundError, NotADirectoryError):
        pass
    except IsADirectoryError:
        raise _cannot_write(path, "it is a folder") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(path, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode & ~umask())
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, SlurmkitError):
            raise _cannot_write(path, exc.strerror or str(exc)) from None
        raise
    return True


def write_text_atomic(path: Path | str, text: str, *, mode: int = 0o666, durable: bool = True) -> bool:
    """Text version of :func:`write_bytes_atomic` (UTF-8, newlines as given)."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode=mode, durable=durable)


def _cannot_write(path: Path, reason: str) -> OutputPathError:
    return OutputPathError(f"cannot write: {reason}", location=Location(str(path)),
                           hint="choose a path in a folder you can write to")


def remove_stale_temporaries(folder: Path, *, owned: Callable[[str], bool] = lambda target: True,
                             locked_since: float | None = None) -> list[Path]:
    """Remove the temporaries in ``folder`` (files or staging folders) whose target name is
    ``owned`` and whose writer is gone: its process no longer exists on this machine, or, when
    the caller holds the lock every writer of those names takes, it was last touched before
    the lock was acquired (a writer on another machine, or a pid since reused).
    A temporary of a live process touched since then is being written now and stays."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if not match or not owned(match["target"]):
            continue
        try:
            old = locked_since is not None and entry.stat(follow_symlinks=False).st_mtime < locked_since
        except FileNotFoundError:
            continue  # its writer finished meanwhile
        if not (old or not _alive(int(match["pid"]))):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
        removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a number no pid has: left alone, to be safe)
    return True


def check_output_path(path: Path | str, *, folder: bool, option: str) -> Path:
    """Refuse, before any work, an output ``path`` (a folder if ``folder``, else a file) that
    exists as the other kind, lies under a file, or sits where nothing can be created; the
    message names the path and ``option``, the command-line option to change."""
    path = Path(path)
    hint = f"choose another {option}"
    if path.is_dir() and not folder:
        raise OutputPathError("is a folder, not a file", location=Location(str(path)), hint=hint)
    if path.exists() and not path.is_dir() and folder:
        raise OutputPathError("is a file, not a folder", location=Location(str(path)), hint=hint)
    base = path if folder else path.parent
    existing = next(p for p in (base.absolute(), *base.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise OutputPathError(f"cannot be created: {existing} is a file, not a folder",
                              location=Location(str(path)), hint=hint)
    # The one test that also holds for root and pseudo file systems (/proc): create a file. An
    # unnamed one (O_TMPFILE where the file system has it), so a process killed meanwhile leaves
    # nothing behind in the user's folder.
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp"):
            pass
    except OSError as exc:
        raise OutputPathError(f"cannot create files in {existing} ({exc.strerror or exc})", location=Location(str(path)),
                              hint=f"{hint} in a folder you can write to") from None
    return path
