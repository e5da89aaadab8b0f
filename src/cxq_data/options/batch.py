"""Databento batch ZIP: inventory, manifest hashes and verified one-member-at-a-time extraction.

A batch job ZIP holds one ``{dataset}-{YYYYMMDD}.{schema}.dbn.zst`` per UTC day plus support files
(``manifest.json``, ``metadata.json``, ``symbology.json``, ``condition.json``), at the root or under
one ``{job_id}/`` folder. Jobs above 4 GB are ZIP64, which ``zipfile`` reads. We never extract the
whole archive: a day member is streamed to a temp file next to its destination while its SHA-256 is
computed, compared with the manifest and only then renamed into place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cxq_data.atomic import atomic_path
from cxq_data.errors import DataFormatError

SUPPORT_FILES = frozenset({"manifest.json", "metadata.json", "symbology.json", "condition.json", "symbology.csv"})
# opra-pillar-20250807.cbbo-1m.dbn.zst -> dataset "opra-pillar", day 20250807, schema cbbo-1m
DAY_MEMBER_RE = re.compile(r"^(?P<dataset>[a-z0-9-]+)-(?P<day>\d{8})\.(?P<schema>cbbo-1[ms])\.dbn(?:\.zst)?$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DayMember:
    date: str  # YYYY-MM-DD
    name: str  # member name inside the ZIP
    size: int  # uncompressed bytes
    sha256: str | None  # from manifest.json (hex), None when the manifest does not list it

    @property
    def filename(self) -> str:
        return PurePosixPath(self.name).name


@dataclass(frozen=True)
class ZipInventory:
    path: Path
    days: dict[str, DayMember]  # date -> member, sorted by date
    support: dict[str, str] = field(default_factory=dict)  # basename -> member name
    manifest: dict[str, str] = field(default_factory=dict)  # basename -> sha256 hex

    @property
    def dates(self) -> list[str]:
        return list(self.days)

    def member(self, date: str) -> DayMember:
        try:
            return self.days[date]
        except KeyError:
            raise DataFormatError(f"{self.path.name}: no day file for {date} "
                                  f"(the ZIP holds {_span(self.dates)})") from None

    @property
    def largest_member(self) -> int:
        return max((m.size for m in self.days.values()), default=0)


def _span(dates: list[str]) -> str:
    return f"{len(dates)} days, {dates[0]} .. {dates[-1]}" if dates else "no day files"


def check_member_name(name: str, zip_name: str) -> PurePosixPath:
    """Reject names that could write outside the destination folder (zip-slip) or are not plain."""
    path = PurePosixPath(name)
    bad = (not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name
           or re.match(r"^[A-Za-z]:", name) is not None or ".." in path.parts or len(path.parts) > 2)
    if bad:
        raise DataFormatError(f"{zip_name}: unsafe member name {name!r} (absolute, '..', drive or nested path)")
    return path


def read_inventory(zip_path: Path | str) -> ZipInventory:
    """List and check every member; any unexpected member is an error naming it (before any work)."""
    zip_path = Path(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{zip_path}: not a readable ZIP file ({exc})") from None
    with archive:
        days: dict[str, DayMember] = {}
        support: dict[str, str] = {}
        infos = [i for i in archive.infolist() if not i.is_dir()]
        for info in infos:
            base = check_member_name(info.filename, zip_path.name).name
            if base in SUPPORT_FILES:
                support[base] = info.filename
        manifest = _read_manifest(archive, support.get("manifest.json"), zip_path.name)
        for info in infos:
            base = PurePosixPath(info.filename).name
            if base in SUPPORT_FILES:
                continue
            date = _day_of(base, zip_path.name, info.filename)
            if date in days:
                raise DataFormatError(f"{zip_path.name}: two members for {date}: {days[date].name}, {info.filename}")
            days[date] = DayMember(date, info.filename, info.file_size, manifest.get(base))
    present = {m.filename for m in days.values()} | set(support)
    absent = sorted(name for name in manifest if name not in present)
    if absent:
        raise DataFormatError(f"{zip_path.name}: manifest.json lists {', '.join(absent)} but the ZIP lacks it "
                              "(incomplete download?)")
    return ZipInventory(zip_path, dict(sorted(days.items())), support, manifest)


def _day_of(base: str, zip_name: str, member: str) -> str:
    match = DAY_MEMBER_RE.match(base)
    if match is None:
        raise DataFormatError(f"{zip_name}: member {member!r} is not a cbbo-1m/cbbo-1s day file "
                              "({dataset}-YYYYMMDD.cbbo-1m.dbn.zst) nor a known support file")
    day = match["day"]
    try:
        return dt.datetime.strptime(day, "%Y%m%d").date().isoformat()
    except ValueError:
        raise DataFormatError(f"{zip_name}: member {member!r} has an invalid date {day}") from None


def _read_manifest(archive: zipfile.ZipFile, member: str | None, zip_name: str) -> dict[str, str]:
    """basename -> sha256 hex. Accepts a list or ``{"files": [...]}``; ``sha256:<hex>`` or bare hex."""
    if member is None:
        return {}
    try:
        doc = json.loads(archive.read(member))
    except (ValueError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{zip_name}: {member} is not valid JSON ({exc})") from None
    entries: Any = doc.get("files", []) if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise DataFormatError(f"{zip_name}: {member}: expected a list of files or {{'files': [...]}}")
    hashes: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("filename"):
            continue
        digest = entry.get("hash") or entry.get("sha256")
        if digest:
            hashes[PurePosixPath(str(entry["filename"])).name] = normalize_sha256(str(digest), zip_name)
    return hashes


def normalize_sha256(value: str, context: str) -> str:
    hex_part = value.strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", hex_part):
        raise DataFormatError(f"{context}: manifest hash {value!r} is not a sha256 (hex or sha256:<hex>)")
    return hex_part


def extract_member(zip_path: Path | str, member_name: str, dest: Path, expected_sha256: str | None) -> str:
    """Stream one member to ``dest`` (atomic); verify its SHA-256; return the hex digest."""
    zip_path = Path(zip_path)
    digest = hashlib.sha256()
    with zipfile.ZipFile(zip_path) as archive, archive.open(member_name) as src, atomic_path(dest) as tmp:
        with open(tmp, "wb") as out:
            while block := src.read(_CHUNK):
                digest.update(block)
                out.write(block)
        actual = digest.hexdigest()
        if expected_sha256 is not None and actual != expected_sha256:
            raise DataFormatError(f"{zip_path.name}: member {member_name} fails its manifest hash: "
                                  f"sha256 {actual}, manifest says {expected_sha256}")
    return actual


def extract_day(zip_path: Path | str, date: str, dest_dir: Path | str,
                inventory: ZipInventory | None = None) -> Path:
    """Extract the day file for ``date`` into ``dest_dir`` after checking it against the manifest.

    Also puts ``symbology.json`` next to it (small; the converter's mapping fallback). Returns the
    path of the verified ``.dbn.zst``. On any error nothing is left under ``dest_dir``.
    """
    inventory = inventory or read_inventory(zip_path)
    member = inventory.member(date)
    dest_dir = Path(dest_dir)
    dest = dest_dir / member.filename
    extract_member(inventory.path, member.name, dest, member.sha256)
    if "symbology.json" in inventory.support:
        try:
            extract_support(inventory, "symbology.json", dest_dir)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
    return dest


def extract_support(inventory: ZipInventory, name: str, dest_dir: Path) -> Path:
    dest = Path(dest_dir) / name
    extract_member(inventory.path, inventory.support[name], dest, inventory.manifest.get(name))
    return dest
