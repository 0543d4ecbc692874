"""DynamoDB actions: verify a site's tables replicate before traffic moves there.

Reads the DynamoDB probe (the same view ``drorch status`` shows): every configured
table ACTIVE with its stream ENABLED, and the age of the newest probe item each
other region wrote, as seen here, within the bound. An unmeasurable lag (no probe
table, or no other region's probe has ever arrived) is not "zero lag": it fails
unless the playbook explicitly accepts it with ``allow_unknown``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from drorch.engine.actions.probed import probed
from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import OperationFailed
from drorch.probes import dynamodb as dynamodb_probe


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
