"""Stooq bulk ZIP import: one raw file per member, skipped members, idempotency, workers, batch writes."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from cxq_data.ingest import raw_batch
from cxq_data.ingest.importer import import_file
from cxq_data.ingest.raw_batch import RawBatchWriter
from cxq_data.normalize import normalize_record
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse, list_raw, list_raw_symbols

HEADER = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n"


def member(ticker: str, closes: list[float], start: int = 20240603) -> str:
    rows = [f"{ticker},D,{start + i},000000,{c},{c + 1},{c - 1},{c},{1000 + i},0\n" for i, c in enumerate(closes)]
    return HEADER + "".join(rows)


def build_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def sample_members() -> dict[str, str]:
    return {
        "data/daily/us/nasdaq stocks/1/aapl.us.txt": member("AAPL.US", [190.5, 191.0, 192.25]),
        "data/daily/us/nyse stocks/1/brk-b.us.txt": member("BRK-B.US", [400.0, 401.5]),
        "data/daily/us/nyse stocks/1/bad.us.txt": member("BAD.US", [1.0]).replace(",1.0,1000,", ",x1,1000,"),
        "data/daily/us/nyse stocks/1/empty.us.txt": HEADER,
        "data/daily/us/nyse stocks/1/html.us.txt": "<html><body>Exceeded the daily hits limit</body></html>",
        "data/daily/us/nyse stocks/1/we$ird.us.txt": member("WE$IRD.US", [1.0]),
        "data/daily/us/nasdaq stocks/2/aapl.us.txt": member("AAPL.US", [9.0]),
        "data/daily/us/nyse stocks/1/msft.us.txt": member("IBM.US", [1.0]),
        "data/daily/us/readme.md": "not data",
    }


@pytest.fixture
def layout(data_dir: Path) -> DataLayout:
    return DataLayout(data_dir)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_bulk_zip_members_become_per_symbol_raw_files(layout, tmp_path):
    members = sample_members()
    src = build_zip(tmp_path / "d_us_txt.zip", members)
    summary = import_file(layout, src, "stooq", workers=1)
    assert summary.imported == ["AAPL", "BRK.B"] and summary.rows == 5
    reasons = {s.member.rsplit("/", 1)[-1]: (s.reason, s.is_error) for s in summary.skipped}
    assert reasons["bad.us.txt"][1] and "line 2 column <CLOSE>: not a number" in reasons["bad.us.txt"][0]
    assert reasons["empty.us.txt"] == ("no rows", False)
    assert reasons["html.us.txt"][1] and reasons["html.us.txt"][0].startswith(
        "not a Stooq bulk member: first line '<html><body>Exceeded the daily hits limit")
    assert reasons["we$ird.us.txt"][0].startswith("invalid ticker") and not reasons["we$ird.us.txt"][1]
    assert reasons["msft.us.txt"][1] and "does not match" in reasons["msft.us.txt"][0]
    assert reasons["readme.md"] == ("not a .txt member", False)
    duplicate = [s for s in summary.skipped if s.member == "data/daily/us/nasdaq stocks/2/aapl.us.txt"]
    assert duplicate and "duplicate symbol, kept data/daily/us/nasdaq stocks/1/aapl.us.txt" in duplicate[0].reason
    assert not summary.ok  # broken members make the run fail (exit 1) after importing the rest

    assert list_raw_symbols(layout, "stooq") == ["AAPL", "BRK.B"]  # _bulk is not a symbol
    [record] = list_raw(layout, "stooq", "BRK.B")
    assert record.path.read_bytes() == members["data/daily/us/nyse stocks/1/brk-b.us.txt"].encode()
    assert record.manifest["format"] == "stooq_bulk_txt" and record.manifest["origin"] == "d_us_txt.zip"
    assert record.manifest["member"] == "data/daily/us/nyse stocks/1/brk-b.us.txt"
    stored_zip = layout.root / record.manifest["bulk_file"]
    assert stored_zip.parent == layout.raw / "stooq" / "_bulk"
    assert stored_zip.read_bytes() == src.read_bytes()
    zip_manifest = json.loads(stored_zip.with_name(stored_zip.name + ".manifest.json").read_text())
    assert zip_manifest["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    bars = normalize_record(list_raw(layout, "stooq", "AAPL")[0]).bars
    assert bars.column("close").to_pylist() == [190.5, 191.0, 192.25]
    assert not [p for p in files(layout.root) if ".tmp-" in p.name or p.name.endswith(".partial")]


def test_same_zip_twice_adds_no_files_and_a_changed_member_adds_one(layout, tmp_path):
    members = sample_members()
    src = build_zip(tmp_path / "d_us_txt.zip", members)
    import_file(layout, src, "stooq", workers=1)
    before = files(layout.root)
    again = import_file(layout, src, "stooq", workers=1)
    assert again.imported == [] and again.unchanged == ["AAPL", "BRK.B"]
    assert files(layout.root) == before

    members["data/daily/us/nasdaq stocks/1/aapl.us.txt"] = member("AAPL.US", [190.5, 191.0, 192.25, 193.0])
    changed = build_zip(tmp_path / "d_us_txt_v2.zip", members)
    third = import_file(layout, changed, "stooq", workers=1)
    assert third.imported == ["AAPL"] and third.unchanged == ["BRK.B"]
    assert len(list_raw(layout, "stooq", "AAPL")) == 2 and len(list_raw(layout, "stooq", "BRK.B")) == 1
    assert len(list((layout.raw / "stooq" / "_bulk").glob("*.zip"))) == 2


def test_worker_processes_give_the_same_raw_content(tmp_path):
    members = {f"data/daily/us/nyse stocks/{i // 50 + 1}/s{i:03d}.us.txt": member(f"S{i:03d}.US", [10.0 + i, 11.0])
               for i in range(150)}
    src = build_zip(tmp_path / "many.zip", members)
    contents = []
    for workers in (1, 2):
        layout = DataLayout(tmp_path / f"data{workers}")
        summary = import_file(layout, src, "stooq", workers=workers)
        assert len(summary.imported) == 150 and summary.rows == 300 and summary.ok
        contents.append({(r.manifest["symbol"], r.sha256) for s in summary.imported for r in list_raw(layout, "stooq", s)})
    assert contents[0] == contents[1] and len(contents[0]) == 150


def test_symbol_option_imports_one_member(layout, tmp_path):
    src = build_zip(tmp_path / "d.zip", sample_members())
    summary = import_file(layout, src, "stooq", "brk.b", workers=1)
    assert summary.imported == ["BRK.B"] and list_raw_symbols(layout, "stooq") == ["BRK.B"]


def test_member_paths_never_escape_the_data_dir(layout, tmp_path):
    members = {"../../evil.us.txt": member("EVIL.US", [1.0]), "x/..%2f..%2fpwn.us.txt": member("PWN.US", [1.0])}
    src = build_zip(tmp_path / "evil.zip", members)
    summary = import_file(layout, src, "stooq", workers=1)
    assert summary.imported == ["EVIL"]
    assert "invalid ticker" in summary.skipped[0].reason
    assert all(layout.root in p.parents for p in files(layout.root))
    assert not (tmp_path / "evil.us.txt").exists()


def test_corrupt_zip_is_refused(layout, tmp_path):
    src = tmp_path / "broken.zip"
    src.write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    with pytest.raises(Exception, match="broken.zip: not a readable ZIP"):
        import_file(layout, src, "stooq")
    assert not layout.raw.exists()


def test_batch_writer_publishes_on_flush_and_discards_on_error(layout):
    with pytest.raises(RuntimeError), RawBatchWriter(layout) as writer:
        writer.add(RawResponse("stooq", "AAA", b"abc", "txt"), hashlib.sha256(b"abc").hexdigest())
        raise RuntimeError("crash before the barrier")
    assert files(layout.root) == []  # only the (now empty) folder: no temp, no half file
    with RawBatchWriter(layout) as writer:
        record = writer.add(RawResponse("stooq", "AAA", b"abc", "txt"), hashlib.sha256(b"abc").hexdigest())
        assert list_raw(layout, "stooq", "AAA") == []  # invisible until flushed
    [stored] = list_raw(layout, "stooq", "AAA")
    assert stored.path == record.path and stored.read_bytes() == b"abc"


@pytest.mark.parametrize("count", [2, raw_batch.SYNC_BATCH_FROM])
def test_batch_writer_makes_temps_durable_before_publishing(layout, monkeypatch, count):
    """A few files: an fsync per temp and folder; a large batch: a sync() before publishing and one after."""
    events = []

    def published() -> int:
        return sum(len(list_raw(layout, "stooq", f"S{i}")) for i in range(count))

    monkeypatch.setattr(raw_batch, "sync_filesystem", lambda path: events.append(("sync", published())))
    monkeypatch.setattr(raw_batch, "fsync_path",
                        lambda path: events.append(("fsync_dir" if path.is_dir() else "fsync", published())))
    with RawBatchWriter(layout) as writer:
        for i in range(count):
            writer.add(RawResponse("stooq", f"S{i}", b"x%d" % i, "txt"), hashlib.sha256(b"x%d" % i).hexdigest())
    assert published() == count
    if count < raw_batch.SYNC_BATCH_FROM:
        assert events == [("fsync", 0)] * (2 * count) + [("fsync_dir", count)] * count
    else:
        assert events == [("sync", 0), ("sync", count)]


def test_member_with_bad_crc_is_skipped_as_error_and_others_imported(layout, tmp_path):
    src = tmp_path / "crc.zip"
    good, bad = member("GOOD.US", [5.0]), member("CRC.US", [7.0])
    with zipfile.ZipFile(src, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("d/good.us.txt", good)
        archive.writestr("d/crc.us.txt", bad)
    raw = src.read_bytes()
    src.write_bytes(raw.replace(b"CRC.US,D,20240603,000000,7.0", b"CRC.US,D,20240603,000000,7.1"))
    summary = import_file(layout, src, "stooq", workers=1)
    assert summary.imported == ["GOOD"]
    [skipped] = summary.skipped
    assert skipped.symbol == "CRC" and skipped.is_error and "unreadable member" in skipped.reason


def test_bulk_import_process_and_serving_never_import_pandas(tmp_path):
    """pyarrow imports pandas on the first pa.array / to_numpy / Schema.empty_table (~0.5-0.8 s per
    process, i.e. per Snakemake job): the Stooq path from ZIP to views must not touch any of them."""
    import subprocess
    import sys

    history = build_zip(tmp_path / "d_us_txt.zip", {
        "data/daily/us/nasdaq stocks/1/aapl.us.txt": member("AAPL.US", [190.5, 191.0, 192.25]),
        "data/daily/us/nyse stocks/1/brk-b.us.txt": member("BRK-B.US", [400.0, 401.5])})
    new_day = build_zip(tmp_path / "day.zip", {
        "data/daily/us/nasdaq stocks/1/aapl.us.txt": member("AAPL.US", [193.0], start=20240610),
        "data/daily/us/nyse stocks/1/brk-b.us.txt": member("BRK-B.US", [402.0], start=20240610)})
    script = f"""
import sys
from cxq_data.db import refresh_serving
from cxq_data.ingest.importer import import_file
from cxq_data.lake_batch import process_batch
from cxq_data.paths import DataLayout
from pathlib import Path
layout = DataLayout(Path({str(tmp_path / "data")!r}))
for path in ({str(history)!r}, {str(new_day)!r}):  # full path, then the append path
    imported = import_file(layout, path, "stooq", workers=1)
    batch = process_batch(layout, "stooq", imported.imported, workers=1, progress=False, keep_tables=True)
    assert batch.summary.ok, batch.summary.rows()
    refresh_serving(layout, staged=batch.staged)
rows = [r["status"] for r in batch.summary.rows()]
one_pass = DataLayout(Path({str(tmp_path / "one_pass")!r}))
for path in ({str(history)!r}, {str(new_day)!r}):  # the same through `ingest import --process`
    summary = import_file(one_pass, path, "stooq", workers=1, process=True, keep_tables=True)
    assert summary.ok, summary.as_dict()
    refresh_serving(one_pass, staged=summary.processed.staged)
print(rows, "pandas" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.strip() == "['written', 'written'] False"


def test_the_zip_is_read_once_per_run_and_a_rewritten_zip_is_read_anew(layout, tmp_path, monkeypatch):
    """Each ZipFile open parses the whole central directory (~50 ms for a 5,000-member file): once per
    run, not once per chunk; and a file rewritten at the same path is never served from a stale handle."""
    from cxq_data.ingest import bulk_import

    opened: list[str] = []
    real = zipfile.ZipFile

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, file, *args, **kwargs):
            opened.append(str(file))
            super().__init__(file, *args, **kwargs)

    monkeypatch.setattr(bulk_import.zipfile, "ZipFile", Counting)
    n = 3 * bulk_import.CHUNK_MEMBERS  # three chunks
    names = {f"data/daily/us/nyse stocks/1/t{i:03d}.us.txt": member(f"T{i:03d}.US", [1.0 + i]) for i in range(n)}
    src = build_zip(tmp_path / "day.zip", names)
    opened.clear()
    assert len(import_file(layout, src, "stooq", workers=1).imported) == n
    assert opened.count(str(src)) <= 2  # the member listing + one reader (was one reader per chunk)

    names["data/daily/us/nyse stocks/1/t000.us.txt"] = member("T000.US", [99.0])
    build_zip(src, names)  # same path, new bytes
    assert import_file(layout, src, "stooq", workers=1).imported == ["T000"]
    assert normalize_record(list_raw(layout, "stooq", "T000")[-1]).bars.column("close").to_pylist() == [99.0]
