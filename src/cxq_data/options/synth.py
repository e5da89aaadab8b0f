"""Small synthetic OPRA ``cbbo-1m`` DBN files and Databento-style batch ZIPs for tests and the demo.

Only the *format* is real: the header comes from ``databento_dbn.Metadata.encode`` (DBN v1/v2/v3),
records use the 80-byte ``CBBOMsg`` layout (rtype 193, fixed-point 1e-9 prices, ``UNDEF_PRICE`` /
``UNDEF_TIMESTAMP`` sentinels, flags 194, publisher 30), and the file is one zstd frame with a
content checksum, like Databento's. The market is a toy: an SPY-like chain near spot, quotes from
a smooth intrinsic + time-value curve, sparse activity, forward-filled last trade. Each day has a
few all-UNDEF pre-open rows and no-bid rows (UNDEF bid, size 0) for far out-of-the-money puts.

Instrument ids are redrawn every day (as OPRA's): with ``id_start`` fixed, the same ids name
different contracts on different days, which is what per-day symbol mapping must get right.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from cxq_data.atomic import atomic_write_bytes
from cxq_data.options.occ import format_occ

NS = 1_000_000_000
MIN_NS = 60 * NS
UNDEF_PRICE = 2**63 - 1
UNDEF_TS = 2**64 - 1
OPRA_PUBLISHER = 30
FLAGS = 194  # F_LAST | F_TOB | F_PUBLISHER_SPECIFIC, as in real OPRA cbbo-1m
CBBO_1M_RTYPE = 193
MappingStyle = Literal["raw", "parent_key", "none"]


@dataclasses.dataclass(frozen=True)
class SynthDay:
    day: dt.date
    records: np.ndarray  # CBBOMsg._dtypes, sorted by ts_recv
    id_to_symbol: dict[int, str]


@dataclasses.dataclass
class _Interval:  # duck-types databento_dbn's MappingInterval for Metadata(...)
    start_date: dt.date
    end_date: dt.date
    symbol: str


@dataclasses.dataclass
class _Mapping:  # duck-types databento_dbn's SymbolMapping
    raw_symbol: str
    intervals: list[_Interval]


def record_dtype() -> np.dtype:
    import databento_dbn

    return np.dtype(databento_dbn.CBBOMsg._dtypes)


def day_start_ns(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86_400 * NS


def option_chain(day: dt.date, instruments: int, spot: float = 500.0) -> list[tuple[dt.date, str, float]]:
    """(expiration, right, strike) for ``instruments`` contracts: 0DTE + weekly Fridays, $2.5 strikes."""
    n_exp = max(1, min(4, instruments // 16))
    fridays = [day + dt.timedelta(days=k) for k in range(1, 40) if (day + dt.timedelta(days=k)).weekday() == 4]
    exps = [day, *fridays][:n_exp]
    pairs_per_exp = -(-instruments // (2 * n_exp))
    chain = []
    for exp in exps:
        for j in range(pairs_per_exp):
            strike = float(round(spot) + 2.5 * (j - pairs_per_exp // 2))
            chain += [(exp, "C", strike), (exp, "P", strike)]
    return chain[:instruments]


def _theo(spot: float, strike: np.ndarray, is_call: np.ndarray, dte: np.ndarray) -> np.ndarray:
    intrinsic = np.where(is_call, np.maximum(spot - strike, 0.0), np.maximum(strike - spot, 0.0))
    time_value = 1.5 * np.sqrt(dte + 0.3) * np.exp(-np.abs(strike - spot) / (2.0 + 2.0 * np.sqrt(dte)))
    return intrinsic + time_value


MAX_MINUTES = 24 * 60 - (14 * 60 + 30) - 1  # the last bar of a day stamped before midnight UTC


def generate_day(day: dt.date, *, instruments: int = 60, minutes: int = 30, seed: int = 0,
                 id_start: int | None = None, density: float = 0.7) -> SynthDay:
    """Records of one synthetic day (RTH from 14:30Z), plus its instrument_id -> OCC symbol map."""
    if not 0 <= minutes <= MAX_MINUTES:  # more would run past midnight UTC, into the next day's file
        raise ValueError(f"minutes must be 0..{MAX_MINUTES} (14:30Z to midnight UTC), got {minutes}")
    rng = np.random.default_rng([seed, day.toordinal()])
    chain = option_chain(day, instruments)
    n = len(chain)
    symbols = [format_occ("SPY", e, r, k) for e, r, k in chain]
    if id_start is None:
        ids = rng.choice(np.arange(1_000_000, 50_000_000, dtype=np.uint32), size=n, replace=False)
    else:  # the same id pool every day, assigned to different contracts
        ids = (id_start + rng.permutation(n)).astype(np.uint32)
    strike = np.array([k for _, _, k in chain])
    is_call = np.array([r == "C" for _, r, _ in chain])
    dte = np.array([(e - day).days for e, _, _ in chain], dtype=np.float64)
    dtype = record_dtype()
    open_ns = day_start_ns(day) + (14 * 60 + 30) * MIN_NS
    last_px = np.full(n, UNDEF_PRICE, dtype=np.int64)
    last_sz = np.zeros(n, dtype=np.uint32)
    last_ts = np.full(n, UNDEF_TS, dtype=np.uint64)
    parts = [_preopen_rows(rng, ids, open_ns, dtype)] if n else []
    spot = 500.0
    for m in range(minutes):
        spot *= float(np.exp(rng.normal(0.0, 0.0005)))
        active = np.nonzero(rng.random(n) < density)[0]
        ts_recv = open_ns + (m + 1) * MIN_NS
        parts.append(_minute_rows(rng, dtype, active, ids, strike, is_call, dte, spot, ts_recv,
                                  last_px, last_sz, last_ts))
    records = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    records = records[np.argsort(records["ts_recv"], kind="stable")]
    records["length"] = dtype.itemsize // 4
    records["rtype"] = CBBO_1M_RTYPE
    records["publisher_id"] = OPRA_PUBLISHER
    records["side"] = b"N"
    records["flags"] = FLAGS
    return SynthDay(day, records, {int(i): s for i, s in zip(ids, symbols)})


def _preopen_rows(rng: np.random.Generator, ids: np.ndarray, open_ns: int, dtype: np.dtype) -> np.ndarray:
    """A few all-UNDEF rows before the open (Databento's real OPRA sample starts with one)."""
    count = max(1, len(ids) // 20)
    rows = np.zeros(count, dtype=dtype)
    rows["instrument_id"] = rng.choice(ids, size=count, replace=False)
    rows["ts_recv"] = open_ns - rng.integers(1, 60, size=count) * MIN_NS
    rows["ts_event"] = UNDEF_TS
    rows["price"] = rows["bid_px_00"] = rows["ask_px_00"] = UNDEF_PRICE
    return rows


def _minute_rows(rng: np.random.Generator, dtype: np.dtype, active: np.ndarray, ids: np.ndarray,
                 strike: np.ndarray, is_call: np.ndarray, dte: np.ndarray, spot: float, ts_recv: int,
                 last_px: np.ndarray, last_sz: np.ndarray, last_ts: np.ndarray) -> np.ndarray:
    theo = _theo(spot, strike[active], is_call[active], dte[active])
    half_spread = np.clip(np.round(theo * 0.02, 2), 0.01, 0.25)
    ask = np.maximum(np.round(theo + half_spread, 2), 0.02)
    bid = np.round(theo - half_spread, 2)
    no_bid = bid < 0.01
    traded = rng.random(active.size) < 0.25
    tr = active[traded]
    last_px[tr] = np.round(np.where(no_bid[traded], ask[traded], (bid[traded] + ask[traded]) / 2) * 100) * 10_000_000
    last_sz[tr] = rng.integers(1, 20, size=tr.size)
    last_ts[tr] = np.uint64(ts_recv) - rng.integers(1_000, MIN_NS - 1, size=tr.size).astype(np.uint64)
    rows = np.zeros(active.size, dtype=dtype)
    rows["ts_recv"] = ts_recv
    rows["ts_event"] = last_ts[active]
    rows["instrument_id"] = ids[active]
    rows["price"] = last_px[active]
    rows["size"] = last_sz[active]
    rows["bid_px_00"] = np.where(no_bid, UNDEF_PRICE, np.round(bid * 100).astype(np.int64) * 10_000_000)
    rows["ask_px_00"] = np.round(ask * 100).astype(np.int64) * 10_000_000
    rows["bid_sz_00"] = np.where(no_bid, 0, rng.integers(1, 500, size=active.size))
    rows["ask_sz_00"] = rng.integers(1, 500, size=active.size)
    rows["bid_pb_00"] = np.where(no_bid, 0, 20 + rng.integers(0, 19, size=active.size))
    rows["ask_pb_00"] = 20 + rng.integers(0, 19, size=active.size)
    return rows


def encode_header(days: Sequence[SynthDay], *, version: int = 3, stype_in: str = "raw_symbol",
                  mapping: MappingStyle = "raw", schema: str = "cbbo-1m", dataset: str = "OPRA.PILLAR") -> bytes:
    """DBN metadata via ``databento_dbn.Metadata.encode`` with one mapping interval per symbol-day."""
    import databento_dbn as dbn

    by_key: dict[str, list[_Interval]] = {}
    for sd in days:
        nxt = sd.day + dt.timedelta(days=1)
        for iid, sym in sorted(sd.id_to_symbol.items(), key=lambda kv: kv[1]):
            key = "SPY.OPT" if mapping == "parent_key" else sym
            by_key.setdefault(key, []).append(_Interval(sd.day, nxt, str(iid)))
    mappings = [] if mapping == "none" else [_Mapping(k, v) for k, v in sorted(by_key.items())]
    raw_symbols = sorted({s for sd in days for s in sd.id_to_symbol.values()})
    symbols = ["SPY.OPT"] if stype_in == "parent" else raw_symbols
    start = day_start_ns(days[0].day)
    metadata = dbn.Metadata(
        dataset=dataset, start=start, end=day_start_ns(days[-1].day) + 86_400 * NS,
        stype_in=dbn.SType(stype_in), stype_out=dbn.SType.INSTRUMENT_ID, schema=dbn.Schema(schema),
        symbols=symbols, mappings=mappings, version=version,
    )
    return bytes(metadata.encode())


def dbn_bytes(days: Sequence[SynthDay], *, version: int = 3, stype_in: str = "raw_symbol",
              mapping: MappingStyle = "raw", compress: bool = True) -> bytes:
    """A whole DBN file (header + records) as one zstd frame with checksum, or plain."""
    import zstandard

    body = np.concatenate([sd.records for sd in days]).tobytes()
    raw = encode_header(days, version=version, stype_in=stype_in, mapping=mapping) + body
    if not compress:
        return raw
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw)


def write_cbbo_file(path: Path | str, days: Sequence[dt.date], *, instruments: int = 60, minutes: int = 30,
                    seed: int = 0, version: int = 3, stype_in: str = "raw_symbol", mapping: MappingStyle = "raw",
                    id_start: int | None = None, compress: bool = True) -> Path:
    """Write one DBN file covering ``days`` (one set of per-day mapping intervals per day)."""
    generated = [generate_day(d, instruments=instruments, minutes=minutes, seed=seed, id_start=id_start)
                 for d in days]
    data = dbn_bytes(generated, version=version, stype_in=stype_in, mapping=mapping, compress=compress)
    return atomic_write_bytes(path, data)


def write_cbbo_day(path: Path | str, day: dt.date, *, instruments: int = 60, minutes: int = 30, seed: int = 0,
                   version: int = 3, stype_in: str = "raw_symbol", mapping: MappingStyle = "raw",
                   id_start: int | None = None) -> Path:
    """Write a one-day synthetic OPRA cbbo-1m ``.dbn.zst`` (``minutes=0`` and ``instruments=0`` give 0 rows)."""
    return write_cbbo_file(path, [day], instruments=instruments, minutes=minutes, seed=seed, version=version,
                           stype_in=stype_in, mapping=mapping, id_start=id_start)


def symbology_document(days: Sequence[SynthDay], *, stype_in: str = "raw_symbol") -> dict:
    """``symbology.json`` in the shape of ``symbology.resolve`` (raw OCC keys, per-day intervals)."""
    result: dict[str, list[dict[str, str]]] = {}
    for sd in days:
        nxt = (sd.day + dt.timedelta(days=1)).isoformat()
        for iid, sym in sd.id_to_symbol.items():
            result.setdefault(sym, []).append({"d0": sd.day.isoformat(), "d1": nxt, "s": str(iid)})
    return {
        "result": {k: result[k] for k in sorted(result)},
        "symbols": ["SPY.OPT"] if stype_in == "parent" else sorted(result),
        "stype_in": stype_in, "stype_out": "instrument_id",
        "start_date": days[0].day.isoformat() if days else None,
        "end_date": (days[-1].day + dt.timedelta(days=1)).isoformat() if days else None,
        "partial": [], "not_found": [], "message": "OK", "status": 0,
    }


# write_batch_zip lives in synth_batch.py (kept apart so each module stays small).
from cxq_data.options.synth_batch import ZipDefect, write_batch_zip

__all__ = ["SynthDay", "ZipDefect", "dbn_bytes", "generate_day", "symbology_document", "write_batch_zip",
           "write_cbbo_day", "write_cbbo_file"]
