"""DynamoDB actions: verify a site's tables replicate, and turn drorch's own stream replication round.

``verify_replication`` reads the DynamoDB probe (the same view ``drorch status`` shows):
every configured table ACTIVE with its stream ENABLED, and the age of the newest probe
item each other region wrote, as seen here, within the bound. An unmeasurable lag (no
probe table, or no other region's probe has ever arrived) is not "zero lag": it fails
unless the playbook explicitly accepts it with ``allow_unknown``.

``replicate_from`` records the new source of the ``follow-primary`` stream tables (the
running replicator turns round at its next round); ``wait_replicated`` ships what the
current source has not shipped yet, so a planned switchover loses none of it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from drorch.engine.actions.probed import probed
from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import OperationFailed
from drorch.probes import dynamodb as dynamodb_probe
from drorch.replication.dynamodb import direction
from drorch.state.checkpoints import open_checkpoints


class VerifyParams(Params):
    site: str
    max_lag_seconds: float | None = Field(default=None, gt=0)  # default: the config's RPO objective
    allow_unknown: bool = False


@action("dynamodb.verify_replication", VerifyParams, mutating=False)
def verify_replication_action(ctx: ActionContext, p: VerifyParams) -> dict[str, Any]:
    """Fail unless the site's DynamoDB tables are ACTIVE, their streams ENABLED and probe-item lag within the bound.

    When no lag can be measured (no other region's probe item seen) it fails unless ``allow_unknown: true``.
    """
    bound = p.max_lag_seconds or ctx.estate.config.objectives.rpo_seconds
    result = probed(dynamodb_probe.probe(ctx.estate, p.site),
                    f"sites.{p.site}.dynamodb: no DynamoDB tables configured for {p.site} (or not on AWS)",
                    f"{p.site} DynamoDB: cannot read the tables")
    tables: dict[str, str] = result.detail["tables"]
    streams: dict[str, dict[str, Any]] = result.detail["streams"]
    lags: dict[str, float] = result.detail["probe_lag"]
    problems = [f"table {name} is {status}" for name, status in tables.items() if status != "ACTIVE"]
    problems += [f"table {name} has no stream" if name not in streams else
                 f"table {name}'s stream is {streams[name]['status']}"
                 for name in tables if streams.get(name, {}).get("status") != "ENABLED"]
    problems += [f"lag from {region} is {lag:.1f} s (bound {bound:g} s)" for region, lag in lags.items() if lag > bound]
    if not lags and not p.allow_unknown:
        problems.append(f"replication lag unknown: {_why_unknown(ctx, p.site)} (pass allow_unknown: true to accept)")
    if problems:
        raise OperationFailed(f"{p.site} DynamoDB replication not verified: {'; '.join(problems)}")
    return {"tables": tables, "lag_seconds": {region: round(lag, 3) for region, lag in lags.items()},
            "max_lag_seconds": bound, "lag_known": bool(lags)}


def _why_unknown(ctx: ActionContext, site: str) -> str:
    configured = ctx.estate.config.site(site).dynamodb
    table = configured.probe_table if configured else None
    if table is None:
        return f"sites.{site}.dynamodb.probe_table is not set"
    return f"no probe item from another region has arrived in {table} (is the probe writer running?)"


class ReplicateFromParams(Params):
    site: str
    table: str = direction.ALL  # one data.dynamodb.tables name, or all follow-primary stream tables


def plan_replicate_from(ctx: ActionContext, p: ReplicateFromParams) -> list[str]:
    config = ctx.estate.config
    changes = direction.planned_sources(config, open_checkpoints(config), p.table, p.site)
    return [f"DynamoDB {c.table}: replicate from {c.before} -> from {c.after}" for c in changes if c.changed]


@action("dynamodb.replicate_from", ReplicateFromParams, plan=plan_replicate_from)
def replicate_from_action(ctx: ActionContext, p: ReplicateFromParams) -> dict[str, Any]:
    """Make ``site`` the source of drorch's stream replication for ``table`` (default: every follow-primary table).

    Its stream is shipped from the point the replicator had tracked it to; the old source's
    stream is tracked from then on. Idempotent; tables with no copy at ``site`` are left as they are.
    """
    changes = direction.set_source(ctx.estate.config, p.table, p.site)
    return {"sources": {c.table: c.after for c in changes}, "changed": [c.table for c in changes if c.changed]}


class WaitReplicatedParams(Params):
    table: str = direction.ALL
    timeout: float = Field(default=30.0, gt=0)


def plan_wait_replicated(ctx: ActionContext, p: WaitReplicatedParams) -> list[str]:
    config = ctx.estate.config
    store = open_checkpoints(config)
    routes = [direction.route(config, store, t) for t in direction.stream_tables(config, p.table)]
    return [f"DynamoDB {r.table.name}: changes {site} has not shipped yet applied at {', '.join(targets)}"
            for r in routes for site, targets in r.ships.items()]


@action("dynamodb.wait_replicated", WaitReplicatedParams, plan=plan_wait_replicated)
def wait_replicated_action(ctx: ActionContext, p: WaitReplicatedParams) -> dict[str, Any]:
    """Ship every change the stream tables' sources hold until all their shards are read to the end.

    First a probe item is written in every region with a probe table, so that the shipping
    carries a fresh one and ``dynamodb.verify_replication`` afterwards measures now, not
    whenever a probe writer last ran. Runs the replicator itself (safe beside a running one:
    writes are conditional, checkpoints only move forward); fails when that is not reached
    within ``timeout`` seconds.
    """
    import threading
    import time

    from drorch.data.probe_items import targets
    from drorch.providers.aws.dynamodb import write_probe
    from drorch.replication.dynamodb.replicator import Replicator

    for target in targets(ctx.estate):
        write_probe(ctx.estate.aws(target.site, "dynamodb"), target.table, target.region, int(time.time() * 1000),
                    time.time())
    with Replicator(ctx.estate, open_checkpoints(ctx.estate.config), p.table) as replicator:
        total = replicator.run(threading.Event(), until_caught_up=True, max_seconds=p.timeout)
    if not total.caught_up:
        why = "; ".join(total.errors) or "changes keep arriving faster than they are shipped"
        raise OperationFailed(f"DynamoDB replication not caught up within {p.timeout:g} s: {why}")
    return {"shipped": total.shipped, "seconds": round(total.seconds, 3),
            "pairs": [pair.to_json() for pair in total.pairs]}
