"""Where each backup object lives in the store, and the manifest that describes a base backup.

Keys sort by time (ids and offsets are zero-padded), so listing a prefix is the
catalogue: no index object can disagree with what is really stored. A base backup
counts only once its manifest exists (written last), so an interrupted backup is
never restored from.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

BASE = "base/"
BINLOGS = "binlogs/"
SHIPPING_STATE = "binlogs/state.json"
DUMP_NAME = "dump.sql.gz"
MANIFEST_NAME = "manifest.json"
VERIFIED_NAME = "verified.json"
MANIFEST_FORMAT = 1

_SEGMENT = re.compile(r"^binlogs/(?P<stream>[^/]+)/(?P<file>[^/]+)/(?P<start>\d{12})-(?P<end>\d{12})"
                      r"_(?P<first>\d+)_(?P<last>\d+)\.gz$")


def new_backup_id(now: float | None = None) -> str:
    """``20261122T182550Z-1a2b``: sorts by time; the suffix keeps two backups in one second apart."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


def dump_key(backup_id: str) -> str:
    return f"{BASE}{backup_id}/{DUMP_NAME}"


def manifest_key(backup_id: str) -> str:
    return f"{BASE}{backup_id}/{MANIFEST_NAME}"


def verified_key(backup_id: str) -> str:
    return f"{BASE}{backup_id}/{VERIFIED_NAME}"


@dataclass(frozen=True)
class Segment:
    """Bytes ``[start, end)`` of one binlog file of one shipped stream, and the times of its first and last event.

    A stream is one server's continuous binlog history (a new one starts when the shipper follows another
    primary, or a server's binlog was reset), so file names never clash across servers."""

    stream: str
    file: str
    start: int
    end: int
    first_event: int  # event timestamps: whole seconds, as the binlog has them
    last_event: int

    @property
    def key(self) -> str:
        return (f"{BINLOGS}{self.stream}/{self.file}/{self.start:012d}-{self.end:012d}"
                f"_{self.first_event}_{self.last_event}.gz")


def parse_segment(key: str) -> Segment | None:
    match = _SEGMENT.match(key)
    if match is None:
        return None
    return Segment(match["stream"], match["file"], int(match["start"]), int(match["end"]), int(match["first"]),
                   int(match["last"]))


@dataclass(frozen=True)
class TableCheck:
    rows: int
    checksum: int


@dataclass(frozen=True)
class Manifest:
    """What one base backup holds and how to trust it (no secret is ever written here)."""

    id: str
    service: str
    site: str
    server: str  # host:port of the source
    server_version: str
    tool: str  # the dump program and its version
    drorch_version: str
    started_at: float
    snapshot_time: float  # the snapshot was taken at or before this time
    finished_at: float
    gtid_position: str
    object_key: str
    size: int  # bytes stored (compressed)
    raw_size: int
    sha256: str  # of the stored object
    compression: str
    schemas: list[str]
    tables: dict[str, TableCheck] = field(default_factory=dict)  # schema.table -> rows, checksum at gtid_position
    checks_position: str = ""  # the GTID position the table checks were read at ("" when none were)
    format: int = MANIFEST_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Manifest:
        tables = {name: TableCheck(**value) for name, value in (doc.get("tables") or {}).items()}
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{**{k: v for k, v in doc.items() if k in known}, "tables": tables})
