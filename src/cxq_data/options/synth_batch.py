"""Databento-style batch ZIPs of synthetic OPRA cbbo-1m days, optionally with injected defects.

Layout (as in a Databento batch download; support-file contents are approximations, see
shared research §2.5): ``opra-pillar-YYYYMMDD.cbbo-1m.dbn.zst`` per day plus ``metadata.json``,
``manifest.json`` (``{"job_id", "files": [{"filename", "size", "hash": "sha256:<hex>"}]}``),
``symbology.json`` and ``condition.json``. The ZIP bytes are deterministic (fixed timestamps).

Defects (applied to the *last* day unless said otherwise) let the pipeline's tests feed bad input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

import numpy as np

from cxq_data.atomic import atomic_path


class ZipDefect(str, Enum):
    BAD_HASH = "bad_hash"  # manifest sha256 of the last day's file is wrong
    ZIP_SLIP = "zip_slip"  # an extra member named ../escape.dbn.zst
    NON_CBBO = "non_cbbo"  # an extra member opra-pillar-YYYYMMDD.ohlcv-1m.dbn.zst (schema ohlcv-1m)
    MISLABELED = "mislabeled"  # the last day's .cbbo-1m. member holds an ohlcv-1m header
    EMPTY_DAY = "empty_day"  # the last day's file has a header and zero records
    TRUNCATED = "truncated"  # the last day's file is cut in half (manifest hash matches the cut bytes)
    CORRUPT_FRAME = "corrupt_frame"  # one byte flipped inside the last day's zstd frame (hash matches)
    MISSING_MEMBER = "missing_member"  # the manifest lists the last day's file but the ZIP lacks it


def member_name(day: dt.date, schema: str = "cbbo-1m") -> str:
    return f"opra-pillar-{day:%Y%m%d}.{schema}.dbn.zst"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ohlcv_file(day: dt.date) -> bytes:
    """A tiny valid DBN ohlcv-1m file (a schema the converter must refuse)."""
    import databento_dbn as dbn
    import zstandard

    from cxq_data.options.synth import day_start_ns

    metadata = dbn.Metadata(
        dataset="OPRA.PILLAR", start=day_start_ns(day), end=day_start_ns(day) + 86_400 * 10**9,
        stype_in=dbn.SType.RAW_SYMBOL, stype_out=dbn.SType.INSTRUMENT_ID, schema=dbn.Schema.OHLCV_1M,
        symbols=[], mappings=[], version=3,
    )
    rows = np.zeros(2, dtype=np.dtype(dbn.OHLCVMsg._dtypes))
    rows["length"] = rows.dtype.itemsize // 4
    rows["rtype"] = int(dbn.RType.OHLCV_1M.value)
    rows["ts_event"] = day_start_ns(day) + np.array([870, 871]) * 60 * 10**9
    body = bytes(metadata.encode()) + rows.tobytes()
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(body)


def _day_files(days: list[dt.date], defects: set[ZipDefect], *, instruments: int, minutes: int, seed: int,
               version: int, stype_in: str, id_start: int | None) -> tuple[dict[str, bytes], list]:
    from cxq_data.options.synth import dbn_bytes, generate_day

    files: dict[str, bytes] = {}
    generated = []
    for i, day in enumerate(days):
        last = i == len(days) - 1
        empty = last and ZipDefect.EMPTY_DAY in defects
        sd = generate_day(day, instruments=0 if empty else instruments, minutes=minutes, seed=seed, id_start=id_start)
        generated.append(sd)
        data = dbn_bytes([sd], version=version, stype_in=stype_in)
        if last and ZipDefect.MISLABELED in defects:
            data = _ohlcv_file(day)
        if last and ZipDefect.TRUNCATED in defects:
            data = data[: len(data) // 2]
        if last and ZipDefect.CORRUPT_FRAME in defects:
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0xFF
            data = bytes(flipped)
        files[member_name(day)] = data
    if ZipDefect.NON_CBBO in defects:
        files[member_name(days[-1], "ohlcv-1m")] = _ohlcv_file(days[-1])
    return files, generated


def _support_files(days: list[dt.date], generated: list, job_id: str, stype_in: str) -> dict[str, bytes]:
    from cxq_data.options.synth import symbology_document

    end = days[-1] + dt.timedelta(days=1)
    symbology = symbology_document(generated, stype_in=stype_in)
    metadata = {
        "job_id": job_id, "synthetic": True,
        "query": {"dataset": "OPRA.PILLAR", "schema": "cbbo-1m", "symbols": symbology["symbols"],
                  "stype_in": stype_in, "stype_out": "instrument_id", "start": f"{days[0]}T00:00:00.000000000Z",
                  "end": f"{end}T00:00:00.000000000Z", "encoding": "dbn", "compression": "zstd",
                  "split_duration": "day"},
    }
    condition = [{"date": d.isoformat(), "condition": "available", "last_modified_date": d.isoformat()} for d in days]
    return {
        "metadata.json": json.dumps(metadata, indent=2).encode(),
        "symbology.json": json.dumps(symbology).encode(),
        "condition.json": json.dumps(condition, indent=2).encode(),
    }


def write_batch_zip(path: Path | str, days: list[dt.date], *,
                    corrupt: ZipDefect | str | Iterable[ZipDefect | str] | None = None,
                    instruments: int = 60, minutes: int = 30, seed: int = 0, version: int = 3,
                    stype_in: str = "parent", id_start: int | None = None, job_id: str | None = None) -> Path:
    """Write a batch ZIP for ``days`` (UTC days, one member each); ``corrupt`` injects :class:`ZipDefect`s."""
    if not days:
        raise ValueError("write_batch_zip needs at least one day")
    if corrupt is None:
        defects: set[ZipDefect] = set()
    elif isinstance(corrupt, (str, ZipDefect)):
        defects = {ZipDefect(corrupt)}
    else:
        defects = {ZipDefect(c) for c in corrupt}
    path = Path(path)
    job_id = job_id or path.stem
    ordered = sorted(days)
    first, last = ordered[0], ordered[-1]
    data_files, generated = _day_files(ordered, defects, instruments=instruments, minutes=minutes, seed=seed,
                                       version=version, stype_in=stype_in, id_start=id_start)
    support = _support_files(ordered, generated, job_id, stype_in)
    entries = [{"filename": name, "size": len(data), "hash": f"sha256:{_sha256(data)}"}
               for name, data in [*support.items(), *data_files.items()]]
    if ZipDefect.BAD_HASH in defects:
        for entry in entries:
            if entry["filename"] == member_name(last):
                entry["hash"] = "sha256:" + "0" * 64
    members = {"manifest.json": json.dumps({"job_id": job_id, "files": entries}, indent=2).encode(),
               **support, **data_files}
    if ZipDefect.MISSING_MEMBER in defects:
        members.pop(member_name(last))
    if ZipDefect.ZIP_SLIP in defects:
        members["../escape.dbn.zst"] = data_files[member_name(first)]
    stamp = (last.year, last.month, last.day, 0, 0, 0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=stamp), data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path
