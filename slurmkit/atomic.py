"""Atomic file writes: a reader sees the old file or the new one, never half of either."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes_atomic(path: Path | str, data: bytes, *, mode: int | None = None,
                       durable: bool = True) -> bool:
    """Write ``data`` to ``path`` via a temporary file and rename.

    Returns False (and leaves the file untouched, mtime included) when the content is already
    identical, so regenerating an unchanged sweep rewrites nothing. ``durable=False`` skips the
    fsync (still atomic: readers see the old or the new file) for bulk writes such as 10,000
    scripts, whose index file is then written durably last.
    """
    path = Path(path)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def write_text_atomic(path: Path | str, text: str, *, mode: int | None = None, durable: bool = True) -> bool:
    """Text version of :func:`write_bytes_atomic` (UTF-8, newlines as given)."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode=mode, durable=durable)
