"""``drorch replication status``: who replicates from whom, how far behind, and what is unsafe.

One reading per server (state and newest heartbeat on one connection), then the facts
on-call needs and ``drorch status`` only summarises: threads, received and executed
GTIDs, heartbeat lag, the primary's semi-sync state said plainly when it fell back to
async, the last errors, and errant transactions. Lag comes from drorch's heartbeat
table (one beat is written on the primary first, so the figure is measured now), not
from ``Seconds_Behind_Master``, which reads 0 when the IO thread is the one behind.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from drorch.data import heartbeat
from drorch.engine.topology import site_at
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import ServerState
from drorch.providers.mysql.gtid import errant
from drorch.replication.roles import history

BEAT_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class SiteReplication:
    site: str
    role: str  # primary | replica | fenced (read-only, replicating from nobody) | unreachable
    error: str | None = None
    source: str | None = None  # the site (or host:port) it replicates from
    configured_source: str | None = None
    io_running: bool | None = None
    sql_running: bool | None = None
    received_gtid: str = ""
    executed_gtid: str = ""
    lag_seconds: float | None = None
    semi_sync: dict[str, Any] = field(default_factory=dict)
    last_io_error: str = ""
    last_sql_error: str = ""
    errant_gtids: list[str] = field(default_factory=list)
    errant_count: int = 0
    errant_against: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReplicationStatus:
    primary: str | None  # the one writable server (None: none, or split-brain)
    writable: list[str]
    sites: list[SiteReplication]

    @property
    def notes(self) -> list[str]:
        return [f"{s.site}: {note}" for s in self.sites for note in s.notes]

    def to_json(self) -> dict[str, Any]:
        return {"primary": self.primary, "writable": self.writable,
                "sites": {s.site: {k: v for k, v in asdict(s).items() if k != "site"} for s in self.sites},
                "notes": self.notes}


def status(estate: Estate) -> ReplicationStatus:
    sites = list(estate.config.sites)
    with ThreadPoolExecutor(max_workers=len(sites)) as pool:
        readings = dict(zip(sites, pool.map(lambda s: _read(estate, s), sites), strict=True))
    writable = [s for s, (state, _e) in readings.items() if state is not None and not state.read_only]
    primary = writable[0] if len(writable) == 1 else None
    lags = _lags(estate, primary, [s for s, (state, _e) in readings.items() if state is not None and s != primary])
    found = [_site(estate, site, readings, primary, lags.get(site)) for site in sites]
    return ReplicationStatus(primary, writable, found)


def _read(estate: Estate, site: str) -> tuple[ServerState | None, str | None]:
    db = estate.mysql(site)
    try:
        return db.state(attempts=1, read_timeout=5.0), None
    except Exception as exc:  # an unreachable server is a finding, not a failure of the command
        return None, f"{type(exc).__name__}: {exc.args[1] if len(exc.args) > 1 else exc}"[:200]


def _lags(estate: Estate, primary: str | None, replicas: list[str]) -> dict[str, float | None]:
    """Write one heartbeat on the primary, give it a moment to arrive, then read each replica's newest."""
    table = estate.config.data.heartbeat.table
    seq = int(time.time() * 1000)
    if primary is not None:
        try:
            heartbeat.write(estate.mysql(primary), table, primary, seq)
        except Exception:  # e.g. a semi-sync wait on a lost replica: lag is then reported as found
            primary = None
    lags: dict[str, float | None] = {}
    pending = list(replicas)
    deadline = time.monotonic() + BEAT_WAIT_SECONDS
    while pending:
        for site in list(pending):
            try:
                beat = heartbeat.newest(estate.mysql(site), table)
            except Exception:  # no heartbeat table there, or gone meanwhile
                beat = None
            lags[site] = heartbeat.lag_seconds(beat)  # at the moment of reading: waiting adds nothing
            if primary is None or (beat is not None and beat.origin == primary and beat.seq >= seq):
                pending.remove(site)
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return lags


def _site(estate: Estate, site: str, readings: dict[str, tuple[ServerState | None, str | None]],
          primary: str | None, lag: float | None) -> SiteReplication:
    state, error = readings[site]
    configured = estate.config.data.mysql.replicates_from.get(site)
    if state is None:
        return SiteReplication(site, "unreachable", error=error, configured_source=configured)
    notes: list[str] = []
    replica = state.replica
    role = "primary" if not state.read_only else "replica" if replica is not None else "fenced"
    source = None
    if replica is not None:
        source = site_at(estate, replica.source_host, replica.source_port) or \
            f"{replica.source_host}:{replica.source_port}"
        if role == "primary":
            notes.append(f"writable while configured to replicate from {source}")
        if not (replica.io_running and replica.sql_running):
            notes.append("replication is stopped" + (
                f": {replica.last_io_error or replica.last_sql_error}" if replica.last_io_error or
                replica.last_sql_error else ""))
    moved = primary is not None and primary != estate.config.primary_site  # a failover moved the primary
    if role == "replica" and moved and source != primary:
        notes.append(f"replicates from {source}, not from {primary}, the primary since a failover (`drorch "
                     "replication setup` re-points it when that is safe)")
    elif role == "replica" and not moved and configured is not None and source != configured:
        notes.append(f"replicates from {source}, configured: {configured} (`drorch replication setup` re-points it "
                     "when that is safe)")
    if role == "fenced" and primary is not None:
        notes.append(f"read-only and replicating from nobody: `drorch replication reprotect {site}` rejoins it")
    semi = _semi_sync(estate, site, state, role, notes)
    against = source if source in estate.config.sites and readings[str(source)][0] is not None else primary
    found = None
    if against is not None and against != site and role != "primary":
        # Read after this server, the source's history holds everything this server could have got from it.
        found = errant(state.history, history(estate.mysql(against)))
        if found:
            notes.append(f"errant transactions {against} never had: {found}; it must not be promoted. Fix: "
                         f"`drorch replication reprotect {site} --rebuild`")
    return SiteReplication(
        site, role, source=source, configured_source=configured,
        io_running=replica.io_running if replica else None, sql_running=replica.sql_running if replica else None,
        received_gtid=replica.received_gtid if replica else "", executed_gtid=state.executed_gtid,
        lag_seconds=None if role == "primary" or lag is None else round(lag, 3), semi_sync=semi,
        last_io_error=replica.last_io_error if replica else "",
        last_sql_error=replica.last_sql_error if replica else "",
        errant_gtids=list(found.gtids) if found else [], errant_count=found.count if found else 0,
        errant_against=against if found else None, notes=notes)


def _semi_sync(estate: Estate, site: str, state: ServerState, role: str, notes: list[str]) -> dict[str, Any]:
    semi = state.semi_sync
    pairs = [pair for pair in estate.config.data.mysql.semi_sync if site in pair]
    if role != "primary":
        return {"replica_enabled": semi.replica_enabled, "replica_active": semi.replica_active}
    if semi.source_enabled and not semi.source_active:
        timeout = f" within {semi.timeout_ms} ms" if semi.timeout_ms is not None else ""
        notes.append(f"semi-sync is enabled but fell back to async (no replica acknowledged{timeout}): RPO guarantee "
                     "gone: a failover now can lose acknowledged writes")
    elif not semi.source_enabled and pairs:
        notes.append("semi-sync is off although data.mysql.semi_sync pairs this site: no RPO guarantee "
                     "(`drorch replication setup` turns it on)")
    if semi.source_enabled and semi.wait_point and semi.wait_point != "AFTER_SYNC":
        notes.append(f"semi-sync wait point {semi.wait_point}: a crash can lose acknowledged commits; AFTER_SYNC "
                     "does not")
    return {"source_enabled": semi.source_enabled, "source_active": semi.source_active, "clients": semi.clients,
            "wait_point": semi.wait_point, "timeout_ms": semi.timeout_ms,
            "rpo_guarantee": semi.source_enabled and semi.source_active}
