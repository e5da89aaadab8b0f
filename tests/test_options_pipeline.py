"""The batch against moto: markers, resume, dry-run, empty days, failures, secrets."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from options_support import DATES, batch_zip, settings_for
from s3servers import ACCESS_KEY, SECRET_KEY, FaultProxy, Faults, free_port, make_client

from cxq_data.errors import ConfigError, DataFormatError
from cxq_data.options.pipeline import process_day, run_batch
from cxq_data.options.preflight import PreflightError
from cxq_data.options.state import marker_path, read_failure, read_marker
from cxq_data.options.validate import validate_remote
from cxq_data.paths import DataLayout


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    return DataLayout(tmp_path / "data")


def _objects(endpoint: str, bucket: str) -> dict[str, int]:
    resp = make_client(endpoint).list_objects_v2(Bucket=bucket)
    return {o["Key"]: o["Size"] for o in resp.get("Contents", [])}


def test_full_run_uploads_every_day_with_markers(moto_endpoint: str, tmp_path: Path, layout: DataLayout) -> None:
    settings = settings_for(moto_endpoint)
    summary = run_batch(batch_zip(tmp_path), settings=settings, layout=layout, progress=False)
    assert [o.status for o in summary.outcomes] == ["uploaded"] * 3 and summary.exit_code == 0
    objects = _objects(moto_endpoint, settings.bucket)
    assert sorted(objects) == [f"options/cbbo-1m/underlying=SPY/date={d}/data.parquet" for d in DATES]
    for date in DATES:
        marker = read_marker(layout, "SPY", date)
        assert marker is not None and marker.size == objects[marker.key]
        body = make_client(moto_endpoint).get_object(Bucket=settings.bucket, Key=marker.key)["Body"].read()
        local = tmp_path / "o.parquet"
        local.write_bytes(body)
        assert pq.ParquetFile(local).metadata.num_rows == marker.rows > 0
    # intermediates are gone; only markers (and lock files) remain under data/
    assert not any(p.is_file() for p in (layout.root / "work").rglob("*"))


def test_rerun_skips_verified_dates_without_uploading(moto_endpoint: str, tmp_path: Path, layout: DataLayout) -> None:
    zpath = batch_zip(tmp_path)
    bucket = settings_for(moto_endpoint).bucket
    with FaultProxy(moto_endpoint, Faults(methods=("PUT", "POST"))) as proxy:
        settings = settings_for(proxy.endpoint, bucket=bucket)
        run_batch(zpath, settings=settings, layout=layout, progress=False)
        assert proxy.faults.log  # the first run uploaded through the proxy
        before = {d: marker_path(layout, "SPY", d).read_bytes() for d in DATES}
        proxy.faults.log.clear()
        again = run_batch(zpath, settings=settings, layout=layout, progress=False, preflight=False)
    assert [o.status for o in again.outcomes] == ["skipped"] * 3
    assert proxy.faults.log == []  # not one PUT/POST
    assert before == {d: marker_path(layout, "SPY", d).read_bytes() for d in DATES}


def test_marker_for_another_destination_does_not_count(moto_endpoint: str, tmp_path: Path,
                                                        layout: DataLayout) -> None:
    """A new S3_PREFIX (or bucket, or endpoint) is a new destination: its dates are uploaded again,
    not skipped because some other place holds them; validation follows the current destination."""
    zpath = batch_zip(tmp_path)
    first = settings_for(moto_endpoint)
    run_batch(zpath, settings=first, layout=layout, progress=False)
    moved = dataclasses.replace(first, prefix="archive/opra")
    plan = run_batch(zpath, dry_run=True, settings=moved, layout=layout, progress=False)
    assert [o.status for o in plan.outcomes] == ["planned"] * 3
    assert not validate_remote(zpath, settings=moved, layout=layout).ok  # nothing there yet
    again = run_batch(zpath, settings=moved, layout=layout, progress=False)
    assert [o.status for o in again.outcomes] == ["uploaded"] * 3
    objects = _objects(moto_endpoint, first.bucket)
    assert sorted(objects) == sorted([f"options/cbbo-1m/underlying=SPY/date={d}/data.parquet" for d in DATES]
                                     + [f"archive/opra/underlying=SPY/date={d}/data.parquet" for d in DATES])
    assert read_marker(layout, "SPY", DATES[0]).key.startswith("archive/opra/")
    assert validate_remote(zpath, settings=moved, layout=layout).ok
    assert validate_remote(None, settings=moved, layout=layout).ok
    assert [o.status for o in run_batch(zpath, settings=moved, layout=layout, progress=False).outcomes] == \
        ["skipped"] * 3
    other_bucket = settings_for(moto_endpoint)  # same prefix, another bucket
    assert read_marker(layout, "SPY", DATES[0], other_bucket.destination("SPY", DATES[0])) is None
    assert read_marker(layout, "SPY", DATES[0], moved.destination("SPY", DATES[0])) is not None
    # a staging store and AWS may share a bucket name: another endpoint is another destination
    for endpoint in (None, "http://minio.internal:9000"):
        elsewhere = dataclasses.replace(moved, endpoint_url=endpoint)
        assert read_marker(layout, "SPY", DATES[0], elsewhere.destination("SPY", DATES[0])) is None
    same = dataclasses.replace(moved, endpoint_url=moto_endpoint.upper() + "/")  # spelled differently
    assert read_marker(layout, "SPY", DATES[0], same.destination("SPY", DATES[0])) is not None


def test_a_day_another_process_works_on_is_left_alone(moto_endpoint: str, tmp_path: Path,
                                                       layout: DataLayout) -> None:
    """Two runs of one ZIP: the second cleared the first one's extract folder (outside the lock), so both
    failed and the uploaded objects got no marker."""
    from cxq_data.options.pipeline import date_lock, work_dir

    zpath, settings = batch_zip(tmp_path), settings_for(moto_endpoint)
    theirs = work_dir(layout, "extract", "SPY", DATES[1]) / "being-extracted.dbn.zst"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"the other run's file")
    with date_lock(layout, "SPY", DATES[1]):
        summary = run_batch(zpath, settings=settings, layout=layout, progress=False)
    assert [o.status for o in summary.outcomes] == ["uploaded", "failed", "uploaded"]
    assert "another process is working on this day" in summary.outcomes[1].detail
    assert theirs.read_bytes() == b"the other run's file"  # not touched
    assert read_failure(layout, "SPY", DATES[1]) is None  # nothing is wrong with the day itself
    # what killed runs left for any date goes at the next run's start (not only for the dates it redoes)
    dead = work_dir(layout, "upload", "SPY", "2025-07-01") / "data.parquet"
    dead.parent.mkdir(parents=True)
    dead.write_bytes(b"half")
    again = run_batch(zpath, dates=[DATES[1]], settings=settings, layout=layout, progress=False)
    assert [o.status for o in again.outcomes] == ["uploaded"]
    assert not dead.parent.exists() and not theirs.parent.exists()


def test_options_on_another_underlying_or_dataset_are_refused(moto_endpoint: str, tmp_path: Path,
                                                               layout: DataLayout) -> None:
    """An OPRA file of SPY options must not land under underlying=QQQ (nor a non-OPRA file anywhere)."""
    from cxq_data.options.pipeline import check_options_of

    settings = settings_for(moto_endpoint)
    summary = run_batch(batch_zip(tmp_path), settings=settings, layout=layout, underlying="QQQ", progress=False)
    assert [o.status for o in summary.outcomes] == ["failed"] * 3
    assert all("options on SPY, expected QQQ" in o.detail for o in summary.outcomes)
    assert _objects(moto_endpoint, settings.bucket) == {}
    run_batch(batch_zip(tmp_path), settings=settings, layout=layout, progress=False)
    day = layout.root / "day.parquet"
    key = read_marker(layout, "SPY", DATES[0]).key
    day.write_bytes(make_client(moto_endpoint).get_object(Bucket=settings.bucket, Key=key)["Body"].read())
    check_options_of(day, "OPRA.PILLAR", "SPY", "day")  # the uploaded day passes
    with pytest.raises(DataFormatError, match="dataset XNAS.ITCH, not OPRA options data"):
        check_options_of(day, "XNAS.ITCH", "SPY", "day")
    with pytest.raises(DataFormatError, match="options on SPY, expected SP"):  # a prefix is not enough
        check_options_of(day, "OPRA.PILLAR", "SP", "day")


def test_redo_uploads_a_verified_day_again_after_validate_found_it_gone(moto_endpoint: str, tmp_path: Path,
                                                                        layout: DataLayout) -> None:
    """A deleted object kept its marker: reruns skipped the day forever while validate reported it missing."""
    zpath, settings = batch_zip(tmp_path), settings_for(moto_endpoint)
    run_batch(zpath, settings=settings, layout=layout, progress=False)
    gone = read_marker(layout, "SPY", DATES[1])
    make_client(moto_endpoint).delete_object(Bucket=settings.bucket, Key=gone.key)
    report = validate_remote(zpath, settings=settings, layout=layout)
    assert not report.ok and report.headline().endswith(f"upload them again with --redo {DATES[1]}")
    assert [o.status for o in run_batch(zpath, settings=settings, layout=layout, progress=False).outcomes] == \
        ["skipped"] * 3
    plan = run_batch(zpath, dry_run=True, redo=[DATES[1]], settings=settings, layout=layout, progress=False)
    assert [o.status for o in plan.outcomes] == ["skipped", "planned", "skipped"]
    assert read_marker(layout, "SPY", DATES[1]) == gone  # a dry run forgets nothing
    again = run_batch(zpath, redo=[DATES[1]], settings=settings, layout=layout, progress=False)
    assert [o.status for o in again.outcomes] == ["skipped", "uploaded", "skipped"]
    assert validate_remote(zpath, settings=settings, layout=layout).ok
    with pytest.raises(ConfigError, match="no day file for 2025-01-02"):
        run_batch(zpath, redo=["2025-01-02"], settings=settings, layout=layout, progress=False)


def test_dry_run_writes_and_uploads_nothing(moto_endpoint: str, tmp_path: Path, layout: DataLayout) -> None:
    settings = settings_for(moto_endpoint)
    summary = run_batch(batch_zip(tmp_path), dates=["2025-08-07"], dry_run=True, settings=settings,
                        layout=layout, progress=False)
    assert [(o.date, o.status) for o in summary.outcomes] == [("2025-08-07", "planned")]
    assert "date=2025-08-07/data.parquet" in summary.outcomes[0].detail
    assert not layout.root.exists()
    assert _objects(moto_endpoint, settings.bucket) == {}


def test_empty_day_is_uploaded_with_schema_and_validates(moto_endpoint: str, tmp_path: Path,
                                                         layout: DataLayout) -> None:
    settings = settings_for(moto_endpoint)
    zpath = batch_zip(tmp_path, corrupt="empty_day")
    summary = run_batch(zpath, settings=settings, layout=layout, progress=False)
    assert summary.exit_code == 0
    assert read_marker(layout, "SPY", "2025-08-11").rows == 0
    report = validate_remote(zpath, settings=settings, layout=layout)
    assert report.ok and [f.status for f in report.findings] == ["ok"] * 3
    assert "0 rows" in report.findings[-1].detail


def test_bad_day_fails_alone_is_recorded_and_retried(moto_endpoint: str, tmp_path: Path, layout: DataLayout) -> None:
    settings = settings_for(moto_endpoint)
    zpath = batch_zip(tmp_path, corrupt="bad_hash")
    summary = run_batch(zpath, settings=settings, layout=layout, progress=False)
    assert [o.status for o in summary.outcomes] == ["uploaded", "uploaded", "failed"]
    assert summary.exit_code == 1 and "fails its manifest hash" in summary.outcomes[2].detail
    assert read_marker(layout, "SPY", "2025-08-11") is None
    assert "fails its manifest hash" in read_failure(layout, "SPY", "2025-08-11")["error"]
    assert len(_objects(moto_endpoint, settings.bucket)) == 2
    # next run: the good days are skipped, the failed one is tried again (and fails again, counted)
    again = run_batch(zpath, settings=settings, layout=layout, progress=False)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped", "failed"]
    assert read_failure(layout, "SPY", "2025-08-11")["failures"] == 2


def test_failed_upload_is_retried_next_run(moto_endpoint: str, tmp_path: Path, layout: DataLayout) -> None:
    zpath = batch_zip(tmp_path)
    bucket = settings_for(moto_endpoint).bucket
    with FaultProxy(moto_endpoint, Faults(corrupt_puts=10**6)) as proxy:
        broken = settings_for(proxy.endpoint, bucket=bucket, max_attempts=1)
        first = run_batch(zpath, settings=broken, layout=layout, progress=False, preflight=False)
    assert [o.status for o in first.outcomes] == ["failed"] * 3
    assert _objects(moto_endpoint, bucket) == {}  # corrupt objects were removed, never marked
    assert all(read_failure(layout, "SPY", d) for d in DATES)
    second = run_batch(zpath, settings=settings_for(moto_endpoint, bucket=bucket), layout=layout, progress=False)
    assert [o.status for o in second.outcomes] == ["uploaded"] * 3
    assert not any(read_failure(layout, "SPY", d) for d in DATES)
    assert validate_remote(zpath, settings=settings_for(moto_endpoint, bucket=bucket), layout=layout).ok


def test_process_day_is_the_snakemake_unit(moto_endpoint: str, tmp_path: Path, layout: DataLayout) -> None:
    from cxq_data.options.batch import extract_day

    settings = settings_for(moto_endpoint)
    dbn = extract_day(batch_zip(tmp_path), "2025-08-08", tmp_path / "work")
    marker = process_day(dbn, "2025-08-08", settings=settings, layout=layout)
    assert marker.key.endswith("date=2025-08-08/data.parquet") and marker.rows > 0
    assert process_day(dbn, "2025-08-08", settings=settings, layout=layout) == marker  # verified -> skipped
    with pytest.raises(Exception, match="holds 2025-08-08, expected 2025-08-07"):
        process_day(dbn, "2025-08-07", settings=settings, layout=layout)
    assert read_marker(layout, "SPY", "2025-08-07") is None


def test_preflight_fails_fast_with_one_clear_line(moto_endpoint: str, tmp_path: Path, layout: DataLayout) -> None:
    lines: list[str] = []
    settings = settings_for(moto_endpoint, bucket="cxq-does-not-exist")
    with pytest.raises(PreflightError, match="preflight failed: bucket: s3://cxq-does-not-exist not reachable"):
        run_batch(batch_zip(tmp_path), settings=settings, layout=layout, progress=False, report=lines.append)
    assert [line.split()[0] for line in lines] == ["ok", "ok", "ok", "ok", "FAIL"]
    no_bucket = dataclasses.replace(settings, bucket=None)
    with pytest.raises(PreflightError, match="S3_BUCKET_NAME is not set"):
        run_batch(batch_zip(tmp_path), settings=no_bucket, layout=layout, progress=False)
    with pytest.raises(ConfigError, match="no day file for 2025-08-09"):
        run_batch(batch_zip(tmp_path), dates=["2025-08-09"], settings=settings, layout=layout)
    assert not (layout.root / "state").exists()


def test_secrets_never_reach_state_logs_or_errors(moto_endpoint: str, tmp_path: Path, layout: DataLayout,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cxq_data")
    zpath = batch_zip(tmp_path, corrupt="bad_hash")
    bucket = settings_for(moto_endpoint).bucket
    with FaultProxy(moto_endpoint, Faults(corrupt_puts=1, fail_every=4)) as proxy:
        endpoint = proxy.endpoint.replace("http://", f"http://{ACCESS_KEY}:{SECRET_KEY}@")
        settings = settings_for(proxy.endpoint, bucket=bucket)
        summary = run_batch(zpath, settings=settings, layout=layout, progress=False, preflight=False)
    assert summary.count("uploaded") == 2
    from cxq_data.options.state import strip_userinfo

    assert SECRET_KEY not in (strip_userinfo(endpoint) or "")
    texts = [p.read_text() for p in layout.root.rglob("*") if p.is_file()]
    texts += [caplog.text, json.dumps(summary.rows())]
    for text in texts:
        assert SECRET_KEY not in text and ACCESS_KEY not in text
    assert "S3Settings(" in repr(settings) and SECRET_KEY not in repr(settings)


def _counting_converter(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from cxq_data.options import dbn_convert

    converted: list[str] = []
    real = dbn_convert.convert_dbn

    def counting(path, *args, **kwargs):
        converted.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(dbn_convert, "convert_dbn", counting)
    return converted


def test_s3_outage_stops_the_batch_after_one_day_and_a_rerun_resumes(
        moto_endpoint: str, tmp_path: Path, layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from botocore.config import Config

    zpath = batch_zip(tmp_path)
    converted = _counting_converter(monkeypatch)
    bucket = settings_for(moto_endpoint).bucket
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused, as in an outage
    down = settings_for(dead, bucket=bucket, max_attempts=2)
    client = boto3.client("s3", endpoint_url=dead, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          region_name="us-east-1", config=Config(retries={"total_max_attempts": 1}))
    first = run_batch(zpath, settings=down, layout=layout, progress=False, preflight=False, client=client)
    assert [o.status for o in first.outcomes] == ["failed", "pending", "pending"]
    assert len(converted) == 1  # the later days were neither extracted nor converted
    assert all(o.detail.startswith("not attempted: S3 unavailable (s3://") for o in first.outcomes[1:])
    assert first.exit_code == 1 and not first.ok and "stopped early: S3 unavailable" in first.headline()
    assert read_failure(layout, "SPY", DATES[0]) and not read_failure(layout, "SPY", DATES[1])
    assert not any(read_marker(layout, "SPY", d) for d in DATES)
    assert SECRET_KEY not in json.dumps(first.rows()) + first.headline()
    # S3 is back: the rerun does all three days
    again = run_batch(zpath, settings=settings_for(moto_endpoint, bucket=bucket), layout=layout, progress=False)
    assert [o.status for o in again.outcomes] == ["uploaded"] * 3 and again.exit_code == 0
    assert validate_remote(zpath, settings=settings_for(moto_endpoint, bucket=bucket), layout=layout).ok


def test_s3_blip_fails_one_day_and_the_probe_lets_the_others_go_on(
        moto_endpoint: str, tmp_path: Path, layout: DataLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxq_data.options import pipeline
    from cxq_data.options.s3 import S3UnavailableError

    real, calls = pipeline.upload_verified, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise S3UnavailableError("upload of data.parquet failed: 503 SlowDown after every attempt")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "upload_verified", flaky)
    settings = settings_for(moto_endpoint)
    summary = run_batch(batch_zip(tmp_path), settings=settings, layout=layout, progress=False)
    assert [o.status for o in summary.outcomes] == ["failed", "uploaded", "uploaded"]  # the probe found S3 back
    assert summary.stopped_early is None and summary.exit_code == 1
    assert not [k for k in _objects(moto_endpoint, settings.bucket) if "_preflight" in k]  # probe objects removed
