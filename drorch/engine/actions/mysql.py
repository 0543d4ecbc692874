"""Database actions for playbooks: fence, wait until caught up, promote, repoint, rejoin.

Each is a thin, typed wrapper over ``drorch.replication.roles`` so playbooks and the
built-in failover act through the same code.
"""

from __future__ import annotations

from typing import Any

from drorch.engine.catalogue import ActionContext, Params, action
from drorch.engine.topology import site_at
from drorch.providers.mysql.client import ServerState
from drorch.replication.rebuild import reprotect_or_rebuild
from drorch.replication.rejoin import Diverged, assess
from drorch.replication.roles import (
    check_promotable,
    fence,
    follow,
    promote,
    received_gtid,
    refuse_second_writable,
    semi_sync_partner,
    wait_applied,
    writable_besides,
)


class SiteParams(Params):
    site: str


class WaitParams(Params):
    site: str
    source: str | None = None  # reach this site's binlog position (planned); default: all the site received
    timeout: float = 30.0


class ReprotectParams(Params):
    site: str
    rebuild: bool = False  # when it diverged, replace its data with a copy of the primary's (discards them)


class RepointParams(Params):
    site: str
    source: str


class SemiSyncParams(Params):
    site: str
    source: bool
    replica: bool


def _source(ctx: ActionContext, state: ServerState) -> str:
    """The site (or host:port) a replica follows, for people."""
    if state.replica is None:
        return "no source"
    where = site_at(ctx.estate, state.replica.source_host, state.replica.source_port)
    return where or f"{state.replica.source_host}:{state.replica.source_port}"


def plan_fence(ctx: ActionContext, p: SiteParams) -> list[str]:
    state = ctx.estate.mysql(p.site).state(attempts=1)
    return [] if state.read_only else [f"{p.site} database: read_only OFF -> ON, client sessions cut"]


def plan_promote(ctx: ActionContext, p: SiteParams) -> list[str]:
    check_promotable(ctx.estate, p.site)  # an errant replica: the plan says it would be refused
    state = ctx.estate.mysql(p.site).state(attempts=1)
    changes = [f"{p.site} database: stop replicating from {_source(ctx, state)}"] if state.replica else []
    changes += [f"{p.site} database: read_only ON -> OFF (accepts writes)"] if state.read_only else []
    # planned against today's state: in a switchover the old primary is writable now and fenced by an earlier step
    others = writable_besides(ctx.estate, p.site)
    if others:
        changes.append(f"{p.site} database: promoted only if {' and '.join(others)} (writable now) is read-only by "
                       "then, else refused even under --force: never two writable databases")
    return changes


def plan_repoint(ctx: ActionContext, p: RepointParams) -> list[str]:
    state = ctx.estate.mysql(p.site).state(attempts=1)
    target = ctx.estate.config.site(p.source).mysql
    replica = state.replica
    if (replica is not None and (replica.source_host, replica.source_port) == (target.host, target.port)
            and replica.io_running and replica.sql_running and state.read_only):
        return []
    fenced = "" if state.read_only else ", read_only OFF -> ON"
    return [f"{p.site} database: replicate from {_source(ctx, state)} -> from {p.source}{fenced}"]


def plan_unfence(ctx: ActionContext, p: SiteParams) -> list[str]:
    state = ctx.estate.mysql(p.site).state(attempts=1)
    return [f"{p.site} database: read_only ON -> OFF"] if state.read_only else []


@action("mysql.fence", SiteParams, plan=plan_fence)
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


@action("mysql.promote", SiteParams, plan=plan_promote)
def promote_action(ctx: ActionContext, p: SiteParams) -> dict[str, Any]:
    """Stop replicating, forget the old source, make the database writable (semi-sync source when its pair answers).

    Refused, changing nothing, when any other site's database answers and is writable (even under
    ``--force``: never two writable primaries), or when the site holds transactions its source never
    had (errant GTIDs).
    """
    refuse_second_writable(ctx.estate, p.site, "promote")
    check_promotable(ctx.estate, p.site, ctx.variables.get("reachable"))
    partner = semi_sync_partner(ctx.estate, p.site)
    partner_alive = partner is not None and ctx.estate.mysql(partner).ping()
    promote(ctx.estate.mysql(p.site), partner_alive)
    return {"semi_sync_source": partner_alive}


@action("mysql.repoint", RepointParams, plan=plan_repoint)
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


def plan_repoint_others(ctx: ActionContext, p: RepointOthersParams) -> list[str]:
    changes = []
    for site in ctx.estate.config.sites:
        if site == p.source or site in p.exclude:
            continue
        if not ctx.estate.mysql(site).ping():
            changes.append(f"{site} database: unreachable, left for later ({_left_for_later(site, p.source)})")
            continue
        changes += plan_repoint(ctx, RepointParams(site=site, source=p.source))
    return changes


def _left_for_later(site: str, source: str) -> str:
    return (f"{site} keeps replicating from its old source, not from {source}, when it returns: run "
            f"`drorch replication setup` when {site} answers again")


@action("mysql.repoint_others", RepointOthersParams, plan=plan_repoint_others)
def repoint_others_action(ctx: ActionContext, p: RepointOthersParams) -> dict[str, Any]:
    """Make every other reachable site (except ``exclude``) a replica of ``source``; unreachable ones are listed.

    An unreachable site is left for later, and the result's ``notes`` (journaled, shown after the run)
    say how to finish it: ``drorch replication setup`` points it at the current primary once it answers.
    """
    done, unreachable = [], []
    for site in ctx.estate.config.sites:
        if site == p.source or site in p.exclude:
            continue
        if not ctx.estate.mysql(site).ping():
            unreachable.append(site)
            continue
        repoint_action(ctx, RepointParams(site=site, source=p.source))
        done.append(site)
    notes = [f"{site}'s database did not answer: {_left_for_later(site, p.source)}" for site in unreachable]
    return {"repointed": done, "unreachable": unreachable, "notes": notes}


@action("mysql.unfence", SiteParams, plan=plan_unfence)
def unfence_action(ctx: ActionContext, p: SiteParams) -> dict[str, Any]:
    """Make the site's database writable again: the rollback of a fence when nothing was promoted.

    Refused when any other site's database is writable: never two writable primaries.
    """
    refuse_second_writable(ctx.estate, p.site, "unfence")
    db = ctx.estate.mysql(p.site)
    db.execute(*db.flavor.unfence_sql())
    return {}


def plan_reprotect(ctx: ActionContext, p: ReprotectParams) -> list[str]:
    try:
        found = assess(ctx.estate, p.site)  # raises exactly as the action would
    except Diverged as exc:
        if not p.rebuild:
            raise
        return [f"{p.site} database: REBUILT from {exc.primary} (every database but mysql and sys dropped and "
                f"copied; discards {'; '.join(exc.lost)}), then replicating from it"]
    return [] if found.already else plan_repoint(ctx, RepointParams(site=p.site, source=found.primary))


@action("mysql.reprotect", ReprotectParams, plan=plan_reprotect)
def reprotect_action(ctx: ActionContext, p: ReprotectParams) -> dict[str, Any]:
    """Rejoin the site (an old primary) as a caught-up replica of the current primary.

    Refused, changing nothing, when it holds transactions the primary never received: they would
    become errant GTIDs; with ``rebuild: true`` it is rebuilt from the primary instead (its data
    replaced by a copy; needs ``data.mysql.admin_user``). Also measures, by heartbeats, what the
    failover that left it behind lost.
    """
    outcome = reprotect_or_rebuild(ctx.estate, p.site, p.rebuild)
    if outcome.rebuilt is not None:
        rebuilt = outcome.rebuilt
        return {"reprotected": rebuilt.site, "source": rebuilt.source, "already": False,
                "rpo_seconds": rebuilt.rpo_seconds, "rebuilt": rebuilt.to_json()}
    result = outcome.reprotected
    assert result is not None
    return {"reprotected": result.site, "source": result.source, "already": result.already,
            "rpo_seconds": result.rpo_seconds}
