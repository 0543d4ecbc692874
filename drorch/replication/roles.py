"""Database roles: fence, wait until caught up, promote, follow, and what a server holds that another lacks.

Order matters for safety: the old primary is fenced (read-only, writers cut off)
before anything is promoted, and a replica is promoted only after it has applied
every transaction it received, so no acknowledged write is lost under semi-sync.
The built-in failover, failback and the playbook actions all use these.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from drorch.engine.topology import site_at
from drorch.errors import OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import MySQLClient
from drorch.providers.mysql.gtid import Errant, GtidPosition, count_gtid_set, errant, unreplicated_pairs

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


def writable_besides(estate: Estate, site: str | None) -> list[str]:
    """Other sites (every site, for None) whose database answers right now and accepts writes, in config order.

    Asked afresh, never from what a run observed at its start: a database that was down then may
    have come back writable since. The sites are asked at once, so dead ones cost one connect timeout.
    """
    others = [s for s in estate.config.sites if s != site]

    def writable(other: str) -> bool:
        db = estate.mysql(other)
        return db.ping() and not db.state().read_only

    with ThreadPoolExecutor(max_workers=max(1, len(others))) as pool:
        answers = list(pool.map(writable, others))
    return [other for other, yes in zip(others, answers, strict=True) if yes]


def refuse_second_writable(estate: Estate, site: str, doing: str) -> None:
    """Refuse (RefusedForSafety, before any change) to make ``site`` writable while another database is.

    ``mysql.promote`` and ``mysql.unfence`` both ask this, and no ``--force`` skips it: force may skip
    the proof that an unreachable primary is dead, never allow two writable primaries.
    """
    others = writable_besides(estate, site)
    if others:
        verb = "is" if len(others) == 1 else "are"
        raise RefusedForSafety(
            f"cannot {doing} {site}: {', '.join(others)} {verb} writable (read_only OFF), and two writable "
            f"databases would split the data (split-brain risk). Nothing was changed. Fix: fence "
            f"{' and '.join(others)} first (a playbook's mysql.fence step, or SET GLOBAL read_only=ON) and run "
            "again, or keep it as the primary")


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


def history(db: MySQLClient) -> str:
    """The server's per-origin GTID history (MariaDB binlog state, MySQL gtid_executed)."""
    return str(db.query(db.flavor.history_sql())[0]["history"] or "")


def errant_between(replica: MySQLClient, source: MySQLClient) -> Errant:
    """Transactions ``replica`` holds that ``source`` never had.

    The replica is read first: whatever the source writes meanwhile only adds to its reading,
    so the source's newest writes are never mistaken for errant ones.
    """
    mine = history(replica)
    return errant(mine, history(source))


def check_promotable(estate: Estate, site: str, reachable: Collection[str] | None = None) -> None:
    """Refuse to promote a replica holding transactions its source never had (errant GTIDs).

    Promoted, it would serve them to every other site: replication breaks on them, or they
    silently become part of history. With the source gone, the other reachable sites stand in
    for it, leaving out the dead source's own newest transactions (they may simply lag on those).
    ``reachable`` (what a playbook run observed at its start) saves pinging a dead source again.
    """

    def answers(other: str) -> bool:
        return other in reachable if reachable is not None else estate.mysql(other).ping()

    db = estate.mysql(site)
    state = db.state()
    replica = state.replica
    if replica is None:  # not replicating (a sole primary, or promoted already): nothing to compare with
        return
    source = site_at(estate, replica.source_host, replica.source_port)
    if source is not None and answers(source):
        found, against = errant_between(db, estate.mysql(source)), source
    else:
        peers = [s for s in estate.config.sites if s not in (site, source) and answers(s)]
        if not peers or not replica.source_origin:
            return
        found = errant(state.history, ",".join(history(estate.mysql(peer)) for peer in peers), replica.source_origin)
        against = " or ".join(peers)
    if found:
        raise RefusedForSafety(errant_advice(site, against, found))


def errant_advice(site: str, source: str, found: Errant) -> str:
    return (f"{site} holds {found.count} transaction(s) {source} never had (errant GTIDs: {found}); promoting it "
            f"would push them to every other site or break replication on them. Nothing was promoted. Fix: inspect "
            f"them in {site}'s binlog (mariadb-binlog / mysqlbinlog), then rebuild {site} from the primary with "
            f"`drorch replication reprotect {site} --rebuild` (discards them)")
