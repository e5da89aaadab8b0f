"""Core building blocks: symbols, sources, atomic writes, the raw layer, output formatting."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from pathlib import Path

import pytest

from cxq_data import atomic
from cxq_data.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    remove_stale_temps,
    sync_filesystem,
)
from cxq_data.errors import InvalidSourceError, InvalidSymbolError, RawLayerError
from cxq_data.formatting import render
from cxq_data.paths import DataLayout, resolve_data_dir
from cxq_data.raw import RawResponse, list_raw, write_raw
from cxq_data.settings import redact_params, redact_text
from cxq_data.sources import Source, parse_source_list, provider_source, source_name
from cxq_data.symbols import from_stooq_ticker, parse_symbol, provider_symbol, validate_symbol


@pytest.mark.parametrize("bad", ["../x", "/", "A/B", "AAPL\x00", "A APL", "", " ", "..", "A" * 30, "a;b", "A'B"])
def test_implausible_symbols_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSymbolError) as err:
        validate_symbol(bad)
    assert repr(bad)[1:-1][:10] in str(err.value) or bad.strip() == ""


def test_symbols_are_canonical_and_mapped_per_provider() -> None:
    assert validate_symbol(" brk.b ") == "BRK.B"
    # a provider's dash spelling is the same instrument: it was stored as a second symbol, BRK-B
    assert validate_symbol("BRK-B") == validate_symbol("brk-b") == "BRK.B"
    assert provider_symbol(validate_symbol("BTC-USD"), Source.YFINANCE) == "BTC-USD"  # round trip
    assert provider_symbol("BRK.B", Source.YFINANCE) == "BRK-B"
    assert provider_symbol("BRK.B", Source.ALPHAVANTAGE) == "BRK.B"
    assert provider_symbol("BRK.B", Source.STOOQ) == "brk-b.us"
    assert provider_symbol("AET.L", Source.YFINANCE) == "AET.L"
    assert provider_symbol("AET.L", Source.STOOQ) == "aet.uk"
    assert provider_symbol("AET.L", Source.ALPHAVANTAGE) == "AET.LON"
    assert parse_symbol("MOB.ST").exchange == "XSTO"
    assert parse_symbol("BRK.B").exchange == "XNYS"  # B is a share class, not an exchange
    assert from_stooq_ticker("BRK-B.US") == "BRK.B"
    assert from_stooq_ticker("aapl.us") == "AAPL"


def test_sources_accept_aliases_and_user_names() -> None:
    assert provider_source("yf") is Source.YFINANCE
    assert source_name("AV") == "alphavantage"
    assert source_name("vendorx") == "vendorx"
    assert parse_source_list("yf,stooq,yfinance") == ["yfinance", "stooq"]
    for bad in ["../x", "Vendor X", "a" * 33, ""]:
        with pytest.raises(InvalidSourceError):
            source_name(bad)
    with pytest.raises(InvalidSourceError, match="vendorx"):
        provider_source("vendorx")


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "f.parquet"
    atomic_write_bytes(dest, b"old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        assert not tmp.name.endswith(".parquet")  # never matches a view's glob
        raise RuntimeError("crash")
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.parquet"]


def test_atomic_writes_get_the_mode_of_a_normal_new_file(tmp_path: Path) -> None:
    """mkstemp's 0600 made raw and serving files unreadable to the other users of a shared data dir."""
    import stat

    from cxq_data.atomic import FILE_MODE, atomic_write_json

    umask = os.umask(0o022)
    os.umask(umask)
    assert FILE_MODE == 0o666 & ~umask
    for path in (atomic_write_bytes(tmp_path / "a.parquet", b"x"), atomic_write_json(tmp_path / "m.json", {})):
        assert stat.S_IMODE(path.stat().st_mode) == FILE_MODE
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert stat.S_IMODE(plain.stat().st_mode) == FILE_MODE


def test_sync_filesystem_syncs_the_filesystem_of_the_nearest_existing_folder(tmp_path: Path, monkeypatch) -> None:
    sync_filesystem(tmp_path / "not" / "yet")  # the real barrier returns normally
    assert atomic._syncfs() is not None or not sys.platform.startswith("linux")  # Linux: syncfs, not sync()
    seen = []

    def fake_syncfs(fd: int) -> int:
        seen.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else fd)
        return 0

    monkeypatch.setattr(atomic, "_syncfs", lambda: fake_syncfs)
    sync_filesystem(tmp_path / "processed" / "symbol=A")
    assert seen == [str(tmp_path)] or not os.path.isdir("/proc/self/fd")


def test_sync_filesystem_failure_names_the_folder_and_fallback_is_sync(tmp_path: Path, monkeypatch) -> None:
    import ctypes

    def failing_syncfs(fd: int) -> int:
        ctypes.set_errno(5)
        return -1

    monkeypatch.setattr(atomic, "_syncfs", lambda: failing_syncfs)
    with pytest.raises(OSError, match=f"syncfs of the filesystem holding {tmp_path} failed: Input/output error"):
        sync_filesystem(tmp_path)
    calls = []
    monkeypatch.setattr(atomic, "_syncfs", lambda: None)  # no syncfs (not Linux): the global sync()
    monkeypatch.setattr(atomic.os, "sync", lambda: calls.append("sync"))
    sync_filesystem(tmp_path)
    assert calls == ["sync"]


def test_atomic_write_no_overwrite_mode(tmp_path: Path) -> None:
    dest = tmp_path / "f.json"
    atomic_write_bytes(dest, b"one", overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write_bytes(dest, b"two", overwrite=False)
    assert dest.read_bytes() == b"one"
    assert list(tmp_path.iterdir()) == [dest]


def test_canonical_json_is_byte_stable(tmp_path: Path) -> None:
    a = atomic_write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]}).read_bytes()
    b = atomic_write_json(tmp_path / "b.json", {"a": [1, 2], "b": 1}).read_bytes()
    assert a == b


def test_stale_temps_are_cleaned(tmp_path: Path) -> None:
    (tmp_path / ".tmp-data.parquet.x.partial").write_bytes(b"x")
    (tmp_path / "data.parquet").write_bytes(b"y")
    assert remove_stale_temps(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["data.parquet"]


def test_data_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CXQ_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("CXQ_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir() == tmp_path / "data"


def test_raw_layer_is_immutable_and_redacted(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    t0 = dt.datetime(2024, 6, 7, 12, 0, tzinfo=dt.UTC)
    body = b'{"chart": {}}'
    resp = RawResponse(source="alphavantage", symbol="IBM", body=body, ext="json",
                       url="https://x/query?function=F&apikey=SEKRIT", params={"apikey": "SEKRIT", "symbol": "IBM"},
                       fetched_at=t0, extra={"format": "av_daily_json"})
    rec = write_raw(layout, resp, secrets=["SEKRIT"])
    assert rec.path.read_bytes() == body
    rec2 = write_raw(layout, RawResponse(source="alphavantage", symbol="IBM", body=b'{"x": 2}', ext="json",
                                         fetched_at=t0 + dt.timedelta(seconds=1)), secrets=["SEKRIT"])
    assert rec2.path != rec.path and rec.path.read_bytes() == body
    records = list_raw(layout, "alphavantage", "IBM")
    assert [r.path for r in records] == [rec.path, rec2.path]
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert b"SEKRIT" not in f.read_bytes(), f
    manifest = json.loads(rec.path.with_name(rec.path.name + ".manifest.json").read_text())
    assert manifest["sha256"] == rec.sha256 and manifest["http_status"] == 200
    assert manifest["request"]["params"]["apikey"] == "***"
    assert manifest["fetched_at"] == "2024-06-07T12:00:00.000000Z"
    assert "python" in manifest["library_versions"]


def test_raw_refuses_a_body_with_a_secret_and_detects_tampering(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    with pytest.raises(RawLayerError, match="secret"):
        write_raw(layout, RawResponse(source="stooq", symbol="X", body=b"key=SEKRIT", ext="csv"), secrets=["SEKRIT"])
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    rec = write_raw(layout, RawResponse(source="stooq", symbol="X", body=b"Date,Open\n", ext="csv"))
    os.chmod(rec.path, 0o644)
    rec.path.write_bytes(b"tampered")
    with pytest.raises(RawLayerError, match="sha256"):
        rec.read_bytes()


def test_redaction() -> None:
    assert redact_params({"apikey": "k", "symbol": "IBM"}) == {"apikey": "***", "symbol": "IBM"}
    assert "k123" not in redact_text("GET /query?symbol=IBM&apikey=k123 failed")
    assert redact_text("token SECRET here", ["SECRET"]) == "token *** here"


def test_render_json_conventions() -> None:
    rows = [{"symbol": "AAPL", "source": "yfinance", "date": dt.date(2024, 1, 2),
             "ingested_at": dt.datetime(2024, 1, 3, 4, 5, tzinfo=dt.UTC), "close": math.nan, "volume": 7}]
    out = json.loads(render(rows, "json"))
    assert out == [{"symbol": "AAPL", "source": "yfinance", "date": "2024-01-02",
                    "ingested_at": "2024-01-03T04:05:00Z", "close": None, "volume": 7}]
    assert render([], "json") == "[]"
    assert render(rows, "csv").splitlines()[1] == "AAPL,yfinance,2024-01-02,2024-01-03T04:05:00Z,,7"
    assert "AAPL" in render(rows, "table")


def test_layout_relative_paths_are_posix_and_refuse_outside_paths(tmp_path):
    layout = DataLayout(tmp_path / "data")
    assert layout.relative(layout.partition_file("BRK.B", "stooq", 2024)) == \
        "processed/symbol=BRK.B/source=stooq/year=2024/data.parquet"
    assert layout.relative(tmp_path / "data" / "raw") == "raw"
    with pytest.raises(ValueError):
        layout.relative(tmp_path / "data-other" / "x")  # shares the prefix, is not inside


def test_numeric_settings_from_the_environment_name_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxq_data.errors import ConfigError
    from cxq_data.options.s3 import S3Settings
    from cxq_data.settings import ProviderSettings

    monkeypatch.setenv("CXQ_HTTP_TIMEOUT", "2.5")
    monkeypatch.setenv("CXQ_AV_DAILY_LIMIT", "500")
    settings = ProviderSettings.from_env()
    assert (settings.timeout_s, settings.av_daily_limit) == (2.5, 500)
    for name, value, message in (("CXQ_HTTP_TIMEOUT", "abc", "is not a number"), ("CXQ_HTTP_TIMEOUT", "0", "must be > 0"),
                                 ("CXQ_AV_DAILY_LIMIT", "x", "is not an integer"), ("CXQ_HTTP_RETRIES", "-1", "must be >= 0")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=f"{name}='{value}' {message}".replace(".", r"\.")):
            ProviderSettings.from_env()
        monkeypatch.delenv(name)
    monkeypatch.setenv("CXQ_S3_PART_SIZE", "5MB")
    with pytest.raises(ConfigError, match="CXQ_S3_PART_SIZE='5MB' is not an integer"):
        S3Settings.from_env()
