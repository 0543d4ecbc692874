"""Database roles: fence, wait until caught up, promote, follow, and what a server holds that another lacks.

Order matters for safety: the old primary is fenced (read-only, writers cut off)
before anything is promoted, and a replica is promoted only after it has applied
every transaction it received, so no acknowledged write is lost under semi-sync.
The built-in failover, failback and the playbook actions all use these.
"""

from __future__ import annotations

from dataclasses import dataclass

from drorch.errors import OperationFailed
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import MySQLClient
from drorch.providers.mysql.gtid import GtidPosition, count_gtid_set, unreplicated_pairs

_KEEP_COMMANDS = {"Binlog Dump", "Binlog Dump GTID", "Daemon", "Slave_IO", "Slave_SQL", "Slave_worker"}


@dataclass(frozen=True)
class FenceResult:
    binlog_gtid: str
    killed_sessions: int


def fence(db: MySQLClient) -> FenceResult:
    """Make the server refuse writes and cut off client sessions, keeping replication streams.

    Binlog dump threads stay: replicas must still receive the last transactions.
    """
    db.execute(*db.flavor.fence_sql())
    rows = db.query("SELECT ID AS id, USER AS user, COMMAND AS command FROM information_schema.PROCESSLIST "
                    "WHERE ID <> CONNECTION_ID()")
    killed = 0
    for row in rows:
        if row["command"] in _KEEP_COMMANDS or row["user"] in {"system user", "event_scheduler", db.address.user}:
            continue
        try:
            db.execute(f"KILL CONNECTION {int(row['id'])}")
            killed += 1
        except Exception:  # the session may have ended on its own meanwhile
            continue
    state = db.state()
    if not state.read_only:
        raise OperationFailed(f"{db.address.name}: read_only is still OFF after fencing")
    return FenceResult(state.binlog_gtid, killed)


def wait_applied(db: MySQLClient, gtid: str, timeout: float) -> None:
    """Wait until the replica has executed ``gtid`` (its source's position, or its own received position)."""
    if not gtid:
        return
    sql, args = db.flavor.wait_for_gtid_sql(gtid, timeout)
    rows = db.query(sql, args, read_timeout=timeout + 5)
    result = rows[0]["result"] if rows else -1
    if int(result) != 0:
        raise OperationFailed(f"{db.address.name} did not apply up to {gtid} within {timeout:.0f} s")


def received_gtid(db: MySQLClient) -> str:
    state = db.state()
    return state.replica.received_gtid if state.replica else ""


def promote(db: MySQLClient, semi_sync_source: bool) -> None:
    """Stop replicating, forget the old source, accept writes (idempotent)."""
    flavor = db.flavor
    state = db.state()
    if state.replica is not None:
        db.execute(flavor.stop_replica_sql(), flavor.reset_replica_sql())
    db.execute(*flavor.semi_sync_sql(source=semi_sync_source, replica=False), *flavor.unfence_sql())


def follow(db: MySQLClient, source_host: str, source_port: int, user: str, password: str, semi_sync: bool) -> None:
    """Make ``db`` a read-only replica of the given source, from its own GTID position (idempotent)."""
    flavor = db.flavor
    state = db.state()
    if (
        state.replica is not None
        and state.replica.source_host == source_host
        and state.replica.source_port == source_port
        and state.replica.io_running
        and state.replica.sql_running
        and state.read_only
    ):
        return
    db.execute(
        *flavor.fence_sql(),
        flavor.stop_replica_sql(),
        *flavor.adopt_position_sql(),
        *flavor.semi_sync_sql(source=False, replica=semi_sync),
        flavor.change_source_sql(source_host, source_port, user, password),
        flavor.start_replica_sql(),
    )


def missing_transactions(new_primary: MySQLClient, old_binlog_gtid: str) -> int:
    """How many of the old primary's transactions the new primary lacks."""
    statement = new_primary.flavor.missing_gtid_sql(old_binlog_gtid)
    if statement is not None:
        rows = new_primary.query(*statement)
        return count_gtid_set(rows[0]["missing"] if rows else "")
    have = GtidPosition.parse(new_primary.state().executed_gtid)
    return have.missing_from(GtidPosition.parse(old_binlog_gtid))


def semi_sync_partner(estate: Estate, site: str) -> str | None:
    """The other member of the site's semi-sync pair in the config, if any."""
    for a, b in estate.config.data.mysql.semi_sync:
        if site in (a, b):
            return b if site == a else a
    return None


def unreplicated(old: MySQLClient, new: MySQLClient) -> list[str]:
    """Transactions ``old`` holds that ``new`` never received (an old primary's errant GTIDs); [] when none."""
    history = str(old.query(old.flavor.history_sql())[0]["history"] or "")
    statement = new.flavor.missing_gtid_sql(history)
    if statement is not None:  # MySQL: exact GTID set arithmetic on the server
        missing = str(new.query(*statement)[0]["missing"] or "")
        return [missing] if missing else []
    return unreplicated_pairs(history, str(new.query(new.flavor.history_sql())[0]["history"] or ""))
