"""The project's synthetic OPRA cbbo-1m generator: real DBN format, batch ZIPs, injected defects."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path

import databento_dbn as dbn
import numpy as np
import pytest
import zstandard

from cxq_data.errors import DataFormatError
from cxq_data.options.dbn_convert import SchemaMismatchError, convert_dbn
from cxq_data.options.synth import ZipDefect, generate_day, write_batch_zip, write_cbbo_day

DAY = dt.date(2025, 8, 7)
DAYS = [DAY, dt.date(2025, 8, 8)]


def _decode(path: Path) -> tuple[dbn.Metadata, list]:
    decoder = dbn.DBNDecoder(upgrade_policy=dbn.VersionUpgradePolicy.AS_IS)
    decoder.write(zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()))
    items = decoder.decode()
    return items[0], items[1:]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_day_is_real_dbn_decoded_by_databento(tmp_path: Path, version: int) -> None:
    path = write_cbbo_day(tmp_path / "d.dbn.zst", DAY, instruments=60, minutes=30, version=version)
    metadata, records = _decode(path)
    assert (metadata.version, metadata.dataset, str(metadata.schema)) == (version, "OPRA.PILLAR", "cbbo-1m")
    assert len(metadata.mappings) == 60
    assert all(iv["start_date"] == DAY and iv["end_date"] == DAY + dt.timedelta(days=1)
               for spans in metadata.mappings.values() for iv in spans)
    assert records and all(isinstance(r, dbn.CBBOMsg) and r.rtype == dbn.RType.CBBO_1M for r in records)
    assert any(r.ts_event == dbn.UNDEF_TIMESTAMP and r.levels[0].ask_px == dbn.UNDEF_PRICE for r in records)
    assert any(r.levels[0].bid_px == dbn.UNDEF_PRICE and r.levels[0].ask_px != dbn.UNDEF_PRICE
               and r.levels[0].bid_sz == 0 for r in records)
    assert zstandard.get_frame_parameters(path.read_bytes()).has_checksum


def test_records_are_byte_identical_to_databento_dbn_encoding() -> None:
    records = generate_day(DAY).records
    for r in records[:: max(1, len(records) // 50)]:
        pair = dbn.ConsolidatedBidAskPair(bid_px=int(r["bid_px_00"]), ask_px=int(r["ask_px_00"]),
                                          bid_sz=int(r["bid_sz_00"]), ask_sz=int(r["ask_sz_00"]),
                                          bid_pb=int(r["bid_pb_00"]), ask_pb=int(r["ask_pb_00"]))
        msg = dbn.CBBOMsg(rtype=int(r["rtype"]), publisher_id=int(r["publisher_id"]),
                          instrument_id=int(r["instrument_id"]), ts_event=int(r["ts_event"]),
                          price=int(r["price"]), size=int(r["size"]), side=dbn.Side.NONE,
                          ts_recv=int(r["ts_recv"]), flags=int(r["flags"]), levels=pair)
        assert bytes(msg) == r.tobytes()


def test_generator_is_deterministic_and_ids_change_per_day(tmp_path: Path) -> None:
    a = write_cbbo_day(tmp_path / "a.dbn.zst", DAY, seed=3).read_bytes()
    b = write_cbbo_day(tmp_path / "b.dbn.zst", DAY, seed=3).read_bytes()
    c = write_cbbo_day(tmp_path / "c.dbn.zst", DAY, seed=4).read_bytes()
    assert a == b != c
    one, two = generate_day(DAYS[0], id_start=100), generate_day(DAYS[1], id_start=100)
    assert set(one.id_to_symbol) == set(two.id_to_symbol)
    assert one.id_to_symbol != two.id_to_symbol
    assert np.all(np.diff(one.records["ts_recv"].astype(np.int64)) >= 0)


def test_a_day_never_runs_past_midnight_utc() -> None:
    from cxq_data.options.synth import MAX_MINUTES

    last = generate_day(DAY, instruments=2, minutes=MAX_MINUTES).records["ts_recv"].max()
    assert dt.datetime.fromtimestamp(int(last) / 1e9, dt.UTC).date() == DAY
    with pytest.raises(ValueError, match=r"minutes must be 0..569 \(14:30Z to midnight UTC\), got 570"):
        generate_day(DAY, minutes=MAX_MINUTES + 1)


def _manifest(zf: zipfile.ZipFile) -> dict[str, dict]:
    return {f["filename"]: f for f in json.loads(zf.read("manifest.json"))["files"]}


def test_batch_zip_layout_hashes_and_symbology(tmp_path: Path) -> None:
    path = write_batch_zip(tmp_path / "OPRA-TEST.zip", DAYS)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert names == {"manifest.json", "metadata.json", "symbology.json", "condition.json",
                         "opra-pillar-20250807.cbbo-1m.dbn.zst", "opra-pillar-20250808.cbbo-1m.dbn.zst"}
        manifest = _manifest(zf)
        for name in names - {"manifest.json"}:
            data = zf.read(name)
            assert manifest[name] == {"filename": name, "size": len(data),
                                      "hash": "sha256:" + hashlib.sha256(data).hexdigest()}
        symbology = json.loads(zf.read("symbology.json"))
        assert symbology["stype_in"] == "parent" and symbology["symbols"] == ["SPY.OPT"]
        assert [c["date"] for c in json.loads(zf.read("condition.json"))] == ["2025-08-07", "2025-08-08"]
        (tmp_path / "d1.dbn.zst").write_bytes(zf.read("opra-pillar-20250807.cbbo-1m.dbn.zst"))
    assert write_batch_zip(tmp_path / "again.zip", DAYS, job_id="OPRA-TEST").read_bytes() == path.read_bytes()
    result = convert_dbn(tmp_path / "d1.dbn.zst", tmp_path / "d1.parquet")
    assert result.rows > 0 and result.date == DAY


def _member(path: Path, name: str, out: Path) -> Path:
    with zipfile.ZipFile(path) as zf:
        out.write_bytes(zf.read(name))
    return out


def test_batch_zip_defects(tmp_path: Path) -> None:
    last = "opra-pillar-20250808.cbbo-1m.dbn.zst"
    bad_hash = write_batch_zip(tmp_path / "h.zip", DAYS, corrupt="bad_hash")
    with zipfile.ZipFile(bad_hash) as zf:
        assert _manifest(zf)[last]["hash"] != "sha256:" + hashlib.sha256(zf.read(last)).hexdigest()
    with zipfile.ZipFile(write_batch_zip(tmp_path / "s.zip", DAYS, corrupt=ZipDefect.ZIP_SLIP)) as zf:
        assert "../escape.dbn.zst" in zf.namelist()
    with zipfile.ZipFile(write_batch_zip(tmp_path / "m.zip", DAYS, corrupt="missing_member")) as zf:
        assert last in _manifest(zf) and last not in zf.namelist()
    both = write_batch_zip(tmp_path / "e.zip", DAYS, corrupt=["empty_day", "non_cbbo"])
    empty = convert_dbn(_member(both, last, tmp_path / "empty.dbn.zst"), tmp_path / "empty.parquet")
    assert empty.rows == 0 and empty.date == DAYS[1]
    with pytest.raises(SchemaMismatchError, match="ohlcv-1m"):
        convert_dbn(_member(both, "opra-pillar-20250808.ohlcv-1m.dbn.zst", tmp_path / "o.dbn.zst"), tmp_path / "o.pq")
    for defect, message in [("mislabeled", "ohlcv-1m"), ("truncated", "truncated"), ("corrupt_frame", "corrupt")]:
        zpath = write_batch_zip(tmp_path / f"{defect}.zip", DAYS, corrupt=defect)
        with zipfile.ZipFile(zpath) as zf:  # the manifest matches: only conversion can catch these
            assert _manifest(zf)[last]["hash"] == "sha256:" + hashlib.sha256(zf.read(last)).hexdigest()
        with pytest.raises(DataFormatError, match=message):
            convert_dbn(_member(zpath, last, tmp_path / f"{defect}.dbn.zst"), tmp_path / f"{defect}.parquet")
    with pytest.raises(ValueError):
        write_batch_zip(tmp_path / "x.zip", DAYS, corrupt="no_such_defect")
