"""Arrow tables handed from a worker process to its parent through shared memory instead of a pipe.

A batch run's workers send their chunks' daily tables back for the serving build: ~3 GB at
U=5,000 x 2 sources. Pickled through the pool's pipe, every byte is copied about five times
(to Python bytes, into the pickle, through the pipe, out of it, into new bytes) and every page the
parent receives is freshly allocated and zeroed. :class:`SharedTables` pickles as a file name
instead: the worker writes its tables once, as an Arrow IPC file in ``/dev/shm`` (RAM), and the
parent memory-maps that file (no copy) and unlinks it at once - the mapping keeps the memory for as
long as the tables live, and nothing is left behind when they are gone.

A parent killed between a worker's write and its own read leaves such files behind; every batch
run first removes those of parents that are no longer alive (:func:`remove_orphans`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

PREFIX = "cxq-tables-"
_counter = itertools.count()


def shared_dir() -> Path:
    """RAM-backed where the platform has it (Linux), else the temp folder (still one copy, not five)."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class SharedTables:
    """A list of tables with one schema; pickled, it travels as a shared-memory file (see module doc)."""

    def __init__(self, tables: list[pa.Table]) -> None:
        self.tables = tables

    def __getstate__(self) -> dict[str, Any]:
        schemas = {t.schema for t in self.tables}
        if len(schemas) != 1:  # nothing to share, or mixed schemas: pickle the tables themselves
            return {"tables": self.tables}
        path = shared_dir() / f"{PREFIX}{os.getppid()}-{os.getpid()}-{next(_counter)}.arrow"
        counts = []
        try:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schemas.pop()) as writer:
                for table in self.tables:
                    batches = table.to_batches()
                    counts.append(len(batches))
                    for batch in batches:
                        writer.write_batch(batch)
        except OSError:  # e.g. a container's 64 MB /dev/shm is full: the pipe is slower, not wrong
            path.unlink(missing_ok=True)
            return {"tables": self.tables}
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return {"path": str(path), "counts": counts}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "tables" in state:
            self.tables = state["tables"]
            return
        path = state["path"]
        try:
            with pa.memory_map(path, "r") as source:  # buffers keep the mapping alive after close
                reader = pa.ipc.open_file(source)
                schema, batches = reader.schema, [reader.get_batch(i) for i in range(reader.num_record_batches)]
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        starts = [0, *itertools.accumulate(state["counts"])]
        self.tables = [pa.Table.from_batches(batches[a:b], schema=schema) for a, b in itertools.pairwise(starts)]


def remove_orphans(folder: Path | None = None) -> int:
    """Delete shared-table files whose parent process is gone (it was killed before reading them)."""
    removed = 0
    for path in (folder or shared_dir()).glob(f"{PREFIX}*.arrow"):
        try:
            parent = int(path.name.removeprefix(PREFIX).split("-", 1)[0])
        except ValueError:
            continue
        if parent != os.getpid() and not _alive(parent):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
