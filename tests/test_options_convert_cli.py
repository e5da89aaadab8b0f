"""``cxq_data options convert`` through the real click group."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from cxq_data.cli import cli
from cxq_data.options.synth import generate_day, symbology_document, write_cbbo_day

DBN = Path(__file__).parent / "data" / "dbn"
DAY = dt.date(2025, 8, 7)


def _invoke(data_dir: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), "options", "convert", *args])


def test_convert_writes_parquet_and_prints_a_summary(tmp_path: Path, data_dir: Path) -> None:
    src = write_cbbo_day(tmp_path / "opra-pillar-20250807.cbbo-1m.dbn.zst", DAY)
    out = tmp_path / "out" / "day.parquet"
    result = _invoke(data_dir, str(src), str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    rows = pq.read_metadata(out).num_rows
    assert rows > 0
    line = result.output.strip()
    assert len(line.splitlines()) == 1
    assert f"{rows:,} rows" in line and "MB" in line and "records/s" in line and "cbbo-1m" in line


def test_convert_with_symbology_json(tmp_path: Path, data_dir: Path) -> None:
    src = write_cbbo_day(tmp_path / "n.dbn.zst", DAY, mapping="none")
    out = tmp_path / "n.parquet"
    failed = _invoke(data_dir, str(src), str(out), "--no-progress")
    assert failed.exit_code == 1 and "no symbology.json" in failed.output and not out.exists()
    sym = tmp_path / "symbology.json"
    sym.write_text(json.dumps(symbology_document([generate_day(DAY)])))
    ok = _invoke(data_dir, str(src), str(out), "--symbology", str(sym), "--no-progress")
    assert ok.exit_code == 0, ok.output
    assert pq.read_table(out).column("symbol").null_count == 0


def test_bad_input_exits_1_with_a_clear_message(tmp_path: Path, data_dir: Path) -> None:
    src = DBN / "databento-python" / "OPRA.PILLAR" / "test_data.ohlcv-1m.dbn.zst"
    out = tmp_path / "x.parquet"
    result = _invoke(data_dir, str(src), str(out))
    assert result.exit_code == 1
    assert "error:" in result.output and "test_data.ohlcv-1m.dbn.zst" in result.output and "ohlcv-1m" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == [data_dir]
    missing = _invoke(data_dir, str(tmp_path / "nope.dbn.zst"), str(out))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_sort_file_orders_the_whole_file_and_keeps_the_rows(tmp_path: Path, data_dir: Path) -> None:
    src = write_cbbo_day(tmp_path / "opra-pillar-20250807.cbbo-1m.dbn.zst", DAY)
    by_group, whole = tmp_path / "g.parquet", tmp_path / "f.parquet"
    assert _invoke(data_dir, str(src), str(by_group), "--no-progress", "--chunk-records", "500").exit_code == 0
    result = _invoke(data_dir, str(src), str(whole), "--no-progress", "--chunk-records", "500", "--sort", "file")
    assert result.exit_code == 0, result.output
    keys = ["expiration", "strike", "symbol", "ts_recv"]
    plain = lambda t: t.set_column(t.schema.get_field_index("symbol"), "symbol", t["symbol"].cast("string"))
    a, b = plain(pq.read_table(by_group)), plain(pq.read_table(whole))
    assert a.num_rows == b.num_rows
    assert a.sort_by([(k, "ascending") for k in keys]).equals(b.sort_by([(k, "ascending") for k in keys]))
    rows = b.select(keys).to_pylist()
    as_keys = [tuple(r[k] for k in keys) for r in rows]
    assert as_keys == sorted(as_keys)  # ordered over the whole file
    grouped = [tuple(r[k] for k in keys) for r in a.select(keys).to_pylist()]
    assert grouped != sorted(grouped)  # the default orders each row group (time slice) only
    bad = _invoke(data_dir, str(src), str(tmp_path / "x.parquet"), "--sort", "day")
    assert bad.exit_code == 2 and "'day'" in bad.output
