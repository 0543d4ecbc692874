"""Route 53 health-check actions: let Route 53's own failover move traffic.

``route53.failover`` rewrites the record pair; this is the other lever AWS ARC's
Region switch uses: invert a site's health check (healthy reads as unhealthy, so
Route 53 answers the SECONDARY) or disable it (always healthy, so the record stays
in service whatever the checkers see). The records themselves are left alone.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import model_validator

from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import InvalidInput, OperationFailed
from drorch.providers.aws import route53


class HealthCheckParams(Params):
    site: str
    inverted: bool | None = None
    disabled: bool | None = None

    @model_validator(mode="after")
    def _something_to_set(self) -> Self:
        if self.inverted is None and self.disabled is None:
            raise ValueError("give 'inverted' and/or 'disabled' (true or false)")
        return self


def _check_id(ctx: ActionContext, site: str) -> str:
    entry = ctx.estate.config.dns.sites.get(site)
    if entry is None or entry.health_check_id is None:
        raise InvalidInput(f"dns.sites.{site}.health_check_id: no Route 53 health check configured for {site}")
    return entry.health_check_id


def _differences(check: route53.HealthCheck, p: HealthCheckParams) -> dict[str, tuple[bool, bool]]:
    """Flag -> (now, wanted) for each flag the params set to something else."""
    wanted = {"inverted": p.inverted, "disabled": p.disabled}
    now = {"inverted": check.inverted, "disabled": check.disabled}
    return {flag: (now[flag], value) for flag, value in wanted.items() if value is not None and value != now[flag]}


def plan(ctx: ActionContext, p: HealthCheckParams) -> list[str]:
    check_id = _check_id(ctx, p.site)
    check = route53.health_check(ctx.estate.route53, check_id)
    return [f"{p.site} Route 53 health check {check_id}: {flag} {str(now).lower()} -> {str(wanted).lower()}"
            for flag, (now, wanted) in _differences(check, p).items()]


@action("route53.health_check", HealthCheckParams, plan=plan)
def health_check_action(ctx: ActionContext, p: HealthCheckParams) -> dict[str, Any]:
    """Set the Inverted and/or Disabled flags of the site's Route 53 health check, so Route 53's failover acts.

    Route 53 reacts after its checkers' interval x failure threshold plus the record's TTL.
    """
    check_id = _check_id(ctx, p.site)
    before = route53.health_check(ctx.estate.route53, check_id)
    differences = _differences(before, p)
    after = before
    if differences:
        after = route53.update_health_check(ctx.estate.route53, check_id, inverted=p.inverted, disabled=p.disabled)
        if _differences(after, p):
            raise OperationFailed(f"Route 53 health check {check_id} reads inverted={after.inverted} "
                                  f"disabled={after.disabled} after the update")
    return {"health_check_id": check_id, "inverted": after.inverted, "disabled": after.disabled,
            "changed": sorted(differences)}
