"""Atomic, durable file writes.

A writer creates a temp file in the destination folder, fsyncs it, renames it over the final
name and fsyncs the folder. Temp names start with ``.tmp-`` and end in ``.partial`` so that no
glob used by a view or by Snakemake (``*.parquet``, ``*.json``) can ever match a half file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".partial"


def _file_mode() -> int:
    """The mode ``open()`` would give a new file (0o644 under the usual umask 022). ``mkstemp`` makes
    0o600 files: raw files, manifests and serving files would then be unreadable to the other users
    of a shared data folder, while the views in cxq.duckdb point at them."""
    umask = os.umask(0o022)  # reading the umask means setting it; done once, at import
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def fsync_path(path: str | Path) -> None:
    """fsync a file, or a folder (so that a rename in it survives a power loss), by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: str | Path) -> None:
    """Make every write issued so far, by any process, to the filesystem holding ``path`` durable.

    The barrier of batch writers (one instead of an fsync per file). On Linux it is ``syncfs(2)`` on
    that filesystem alone, so a barrier never waits for another disk's dirty pages (batch imports
    call one per chunk of 64 symbols); elsewhere ``sync()``. ``path`` may not exist yet: its nearest
    existing parent decides the filesystem.
    """
    syncfs = _syncfs()
    if syncfs is None:
        os.sync()
        return
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    fd = os.open(folder, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            import ctypes

            err = ctypes.get_errno()
            raise OSError(err, f"syncfs of the filesystem holding {folder} failed: {os.strerror(err)}")
    finally:
        os.close(fd)


@functools.cache
def _syncfs() -> Any:
    """libc's syncfs (Linux, glibc >= 2.14), or None. ctypes is imported only when a batch needs it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


@contextlib.contextmanager
def atomic_path(dest: Path | str, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp path next to ``dest``; on success it is renamed onto ``dest``.

    The caller writes the temp file by any means (pyarrow, zipfile ...). On an exception the temp
    file is removed and ``dest`` is untouched. With ``overwrite=False`` an existing ``dest`` raises
    ``FileExistsError`` (used for the immutable raw layer).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX + dest.name + ".", suffix=TEMP_SUFFIX, dir=dest.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fsync_path(tmp)
        if overwrite:
            os.replace(tmp, dest)
        else:
            # link() fails if dest exists: no window where an existing file could be replaced.
            os.link(tmp, dest)
            tmp.unlink()
        fsync_path(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(dest: Path | str, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``dest`` atomically and durably."""
    with atomic_path(dest, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def atomic_write_text(dest: Path | str, text: str, *, overwrite: bool = True) -> Path:
    return atomic_write_bytes(dest, text.encode("utf-8"), overwrite=overwrite)


def dumps_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, 2-space indent, trailing newline): same object, same bytes."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n"


def atomic_write_json(dest: Path | str, obj: Any, *, overwrite: bool = True) -> Path:
    return atomic_write_text(dest, dumps_json(obj), overwrite=overwrite)


def copy_stream_atomic(src: BinaryIO, dest: Path | str, *, chunk_size: int = 1 << 20) -> int:
    """Copy a binary stream into ``dest`` atomically; return the number of bytes written."""
    total = 0
    with atomic_path(dest) as tmp, open(tmp, "wb") as out:
        while chunk := src.read(chunk_size):
            out.write(chunk)
            total += len(chunk)
    return total


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) or name.endswith(TEMP_SUFFIX)


def remove_stale_temps(folder: Path) -> int:
    """Delete temp files a crashed writer left behind in ``folder`` (not recursive)."""
    removed = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_file() and is_temp_name(entry.name):
                entry.unlink(missing_ok=True)
                removed += 1
    return removed
