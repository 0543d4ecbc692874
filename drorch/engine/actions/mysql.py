"""Database actions for playbooks: fence, wait until caught up, promote, repoint, rejoin.

Each is a thin, typed wrapper over ``drorch.replication.roles`` so playbooks and the
built-in failover act through the same code.
"""

from __future__ import annotations

from typing import Any

from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import RefusedForSafety
from drorch.replication.rejoin import reprotect
from drorch.replication.roles import fence, follow, promote, received_gtid, semi_sync_partner, wait_applied


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


@action("mysql.reprotect", SiteParams)
def reprotect_action(ctx: ActionContext, p: SiteParams) -> dict[str, Any]:
    """Rejoin the site (an old primary) as a caught-up replica of the current primary.

    Refused, changing nothing, when it holds transactions the primary never received: they would
    become errant GTIDs. Also measures, by heartbeats, what the failover that left it behind lost.
    """
    result = reprotect(ctx.estate, p.site)
    return {"source": result.source, "already": result.already, "rpo_seconds": result.rpo_seconds}
