"""The options batch: ZIP day -> Parquet -> verified S3 object -> marker, resumable and interruptible.

``process_day`` is the unit both the standalone script (through ``run_batch``) and the Snakemake rule
call, so both write and honour the same markers. Order of work per date, chosen so that every exit
path leaves a consistent state: extract (verified against the manifest) -> convert to a local temp
file -> upload to the final key (single PUT or multipart, both atomic on the server) -> verify ->
write the marker -> delete the temp files. A marker only exists for a verified object.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cxq_data.errors import ConfigError, CxqError, DataFormatError
from cxq_data.options.batch import ZipInventory, extract_day, read_inventory
from cxq_data.options.progress import BatchProgress, DayProgress
from cxq_data.options.s3 import (
    S3Client,
    S3Settings,
    S3UnavailableError,
    abort_stale_uploads,
    compute_digests,
    make_client,
    upload_verified,
)
from cxq_data.options.shutdown import GracefulStop
from cxq_data.options.state import (
    Marker,
    check_date,
    lock_path,
    marker_path,
    read_marker,
    record_failure,
    strip_userinfo,
    utc_now,
    write_marker,
)
from cxq_data.options.summary import BatchSummary, DayOutcome
from cxq_data.paths import DataLayout

log = logging.getLogger("cxq_data.options.pipeline")

DEFAULT_UNDERLYING = "SPY"
DEFAULT_ZIP_GLOB = "raw/databento/OPRA-*.zip"


class DateBusyError(CxqError):
    """Another process is working on the same date right now."""


def work_dir(layout: DataLayout, *parts: str) -> Path:
    return layout.root.joinpath("work", "options", *parts)


# --------------------------------------------------------------------------- one date


def process_day(dbn_path: Path | str, date: str, *, settings: S3Settings, layout: DataLayout,
                underlying: str = DEFAULT_UNDERLYING, symbology: Path | Mapping[str, Any] | None = None,
                source_sha256: str | None = None, source_name: str | None = None,
                zip_file: str | None = None, client: S3Client | None = None,
                progress: DayProgress | None = None) -> Marker:
    """Convert ``dbn_path`` (one UTC day), upload it verified and write the marker; skip a verified date.

    ``symbology`` defaults to ``symbology.json`` next to ``dbn_path`` when that file exists.
    Failures are recorded under ``state/.../failed/`` (redacted) and re-raised.
    """
    check_date(date)
    if (done := _verified(layout, settings, underlying, date)) is not None:
        return done
    with date_lock(layout, underlying, date):
        return _process_locked(Path(dbn_path), date, settings=settings, layout=layout, underlying=underlying,
                               symbology=symbology, source_sha256=source_sha256, source_name=source_name,
                               zip_file=zip_file, client=client, progress=progress)


def _verified(layout: DataLayout, settings: S3Settings, underlying: str, date: str) -> Marker | None:
    """The day's marker if it vouches for this run's destination (endpoint, bucket, key)."""
    return read_marker(layout, underlying, date, settings.destination(underlying, date))


@contextlib.contextmanager
def date_lock(layout: DataLayout, underlying: str, date: str) -> Iterator[None]:
    """One process per (underlying, date) at a time, for all of its work: extract, convert, upload,
    marker. Raises :class:`DateBusyError` at once when another process holds it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path(layout, underlying, date)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DateBusyError(f"{underlying} {date}: another process is working on this day "
                            f"({lock.lock_file}); not touched") from None
    try:
        yield
    finally:
        lock.release()


def _process_locked(dbn_path: Path, date: str, *, settings: S3Settings, layout: DataLayout, underlying: str,
                    **kwargs: Any) -> Marker:
    """:func:`process_day` under the date's lock: done meanwhile -> that marker; failures recorded."""
    if (done := _verified(layout, settings, underlying, date)) is not None:
        return done
    try:
        return _convert_upload(dbn_path, date, settings=settings, layout=layout, underlying=underlying, **kwargs)
    except Exception as exc:
        record_failure(layout, underlying, date, settings.redact(f"{type(exc).__name__}: {exc}"))
        raise


def _convert_upload(dbn_path: Path, date: str, *, settings: S3Settings, layout: DataLayout, underlying: str,
                    symbology: Path | Mapping[str, Any] | None, source_sha256: str | None,
                    source_name: str | None, zip_file: str | None, client: S3Client | None,
                    progress: DayProgress | None) -> Marker:
    from cxq_data.options.dbn_convert import convert_dbn

    bucket = settings.require_bucket()
    started = utc_now()
    scratch = work_dir(layout, "upload", underlying, date)
    shutil.rmtree(scratch, ignore_errors=True)  # leftovers of a killed run for this date (we hold the lock)
    if symbology is None and (dbn_path.parent / "symbology.json").is_file():
        symbology = dbn_path.parent / "symbology.json"
    try:
        parquet = scratch / "data.parquet"
        result = convert_dbn(dbn_path, parquet, symbology=symbology, source_sha256=source_sha256,
                             source_name=source_name or dbn_path.name,
                             progress=progress.rows if progress else None)
        if result.date is not None and result.date.isoformat() != date:
            raise DataFormatError(f"{dbn_path.name}: holds {result.date}, expected {date}")
        check_options_of(parquet, result.dataset, underlying, source_name or dbn_path.name)
        digests = compute_digests(parquet, part_size=settings.part_size,
                                  multipart_threshold=settings.multipart_threshold)
        client = client or make_client(settings)
        key = settings.object_key(underlying, date)
        abort_stale_uploads(client, bucket, key)
        if progress:
            progress.start_upload(digests.size)
        remote = upload_verified(client, parquet, settings=settings, key=key, digests=digests,
                                 on_bytes=progress.sent if progress else None)
        marker = Marker(
            underlying=underlying, date=date, bucket=bucket, key=key, endpoint=strip_userinfo(settings.endpoint_url),
            size=digests.size, sha256=digests.sha256, md5=digests.md5, etag=remote.etag, parts=remote.parts,
            verified_by=remote.verified_by, rows=result.rows, source_file=result.source,
            source_size=dbn_path.stat().st_size, source_sha256=result.source_sha256, zip_file=zip_file,
            dbn_version=result.dbn_version, started_at=started, uploaded_at=utc_now(), attempts=remote.attempts,
        )
        write_marker(layout, marker)
        return marker
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------- the batch


def select_dates(inventory: ZipInventory, dates: Iterable[str] | None) -> list[str]:
    if not dates:
        return inventory.dates
    wanted = [check_date(d) for d in dict.fromkeys(dates)]
    missing = [d for d in wanted if d not in inventory.days]
    if missing:
        raise ConfigError(f"{inventory.path.name}: no day file for {', '.join(missing)}")
    return sorted(wanted)


def run_batch(zip_path: Path | str, *, dates: Iterable[str] | None = None, dry_run: bool = False,
              settings: S3Settings, layout: DataLayout, underlying: str = DEFAULT_UNDERLYING,
              progress: bool = True, handle_signals: bool = False, preflight: bool = True,
              client: S3Client | None = None, report: Callable[[str], None] | None = None,
              redo: Iterable[str] | None = None) -> BatchSummary:
    """Upload every (or the given) day of a batch ZIP; verified dates are skipped, failed ones retried.

    ``dry_run`` checks the ZIP's directory and manifest and reports the plan without writing or
    contacting S3 (member hashes are verified when a day is extracted). With ``handle_signals`` the
    first SIGINT/SIGTERM/SIGHUP stops after the current date (see shutdown.py). ``report`` receives
    one line per preflight check. ``redo``: dates whose markers are dropped first, so they are
    uploaded again (e.g. after ``validate`` found their object missing or changed).
    """
    inventory = read_inventory(zip_path)  # every member checked before any work
    selected = select_dates(inventory, dates)
    again = select_dates(inventory, redo) if redo else []
    summary = BatchSummary(inventory.path, dry_run)
    if dry_run:
        summary.outcomes = [_planned(inventory, d, settings, layout, underlying, redo=d in again) for d in selected]
        return summary
    client = client or make_client(settings)
    total = sum(inventory.days[d].size for d in selected)
    with GracefulStop(enabled=handle_signals) as stop:  # also around preflight: its probe object is removed
        if preflight:
            from cxq_data.options.preflight import run_preflight

            run_preflight(inventory, selected, settings=settings, layout=layout, client=client, report=report)
        for date in again:
            forget_verified(layout, underlying, date)
        remove_dead_work(layout, underlying)
        _run_days(inventory, selected, summary, stop, settings=settings, layout=layout, underlying=underlying,
                  client=client, bars=BatchProgress(total_days=len(selected), total_bytes=total, enabled=progress))
    return summary


def remove_dead_work(layout: DataLayout, underlying: str) -> int:
    """Delete the extract and upload folders that killed runs left for any date of ``underlying``
    (a date whose lock nobody holds); a rerun of one date used to clean only that date's."""
    removed = 0
    for kind in ("extract", "upload"):
        root = work_dir(layout, kind, underlying)
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            try:
                with date_lock(layout, underlying, check_date(folder.name)):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            except (ValueError, DateBusyError):  # not a date folder, or a live run's
                continue
    return removed


def forget_verified(layout: DataLayout, underlying: str, date: str) -> None:
    """Drop ``date``'s marker (under its lock) so the next run uploads the day again."""
    with date_lock(layout, underlying, date):
        marker_path(layout, underlying, date).unlink(missing_ok=True)


def _run_days(inventory: ZipInventory, selected: list[str], summary: BatchSummary, stop: GracefulStop, *,
              settings: S3Settings, layout: DataLayout, underlying: str, client: S3Client,
              bars: BatchProgress) -> None:
    with bars:
        for date in selected:
            if stop.requested:
                summary.interrupted = True
                summary.outcomes.append(DayOutcome(date, "pending", detail=f"stopped by {stop.signal_name}"))
                continue
            if summary.stopped_early is None and summary.outcomes and summary.outcomes[-1].s3_unavailable:
                summary.stopped_early = _still_unavailable(client, settings)
            if summary.stopped_early is not None and _verified(layout, settings, underlying, date) is None:
                # extracting and converting a day (minutes) would be in vain until S3 is back
                summary.outcomes.append(DayOutcome(date, "pending", detail=f"not attempted: {summary.stopped_early}"))
                continue
            outcome = _run_one(inventory, date, settings=settings, layout=layout, underlying=underlying,
                               client=client, day_progress=bars.day(date))
            summary.outcomes.append(outcome)
            bars.finish_day(inventory.days[date].size, f"{date} {outcome.status}")


def _still_unavailable(client: S3Client, settings: S3Settings) -> str | None:
    """After an upload failed on the destination: probe it (HeadBucket, put + delete a tiny object).
    None when it works again (a blip: go on), else why not (stop: every day would fail the same way)."""
    from cxq_data.options.preflight import check_bucket

    probe = check_bucket(client, settings)
    return None if probe.ok else f"S3 unavailable ({probe.detail})"


def _planned(inventory: ZipInventory, date: str, settings: S3Settings, layout: DataLayout,
             underlying: str, redo: bool = False) -> DayOutcome:
    member = inventory.days[date]
    done = _verified(layout, settings, underlying, date)
    if done is not None and not redo:
        return DayOutcome(date, "skipped", done.rows, done.size, detail="verified marker exists")
    where = f"s3://{settings.bucket or '<S3_BUCKET_NAME>'}/{settings.object_key(underlying, date)}"
    return DayOutcome(date, "planned", None, member.size, detail=f"{member.filename} -> {where}")


def _run_one(inventory: ZipInventory, date: str, *, settings: S3Settings, layout: DataLayout, underlying: str,
             client: S3Client, day_progress: DayProgress) -> DayOutcome:
    if (done := _verified(layout, settings, underlying, date)) is not None:
        return DayOutcome(date, "skipped", done.rows, done.size, detail="already verified")
    started = time.monotonic()
    extract_to = work_dir(layout, "extract", underlying, date)  # the lock is per (underlying, date) too
    stage = "extract"
    try:
        # the lock covers the extract too: a second run of the same ZIP must not clear this run's files
        with date_lock(layout, underlying, date):
            if (done := _verified(layout, settings, underlying, date)) is not None:
                return DayOutcome(date, "skipped", done.rows, done.size, detail="verified by another process")
            shutil.rmtree(extract_to, ignore_errors=True)
            try:
                dbn = extract_day(inventory.path, date, extract_to, inventory=inventory)
                stage = "process"  # _process_locked records its own failures
                marker = _process_locked(dbn, date, settings=settings, layout=layout, underlying=underlying,
                                         client=client, progress=day_progress, symbology=None,
                                         **_source_of(inventory, date))
            finally:
                shutil.rmtree(extract_to, ignore_errors=True)
    except DateBusyError as exc:  # not a failure of the day: it is being done elsewhere
        return DayOutcome(date, "failed", seconds=time.monotonic() - started, detail=str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad day must not stop the others; recorded, retried
        member = inventory.days[date]
        down = isinstance(exc, S3UnavailableError)
        # name the ZIP member, not the temporary extract (deleted by now)
        message = settings.redact(str(exc)).replace(str(extract_to / member.filename),
                                                    f"{inventory.path.name}:{member.name}")
        log.error("%s: %s", date, message)
        if stage == "extract":
            record_failure(layout, underlying, date, f"{type(exc).__name__}: {message}")
        return DayOutcome(date, "failed", seconds=time.monotonic() - started, detail=message, s3_unavailable=down)
    return DayOutcome(date, "uploaded", marker.rows, marker.size, time.monotonic() - started,
                      detail=f"{marker.verified_by}, {marker.attempts} attempt(s)")


def check_options_of(parquet: Path, dataset: str, underlying: str, name: str) -> None:
    """The day holds OPRA options on ``underlying`` (roots ``SPY``, or ``SPY1``... for series adjusted
    after a corporate action): another dataset or another underlying must not land under
    ``underlying=SPY`` just because the ZIP said so."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not dataset.upper().startswith("OPRA"):
        raise DataFormatError(f"{name}: dataset {dataset}, not OPRA options data")
    roots = [r for r in pc.unique(pq.read_table(parquet, columns=["root"])["root"]).to_pylist() if r is not None]
    others = sorted(r for r in roots if r != underlying and not (r.startswith(underlying)
                                                                 and r[len(underlying):].isdigit()))
    if others:
        raise DataFormatError(f"{name}: options on {', '.join(others[:5])}, expected {underlying}")


def _source_of(inventory: ZipInventory, date: str) -> dict[str, Any]:
    """What a marker and the Parquet metadata record about a day's origin: the member, not the temp copy."""
    member = inventory.days[date]
    return {"source_sha256": member.sha256, "source_name": member.filename, "zip_file": inventory.path.name}


# --------------------------------------------------------------------------- Snakemake helpers


def process_extracted_day(dbn_path: Path | str, date: str, zip_path: Path | str, *, settings: S3Settings,
                          layout: DataLayout, underlying: str = DEFAULT_UNDERLYING) -> Marker:
    """:func:`process_day` for a day already extracted from ``zip_path`` (the Snakemake rules): the
    object and the marker name the ZIP member, so they equal what the standalone script makes."""
    return process_day(dbn_path, date, settings=settings, layout=layout, underlying=underlying,
                       **_source_of(read_inventory(zip_path), date))


def _zip_paths(layout: DataLayout, options_config: Mapping[str, Any]) -> list[Path]:
    pattern = str(options_config.get("zip_glob") or DEFAULT_ZIP_GLOB)
    return sorted(layout.root.glob(pattern))


def planned_dates(layout: DataLayout, options_config: Mapping[str, Any]) -> list[str]:
    """Every date in the configured ZIP(s), or the configured subset (unknown dates are an error)."""
    try:
        wanted = [check_date(str(d)) for d in options_config.get("dates") or []]
    except ValueError as exc:
        raise ConfigError(f"options.dates: {exc}") from None
    known: set[str] = set()
    for path in _zip_paths(layout, options_config):
        known.update(read_inventory(path).dates)
    missing = [d for d in wanted if d not in known]
    if missing:
        raise ConfigError(f"options.dates not in any ZIP matching {options_config.get('zip_glob')}: "
                          f"{', '.join(missing)}")
    return sorted(wanted or known)


def zip_for_date(layout: DataLayout, options_config: Mapping[str, Any], date: str) -> Path:
    """The ZIP that holds ``date`` (the last by name if several do: newer job ids sort later)."""
    for path in reversed(_zip_paths(layout, options_config)):
        if date in read_inventory(path).days:
            return path
    raise ConfigError(f"no ZIP matching {options_config.get('zip_glob')} under {layout.root} holds {date}")
