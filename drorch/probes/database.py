"""Database probes: role, replication threads, GTIDs, heartbeat lag, semi-sync.

One connection per site per round, one attempt, tight timeouts: a probe must
report a failure, never hide it behind retries. The per-origin GTID history comes
with the same first query, so readiness and the errant-transaction metric compare
sites without another round trip.
"""

from __future__ import annotations

from typing import Any

from drorch.data import heartbeat
from drorch.probes.result import ProbeResult, timed
from drorch.providers.estate import Estate


def probe(estate: Estate, site: str) -> ProbeResult:
    config = estate.config
    timeout = max(config.detection.probe_timeout_seconds, config.site(site).mysql.connect_timeout_seconds)

    def measure() -> tuple[bool, float | None, dict[str, Any]]:
        db = estate.mysql(site)
        with db.connection(timeout) as conn, conn.cursor() as cur:
            state = db.read_state(cur)
            beat = heartbeat.read_newest(cur, config.data.heartbeat.table)
        detail: dict[str, Any] = {
            "writable": not state.read_only,
            "executed_gtid": state.executed_gtid,
            "semi_sync_source_on": state.semi_sync_source_on,
            "semi_sync_source_active": state.semi_sync_source_active,
            "semi_sync_replica_on": state.semi_sync.replica_enabled,
            "semi_sync_clients": state.semi_sync.clients,
            "gtid_history": state.history,
            "origin": state.origin,
            "heartbeat_seq": beat.seq if beat else None,
            "heartbeat_origin": beat.origin if beat else None,
        }
        replica = state.replica
        if replica is not None:
            detail.update(
                source=f"{replica.source_host}:{replica.source_port}",
                io_running=replica.io_running,
                sql_running=replica.sql_running,
                received_gtid=replica.received_gtid,
                last_error=replica.last_io_error or replica.last_sql_error or None,
            )
        return True, heartbeat.lag_seconds(beat), detail

    return timed(site, "database", measure)
