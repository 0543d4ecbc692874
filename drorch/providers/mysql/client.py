"""A small MySQL/MariaDB client for drorch's own administrative work.

Each call opens a short-lived connection with tight timeouts: during an outage a
hung socket to a dying primary must cost seconds, not minutes, and a fresh
connection never carries session state from an earlier step.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pymysql.cursors

from drorch.providers import retry
from drorch.providers.mysql.flavor import FLAVORS, Flavor, ReplicaStatus, SemiSync, Statement


@dataclass(frozen=True)
class ServerAddress:
    """Where a server listens and how drorch logs in (the password is kept out of repr)."""

    name: str
    host: str
    port: int
    user: str
    password: str
    flavor_name: str = "mariadb"
    connect_timeout: float = 2.0
    tls: str = "preferred"

    def __repr__(self) -> str:
        return f"ServerAddress({self.name} {self.user}@{self.host}:{self.port})"


@dataclass(frozen=True)
class ServerState:
    """An immutable snapshot of one server, taken in one connection."""

    name: str
    read_only: bool
    executed_gtid: str
    binlog_gtid: str
    replica: ReplicaStatus | None
    semi_sync_source_on: bool
    semi_sync_source_active: bool
    history: str = ""  # per-origin history: gtid_binlog_state (MariaDB), gtid_executed (MySQL)
    origin: str = ""  # what this server's own transactions carry: server_id (MariaDB), server_uuid (MySQL)
    semi_sync: SemiSync = field(default_factory=SemiSync)


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle costs ~50 ms, too much for every short-lived connection."""
    return ssl.create_default_context()


def _tls_options(mode: str) -> dict[str, Any]:
    if mode == "disabled":
        return {"ssl_disabled": True}
    if mode == "required":
        return {"ssl": _verifying_context()}
    return {}


class MySQLClient:
    def __init__(self, address: ServerAddress) -> None:
        self.address = address
        self.flavor: Flavor = FLAVORS[address.flavor_name]

    @contextlib.contextmanager
    def connection(self, read_timeout: float = 10.0) -> Iterator[pymysql.connections.Connection[Any]]:
        conn = self.open(read_timeout)
        try:
            yield conn
        finally:
            conn.close()

    def open(self, read_timeout: float = 10.0) -> pymysql.connections.Connection[Any]:
        """A new autocommit connection; the caller closes it (``connection()`` does that for you)."""
        return pymysql.connect(
            host=self.address.host,
            port=self.address.port,
            user=self.address.user,
            password=self.address.password,
            connect_timeout=self.address.connect_timeout,
            read_timeout=read_timeout,
            write_timeout=read_timeout,
            autocommit=True,
            cursorclass=pymysql.cursors.DictCursor,
            **_tls_options(self.address.tls),
        )

    def query(
        self, sql: str, args: tuple[Any, ...] = (), read_timeout: float = 10.0, attempts: int = 4
    ) -> list[dict[str, Any]]:
        """Run one query; probes pass ``attempts=1`` so that a failure counts instead of being retried away."""

        def run() -> list[dict[str, Any]]:
            with self.connection(read_timeout) as conn, conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())

        return retry.call(run, attempts=attempts)

    def execute(self, *statements: str | Statement) -> None:
        """Run statements in order on one connection (retried as a whole: each must be idempotent)."""

        def run() -> None:
            with self.connection() as conn, conn.cursor() as cur:
                for statement in statements:
                    sql, args = (statement, ()) if isinstance(statement, str) else statement
                    cur.execute(sql, args)

        retry.call(run)

    def ping(self) -> bool:
        """True when the server answers right now (no retries: this is a probe)."""
        try:
            with self.connection(read_timeout=self.address.connect_timeout) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except pymysql.MySQLError:
            return False

    def wait_answering(self, timeout: float, interval: float = 1.0) -> float | None:
        """Seconds until the server answered (0 when it does now); None when it still does not after ``timeout``."""
        started = time.monotonic()
        while not self.ping():
            if time.monotonic() - started > timeout:
                return None
            time.sleep(interval)
        return round(time.monotonic() - started, 3)

    def state(self, attempts: int = 4, read_timeout: float = 10.0) -> ServerState:
        def run() -> ServerState:
            with self.connection(read_timeout) as conn, conn.cursor() as cur:
                return self.read_state(cur)

        return retry.call(run, attempts=attempts)

    def read_state(self, cur: Any) -> ServerState:
        """The server's state through an open cursor (probes add their own queries on the same connection)."""
        flavor = self.flavor
        cur.execute(flavor.state_sql())
        row = cur.fetchone() or {}
        cur.execute(flavor.replica_status_sql())
        replica_row = cur.fetchone()
        cur.execute(flavor.semi_sync_variables_sql())
        variables = {r["Variable_name"]: str(r["Value"]) for r in cur.fetchall()}
        cur.execute(flavor.semi_sync_status_sql())
        semi = flavor.parse_semi_sync(variables, {r["Variable_name"]: str(r["Value"]) for r in cur.fetchall()})
        return ServerState(
            name=self.address.name,
            read_only=bool(int(row.get("ro", 0))),
            executed_gtid=str(row.get("cur") or ""),
            binlog_gtid=str(row.get("bin") or ""),
            replica=flavor.parse_replica_status(replica_row) if replica_row else None,
            semi_sync_source_on=semi.source_enabled,
            semi_sync_source_active=semi.source_active,
            history=str(row.get("history") or ""),
            origin=str(row.get("origin") or ""),
            semi_sync=semi,
        )
