"""Database actions: fence, wait until caught up, promote, repoint, rejoin.

Order matters for safety: the old primary is fenced (read-only, writers cut off)
before anything is promoted, and a replica is promoted only after it has applied
every transaction it received, so no acknowledged write is lost under semi-sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import OperationFailed, RefusedForSafety
from drorch.providers.estate import Estate
from drorch.providers.mysql.client import MySQLClient
from drorch.providers.mysql.gtid import GtidPosition, count_gtid_set

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


# --- catalogue entries ---------------------------------------------------------------------------------------


class SiteParams(Params):
    site: str


class WaitParams(Params):
    site: str
    source: str | None = None  # reach this site's binlog position (planned); default: all the site received
    timeout: float = 30.0


class PromoteParams(Params):
    site: str


class RepointParams(Params):
    site: str
    source: str


class SemiSyncParams(Params):
    site: str
    source: bool
    replica: bool


@action("mysql.fence", SiteParams)
def fence_action(ctx: ActionContext, p: SiteParams) -> dict[str, Any]:
    """Make the site's database read-only (super_read_only on MySQL 8) and cut off client sessions.

    Replication streams are kept so replicas still receive the last transactions.
    """
    result = fence(ctx.estate.mysql(p.site))
    return {"binlog_gtid": result.binlog_gtid, "killed_sessions": result.killed_sessions}


@action("mysql.wait_caught_up", WaitParams, mutating=False)
def wait_caught_up_action(ctx: ActionContext, p: WaitParams) -> dict[str, Any]:
    """Wait until the replica has applied everything it received, or everything ``source`` wrote (GTID-aware)."""
    db = ctx.estate.mysql(p.site)
    gtid = ctx.estate.mysql(p.source).state().binlog_gtid if p.source else received_gtid(db)
    wait_applied(db, gtid, p.timeout)
    return {"gtid": gtid}


@action("mysql.promote", PromoteParams)
def promote_action(ctx: ActionContext, p: PromoteParams) -> dict[str, Any]:
    """Stop replicating, forget the old source, make the database writable (semi-sync source when its pair answers)."""
    partner = semi_sync_partner(ctx.estate, p.site)
    partner_alive = partner is not None and ctx.estate.mysql(partner).ping()
    promote(ctx.estate.mysql(p.site), partner_alive)
    return {"semi_sync_source": partner_alive}


@action("mysql.repoint", RepointParams)
def repoint_action(ctx: ActionContext, p: RepointParams) -> dict[str, Any]:
    """Make the site a read-only replica of ``source`` from its own GTID position (also rejoins an old primary)."""
    target = ctx.estate.config.site(p.source).mysql
    semi = semi_sync_partner(ctx.estate, p.source) == p.site
    follow(ctx.estate.mysql(p.site), target.host, target.port, ctx.estate.config.data.mysql.replication_user,
           ctx.estate.replication_password(), semi)
    return {"source": p.source, "semi_sync": semi}


@action("mysql.set_semi_sync", SemiSyncParams)
def set_semi_sync_action(ctx: ActionContext, p: SemiSyncParams) -> dict[str, Any]:
    """Turn the semi-sync source and replica sides on or off on the site's database."""
    db = ctx.estate.mysql(p.site)
    db.execute(*db.flavor.semi_sync_sql(source=p.source, replica=p.replica))
    return {"source": p.source, "replica": p.replica}


def semi_sync_partner(estate: Estate, site: str) -> str | None:
    """The other member of the site's semi-sync pair in the config, if any."""
    for a, b in estate.config.data.mysql.semi_sync:
        if site in (a, b):
            return b if site == a else a
    return None


class RepointOthersParams(Params):
    source: str
    exclude: tuple[str, ...] = ()


@action("mysql.repoint_others", RepointOthersParams)
def repoint_others_action(ctx: ActionContext, p: RepointOthersParams) -> dict[str, Any]:
    """Make every other reachable site (except ``exclude``) a replica of ``source``; unreachable ones are listed."""
    done, unreachable = [], []
    for site in ctx.estate.config.sites:
        if site == p.source or site in p.exclude:
            continue
        if not ctx.estate.mysql(site).ping():
            unreachable.append(site)
            continue
        repoint_action(ctx, RepointParams(site=site, source=p.source))
        done.append(site)
    return {"repointed": done, "unreachable": unreachable}


@action("mysql.unfence", SiteParams)
def unfence_action(ctx: ActionContext, p: SiteParams) -> dict[str, Any]:
    """Make the site's database writable again: the rollback of a fence when nothing was promoted.

    Refused when any other site's database is writable: never two writable primaries.
    """
    others = [s for s in ctx.estate.config.sites if s != p.site and ctx.estate.mysql(s).ping()
              and not ctx.estate.mysql(s).state().read_only]
    if others:
        raise RefusedForSafety(f"cannot unfence {p.site}: {', '.join(others)} is writable (split-brain risk)")
    db = ctx.estate.mysql(p.site)
    db.execute(*db.flavor.unfence_sql())
    return {}
