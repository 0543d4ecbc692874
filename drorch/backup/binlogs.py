"""Binlog shipping: the current primary's binary log copied to the store as it is written.

``mariadb-binlog --read-from-remote-server --raw --stop-never`` registers with the
primary like a replica (the replication account, through a 0600 option file) and
writes its binlog files, byte for byte, into a private temporary directory. Every
``interval_seconds`` the shipper uploads what those files gained, cut at the last
whole transaction, as one object per segment (``binlogs/STREAM/FILE/START-END_FIRST_LAST.gz``,
its SHA-256 in the object's metadata). The newest shipped event, and the moment the
shipper last held everything the primary had written, bound the backup tier's RPO;
both are kept in ``binlogs/state.json`` so any controller can read them.

The shipper follows the current primary: after a failover it starts a new stream
from the new primary's binlogs (the restore removes the transactions two streams
share, by GTID), and after a failback it resumes the old stream where it stopped.
A stream is one server's continuous binlog history; a server whose binlog was
reset (a rebuild) starts a new one, so objects never collide.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drorch.backup import events, layout
from drorch.backup.layout import Segment
from drorch.backup.store import Store, backups_of, gzip_chunks
from drorch.engine.topology import observe
from drorch.errors import DrorchError, InvalidInput, OperationFailed
from drorch.providers.estate import Estate
from drorch.providers.mysql.admin import admin_client
from drorch.providers.mysql.client import MySQLClient, ServerAddress
from drorch.replication.rebuild import options_file

FOLLOW_EVERY = 2.0  # seconds between checks of which site is the primary
STOP_TIMEOUT = 5.0


@dataclass
class Stream:
    """Where shipping of one site's binlog stands: its stream id, the file and the bytes of it already shipped."""

    stream: str
    site: str
    file: str
    offset: int

    def to_json(self) -> dict[str, Any]:
        return {"stream": self.stream, "site": self.site, "file": self.file, "offset": self.offset}


@dataclass
class ShippingState:
    """``binlogs/state.json``: every stream's head, the newest shipped event and when shipping was caught up."""

    streams: dict[str, Stream] = field(default_factory=dict)  # site -> its current stream
    current: str | None = None
    newest_event: float | None = None
    caught_up_at: float | None = None
    updated_at: float | None = None
    last_error: str | None = None

    def shipped_through(self) -> float | None:
        """The time up to which every transaction of the primary is in the store."""
        known = [t for t in (self.newest_event, self.caught_up_at) if t is not None]
        return max(known) if known else None

    def to_json(self) -> dict[str, Any]:
        return {"streams": {site: s.to_json() for site, s in self.streams.items()}, "current": self.current,
                "newest_event": self.newest_event, "caught_up_at": self.caught_up_at,
                "updated_at": self.updated_at, "last_error": self.last_error}

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> ShippingState:
        if not doc:
            return cls()
        streams = {site: Stream(**value) for site, value in (doc.get("streams") or {}).items()}
        return cls(streams, doc.get("current"), doc.get("newest_event"), doc.get("caught_up_at"),
                   doc.get("updated_at"), doc.get("last_error"))


def read_state(store: Store) -> ShippingState:
    return ShippingState.from_json(store.get_json(layout.SHIPPING_STATE))


def _binary_logs(db: MySQLClient) -> dict[str, int]:
    return {str(r["Log_name"]): int(r["File_size"]) for r in db.query("SHOW BINARY LOGS")}


class Shipper:
    """Ships the primary's binlog while ``run`` runs (in a thread of ``serve``, or ``backup ship-binlogs``).

    ``step`` does one round and may be called directly (tests, ``--once``); ``close`` stops the reader process
    by its PID and removes the local copies."""

    def __init__(self, estate: Estate, store: Store | None = None) -> None:
        self.estate = estate
        self.config = estate.config
        self.settings = backups_of(self.config).binlogs
        self.store = store or Store(self.config)
        self.state = read_state(self.store)
        self.tmp = Path(tempfile.mkdtemp(prefix="drorch-binlogs-"))
        self.site: str | None = None
        self.stream: Stream | None = None
        self.shipped: dict[str, int] = {}  # file -> bytes shipped, of the current stream
        self.reader: subprocess.Popen[bytes] | None = None
        self._followed_at = 0.0
        self.segments_shipped = 0
        self.bytes_shipped = 0
        self.last_error: str | None = None
        self._dirty = False

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> None:
        """Ship until ``stop`` is set; errors are kept in ``last_error`` (and the store's state) and retried."""
        try:
            while not stop.is_set():
                try:
                    self.step()
                    self.last_error = None
                except DrorchError as exc:
                    self._failed(str(exc))
                except Exception as exc:  # a database or store hiccup: next round tries again
                    self._failed(f"{type(exc).__name__}: {exc}")
                stop.wait(self.settings.interval_seconds)
        finally:
            self.close()

    def _failed(self, message: str) -> None:
        self.last_error = message
        self.state.last_error = message
        with contextlib.suppress(Exception):
            self._save()

    def step(self, now: float | None = None) -> int:
        """One round: follow the primary, upload what its binlog gained; returns the bytes uploaded."""
        primary = self._follow()
        if primary is None or self.stream is None:
            return 0
        db = admin_client(self.estate, primary)
        status = db.query("SHOW MASTER STATUS")
        asked_at = time.time() if now is None else now
        shipped = self._ship_files()
        if status and self.stream.file == str(status[0]["File"]) and self.stream.offset >= int(status[0]["Position"]):
            self.state.caught_up_at = asked_at
            self._dirty = True
        if self._dirty:
            self._save()
        return shipped

    def rpo_seconds(self, now: float | None = None) -> float | None:
        through = self.state.shipped_through()
        return None if through is None else max(0.0, (time.time() if now is None else now) - through)

    def close(self) -> None:
        """Stop the reader (by its PID), upload what it had, and remove the local copies."""
        self._stop_reader()
        with contextlib.suppress(Exception):
            if self.stream is not None:
                self._ship_files()
            if self._dirty:
                self._save()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ following the primary

    def _follow(self) -> str | None:
        reader_died = self.reader is not None and self.reader.poll() is not None
        if not reader_died and self.site is not None and time.monotonic() - self._followed_at < FOLLOW_EVERY:
            return self.site
        self._followed_at = time.monotonic()
        topology = observe(self.estate)
        primary = topology.primary
        if topology.states.get(primary) is None or len(topology.writable) > 1:
            return self.site if not reader_died else None  # no clear primary now: keep what we have
        if primary != self.site or reader_died:
            if self.stream is not None:
                self._stop_reader()
                self._ship_files()
            self._start(primary)
        return self.site

    def _start(self, site: str) -> None:
        db = admin_client(self.estate, site)
        files = _binary_logs(db)
        if not files:
            raise OperationFailed(f"{site} writes no binary log: binlog shipping needs log_bin on the primary")
        known = self.state.streams.get(site)
        if known is not None and files.get(known.file, -1) >= known.offset:
            stream = known  # the same history goes on: resume where it stopped
        else:
            stream = Stream(f"{site}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}", site, min(files), 0)
        self.site, self.stream = site, stream
        self.shipped = {stream.file: stream.offset}
        self.state.streams[site] = stream
        self.state.current = site
        self._dirty = True
        local = self.tmp / "files"
        shutil.rmtree(local, ignore_errors=True)
        local.mkdir()
        self.reader = self._spawn(site, stream.file)

    def _spawn(self, site: str, first_file: str) -> subprocess.Popen[bytes]:
        endpoint = self.config.site(site).mysql
        topology = self.config.data.mysql
        address = ServerAddress(site, endpoint.host, endpoint.port, topology.replication_user,
                                self.estate.replication_password(), endpoint.flavor, endpoint.connect_timeout_seconds,
                                endpoint.tls)
        db = self.estate.mysql(site)
        program = shutil.which("mariadb-binlog")
        if program is None:
            raise InvalidInput("'mariadb-binlog' was not found on PATH: shipping needs it; install mariadb-client")
        options = self.tmp / "reader.cnf"
        options.unlink(missing_ok=True)
        options_file(options, address, db.flavor, [])
        local = self.tmp / "files"
        errors = open(self.tmp / "reader.err", "wb")  # noqa: SIM115 - the reader writes it for its lifetime
        try:
            return subprocess.Popen(
                [program, f"--defaults-extra-file={options}", "--read-from-remote-server", "--raw", "--stop-never",
                 f"--stop-never-slave-server-id={self.settings.server_id}", f"--result-file={local}/", first_file],
                stdout=subprocess.DEVNULL, stderr=errors, stdin=subprocess.DEVNULL)
        finally:
            errors.close()

    def _stop_reader(self) -> None:
        reader, self.reader = self.reader, None
        if reader is None:
            return
        if reader.poll() is None:
            reader.terminate()
            try:
                reader.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                reader.kill()
                reader.wait(STOP_TIMEOUT)
        (self.tmp / "reader.cnf").unlink(missing_ok=True)

    # ------------------------------------------------------------------ uploading

    def _ship_files(self) -> int:
        assert self.stream is not None
        local = self.tmp / "files"
        if not local.is_dir():
            return 0
        names = sorted(p.name for p in local.iterdir() if p.is_file() and p.name >= self.stream.file)
        uploaded = 0
        for index, name in enumerate(names):
            size = (local / name).stat().st_size
            uploaded += self._ship(name, local / name, size)
            newer_exists = index < len(names) - 1
            if newer_exists and self.shipped.get(name, 0) >= size:
                (local / name).unlink()  # rotated and fully shipped
        return uploaded

    def _ship(self, name: str, path: Path, size: int) -> int:
        """Upload the whole transactions the file gained since its shipped offset (only those bytes are read)."""
        assert self.stream is not None
        start = self.shipped.get(name, 0)
        if size <= start:
            return 0
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read(size - start)
        scan = events.whole_transactions(data, 0, magic=start == 0)
        if scan.end <= 0 or scan.last_event is None or scan.first_event is None:
            return 0
        segment = Segment(self.stream.stream, name, start, start + scan.end, scan.first_event, scan.last_event)
        packed = b"".join(gzip_chunks([data[:scan.end]], 6))
        self.store.put_bytes(segment.key, packed, {"stream": segment.stream})
        self.shipped[name] = segment.end
        self.stream.file, self.stream.offset = name, segment.end
        self.state.newest_event = max(self.state.newest_event or 0.0, float(scan.last_event))
        self.segments_shipped += 1
        self.bytes_shipped += scan.end
        self._dirty = True
        return scan.end

    def _save(self) -> None:
        self.state.updated_at = time.time()
        self.store.put_json(layout.SHIPPING_STATE, self.state.to_json())
        self._dirty = False
