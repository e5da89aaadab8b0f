"""Validator (missing / extra / mismatched objects), DuckDB query over S3 and local copies, and the
CLI commands + script that wrap them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from options_support import DATES, batch_zip, settings_for
from s3servers import ACCESS_KEY, SECRET_KEY, make_client

from cxq_data.cli import cli
from cxq_data.errors import ConfigError
from cxq_data.options.pipeline import run_batch
from cxq_data.options.query import run_query
from cxq_data.options.state import read_marker
from cxq_data.options.validate import validate_remote
from cxq_data.paths import DataLayout
from cxq_data.sql_guard import WriteRefusedError


@pytest.fixture
def uploaded(moto_endpoint: str, tmp_path: Path):
    settings = settings_for(moto_endpoint)
    layout = DataLayout(tmp_path / "data")
    zpath = batch_zip(tmp_path)
    assert run_batch(zpath, settings=settings, layout=layout, progress=False).exit_code == 0
    return zpath, settings, layout


def _key(settings, date: str) -> str:
    return settings.object_key("SPY", date)


def test_validator_is_clean_after_upload(uploaded) -> None:
    zpath, settings, layout = uploaded
    report = validate_remote(zpath, settings=settings, layout=layout)
    assert report.ok and report.exit_code == 0
    assert [(f.date, f.status) for f in report.findings] == [(d, "ok") for d in DATES]


def test_validator_detects_missing_extra_and_mismatched(uploaded, moto_endpoint: str) -> None:
    zpath, settings, layout = uploaded
    s3 = make_client(moto_endpoint)
    s3.delete_object(Bucket=settings.bucket, Key=_key(settings, DATES[0]))
    original = s3.get_object(Bucket=settings.bucket, Key=_key(settings, DATES[1]))["Body"].read()
    flipped = original[:100] + bytes([original[100] ^ 1]) + original[101:]  # same size, other bytes
    s3.put_object(Bucket=settings.bucket, Key=_key(settings, DATES[1]), Body=flipped)
    s3.put_object(Bucket=settings.bucket, Key=_key(settings, "2025-08-12"), Body=original)
    s3.put_object(Bucket=settings.bucket, Key=settings.underlying_prefix("SPY") + "stray.txt", Body=b"x")
    report = validate_remote(zpath, settings=settings, layout=layout)
    statuses = {(f.date, f.status) for f in report.findings}
    assert statuses == {(None, "extra"), (DATES[0], "missing"), (DATES[1], "checksum_mismatch"),
                        (DATES[2], "ok"), ("2025-08-12", "extra")}
    assert report.exit_code == 1


def _replace_verified_object(uploaded, endpoint: str, table, tmp_path: Path) -> str:
    """Put ``table`` under the key of DATES[2], recorded as if it were the verified upload; its status.

    Size and checksums then match the marker, so only the Parquet footer can tell what is wrong.
    """
    from dataclasses import replace

    import pyarrow.parquet as pq

    from cxq_data.options.s3 import compute_digests
    from cxq_data.options.state import write_marker

    zpath, settings, layout = uploaded
    marker = read_marker(layout, "SPY", DATES[2])
    other = tmp_path / "other.parquet"
    pq.write_table(table, other)
    digests = compute_digests(other, part_size=1 << 30, multipart_threshold=1 << 30)
    make_client(endpoint).put_object(Bucket=settings.bucket, Key=marker.key, Body=other.read_bytes())
    write_marker(layout, replace(marker, size=digests.size, etag=digests.md5, sha256=digests.sha256))
    finding = {f.date: f for f in validate_remote(zpath, settings=settings, layout=layout).findings}[DATES[2]]
    return finding.status


def _uploaded_table(uploaded):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _zpath, settings, layout = uploaded
    marker = read_marker(layout, "SPY", DATES[2])
    body = make_client(settings.endpoint_url).get_object(Bucket=settings.bucket, Key=marker.key)["Body"].read()
    return pq.read_table(pa.BufferReader(body))


def test_validator_reads_the_footer_rows_and_schema(uploaded, moto_endpoint: str, tmp_path: Path) -> None:
    import pyarrow as pa

    table = _uploaded_table(uploaded)
    assert _replace_verified_object(uploaded, moto_endpoint, pa.table({"x": list(range(table.num_rows))}),
                                    tmp_path) == "schema_mismatch"
    strike_as_text = table.set_column(table.schema.get_field_index("strike"), "strike",
                                      table.column("strike").cast(pa.string()))
    assert _replace_verified_object(uploaded, moto_endpoint, strike_as_text, tmp_path) == "schema_mismatch"


def test_validator_accepts_plain_string_root_and_right(uploaded, moto_endpoint: str, tmp_path: Path) -> None:
    """Objects of earlier converters hold root/right as plain strings: the same Parquet columns."""
    import pyarrow as pa

    table = _uploaded_table(uploaded)
    assert pa.types.is_dictionary(table.schema.field("root").type)
    for name in ("root", "right"):
        table = table.set_column(table.schema.get_field_index(name), pa.field(name, pa.string()),
                                 table.column(name).cast(pa.string()))
    assert _replace_verified_object(uploaded, moto_endpoint, table, tmp_path) == "ok"


def test_query_over_s3_prunes_partitions(uploaded, moto_endpoint: str) -> None:
    _zpath, settings, layout = uploaded
    result = run_query("SELECT date, underlying, count(*) AS n FROM cbbo GROUP BY ALL ORDER BY date",
                       settings=settings)
    assert [(str(r[0]), r[1], r[2]) for r in result.rows] == [
        (d, "SPY", read_marker(layout, "SPY", d).rows) for d in DATES]
    # a garbage object in another partition breaks a full scan but not a query pruned to one date
    make_client(moto_endpoint).put_object(Bucket=settings.bucket, Key=_key(settings, "2099-01-01"), Body=b"junk")
    one = run_query(f"SELECT count(*) FROM cbbo WHERE date = DATE '{DATES[1]}'", settings=settings)
    assert one.rows == [(read_marker(layout, "SPY", DATES[1]).rows,)]
    with pytest.raises(ConfigError, match="query failed"):
        run_query("SELECT count(*) FROM cbbo", settings=settings)


def test_query_local_copy(uploaded, moto_endpoint: str, tmp_path: Path) -> None:
    _zpath, settings, _layout = uploaded
    root = tmp_path / "copy"
    for date in DATES:
        dest = root / "underlying=SPY" / f"date={date}" / "data.parquet"
        dest.parent.mkdir(parents=True)
        dest.write_bytes(make_client(moto_endpoint).get_object(Bucket=settings.bucket,
                                                               Key=_key(settings, date))["Body"].read())
    res = run_query("SELECT min(ts_recv) >= TIMESTAMPTZ '2025-08-07 00:00:00+00', count(DISTINCT date) FROM cbbo",
                    local_root=root)
    assert res.rows == [(True, 3)]
    target = root / "underlying=SPY" / f"date={DATES[0]}" / "data.parquet"
    before = target.read_bytes()
    with pytest.raises(WriteRefusedError, match="COPY"):  # the query command only reads
        run_query(f"COPY (SELECT 1 AS x) TO '{target}' (FORMAT parquet)", local_root=root)
    assert target.read_bytes() == before


def _env(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                        "AWS_DEFAULT_REGION": "us-east-1", "S3_BUCKET_NAME": bucket,
                        "S3_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)


def test_cli_upload_validate_query(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = settings_for(moto_endpoint).bucket
    _env(monkeypatch, moto_endpoint, bucket)
    zpath, data = batch_zip(tmp_path), str(tmp_path / "data")
    runner = CliRunner()
    dry = runner.invoke(cli, ["--data-dir", data, "options", "upload", str(zpath), "--dry-run", "--dates", DATES[0]])
    assert dry.exit_code == 0 and "planned" in dry.output and not Path(data).exists()
    up = runner.invoke(cli, ["--data-dir", data, "options", "upload", str(zpath), "--no-progress"])
    assert up.exit_code == 0, up.output
    assert up.output.count("uploaded") >= 3 and "ok   bucket" in up.output
    val = runner.invoke(cli, ["--data-dir", data, "options", "validate", str(zpath), "--format", "json"])
    assert val.exit_code == 0, val.output
    assert [r["status"] for r in json.loads(val.output.split("\ns3://")[0])] == ["ok"] * 3
    make_client(moto_endpoint).delete_object(Bucket=bucket, Key=f"options/cbbo-1m/underlying=SPY/date={DATES[2]}/data.parquet")
    bad = runner.invoke(cli, ["--data-dir", data, "options", "validate", str(zpath)])
    assert bad.exit_code == 1 and "missing" in bad.output and f"--redo {DATES[2]}" in bad.output
    redo = runner.invoke(cli, ["--data-dir", data, "options", "upload", str(zpath), "--no-progress", "--redo", DATES[2]])
    assert redo.exit_code == 0 and f"{DATES[2]}  uploaded" in redo.output and "2 skipped" in redo.output, redo.output
    assert runner.invoke(cli, ["--data-dir", data, "options", "validate", str(zpath)]).exit_code == 0
    # the same exit codes as the script: 2 for bad input, 130 when a second signal aborts
    not_zip = tmp_path / "OPRA-not-a-zip.zip"
    not_zip.write_text("hello")
    assert runner.invoke(cli, ["--data-dir", data, "options", "upload", str(not_zip)]).exit_code == 2

    def second_signal(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("cxq_data.options.pipeline.run_batch", second_signal)
    aborted = runner.invoke(cli, ["--data-dir", data, "options", "upload", str(zpath)])
    assert aborted.exit_code == 130 and "rerun to resume" in aborted.output
    q = runner.invoke(cli, ["options", "query", f"SELECT count(*) AS n FROM cbbo WHERE date = DATE '{DATES[0]}'",
                            "--format", "json"])
    assert q.exit_code == 0, q.output
    assert json.loads(q.output) == [{"n": read_marker(DataLayout(Path(data)), "SPY", DATES[0]).rows}]
    for result in (dry, up, val, bad, q):
        assert SECRET_KEY not in result.output and ACCESS_KEY not in result.output


def test_script_dry_run_and_validate(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("upload_script", Path(__file__).parents[1] / "scripts" /
                                                  "upload_options_to_s3.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    bucket = settings_for(moto_endpoint).bucket
    _env(monkeypatch, moto_endpoint, bucket)
    zpath, data = batch_zip(tmp_path), str(tmp_path / "data")
    assert script.main([str(zpath), "--dry-run", "--dates", DATES[0], "--data-dir", data]) == 0
    assert not Path(data).exists()
    assert script.main([str(zpath), "--validate", "--data-dir", data]) == 1  # nothing uploaded yet
    assert "3 missing" in capsys.readouterr().err
    assert script.main([str(zpath), "--data-dir", data, "--no-progress"]) == 0
    assert script.main([str(zpath), "--validate", "--data-dir", data]) == 0
    assert script.main([str(tmp_path / "nope.zip"), "--data-dir", data]) == 2
    out = capsys.readouterr()
    assert SECRET_KEY not in out.out + out.err
