"""Replication lag measured with heartbeats, not ``Seconds_Behind_Master``.

drorch writes a row on the primary at a fixed interval (default 250 ms) holding a
sequence number and the controller's own microsecond clock; each replica's lag
is *now minus the newest heartbeat it holds*. Unlike ``Seconds_Behind_Master``
this keeps growing when replication stops and is honest when the IO thread is
behind. Writing and reading with the controller's clock avoids clock skew
between database hosts.

The write is conditional on ``read_only = 0``: drorch's account may bypass
``read_only`` (it needs to set it), and a heartbeat must never be written on a
fenced primary, where it would fake freshness that no replica will ever see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pymysql

from drorch.providers.mysql.client import MySQLClient


@dataclass(frozen=True)
class Beat:
    origin: str
    seq: int
    written_at: float


def create_table_sql(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (origin VARCHAR(64) NOT NULL PRIMARY KEY, "
        "seq BIGINT NOT NULL, ts DECIMAL(20,6) NOT NULL) ENGINE=InnoDB"
    )


_WRITE = ("INSERT INTO {table} (origin, seq, ts) SELECT %s, %s, %s FROM DUAL WHERE @@GLOBAL.read_only = 0 "
          "ON DUPLICATE KEY UPDATE seq = VALUES(seq), ts = VALUES(ts)")


def write(db: MySQLClient, table: str, origin: str, seq: int, now: float | None = None) -> None:
    """Write one heartbeat if the server is writable (a fenced server silently gets none). One attempt only."""
    stamp = time.time() if now is None else now
    db.query(_WRITE.format(table=table), (origin, seq, f"{stamp:.6f}"), read_timeout=2.0, attempts=1)


def newest(db: MySQLClient, table: str, timeout: float = 2.0) -> Beat | None:
    """The newest heartbeat the server holds (None when it holds none). One attempt only."""
    return _beat(db.query(_NEWEST.format(table=table), read_timeout=timeout, attempts=1))


def of_origin(db: MySQLClient, table: str, origin: str, timeout: float = 2.0) -> Beat | None:
    """The newest heartbeat written on ``origin`` that this server holds."""
    sql = f"SELECT origin, seq, ts FROM {table} WHERE origin = %s"
    return _beat(db.query(sql, (origin,), read_timeout=timeout, attempts=1))


def read_newest(cur: Any, table: str) -> Beat | None:
    """The same through an open cursor, so a probe reads state and heartbeat on one connection."""
    cur.execute(_NEWEST.format(table=table))
    return _beat(list(cur.fetchall()))


_NEWEST = "SELECT origin, seq, ts FROM {table} ORDER BY ts DESC LIMIT 1"


def _beat(rows: list[dict[str, Any]]) -> Beat | None:
    if not rows:
        return None
    return Beat(str(rows[0]["origin"]), int(rows[0]["seq"]), float(rows[0]["ts"]))


def lag_seconds(beat: Beat | None, now: float | None = None) -> float | None:
    """Now minus the newest heartbeat; None when no heartbeat was ever replicated."""
    if beat is None:
        return None
    return max(0.0, (time.time() if now is None else now) - beat.written_at)


class Writer:
    """Writes heartbeats on whichever site ``primary()`` names, every ``interval`` seconds, in a thread."""

    def __init__(self, clients: Callable[[str], MySQLClient], primary: Callable[[], str | None], table: str,
                 interval: float) -> None:
        self._clients, self._primary, self._table, self._interval = clients, primary, table, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat-writer", daemon=True)
        self.seq = int(time.time() * 1000)  # monotonic across restarts without any stored state
        self.last_error: str | None = None
        self.last_written: float | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        """Keeps one connection to the current primary open (four connects a second would cost CPU)."""
        next_at = time.monotonic()
        conn: Any = None
        conn_site: str | None = None
        while not self._stop.is_set():
            site = self._primary()
            if site != conn_site and conn is not None:
                conn.close()
                conn, conn_site = None, None
            if site is not None:
                self.seq += 1
                try:
                    if conn is None:
                        conn, conn_site = self._clients(site).open(read_timeout=2.0), site
                    stamp = time.time()
                    with conn.cursor() as cur:
                        cur.execute(_WRITE.format(table=self._table), (site, self.seq, f"{stamp:.6f}"))
                    # the stamp of the newest acknowledged heartbeat: what a failover's RPO compares
                    self.last_written, self.last_error = stamp, None
                except pymysql.MySQLError as exc:
                    self.last_error = f"{site}: {exc.args[:1]}"
                    if conn is not None:
                        conn.close()
                    conn, conn_site = None, None
            next_at += self._interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if conn is not None:
            conn.close()
