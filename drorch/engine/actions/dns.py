"""DNS actions: publish the failover pair so the chosen site is PRIMARY."""

from __future__ import annotations

from typing import Any

from drorch.engine.catalogue import ActionContext, Params, action
from drorch.providers.aws import route53
from drorch.providers.estate import Estate


def wanted_pair(estate: Estate, primary: str, secondary: str | None) -> dict[str, str]:
    """Role -> site as it should be published; with no ``secondary`` the current pair's other member stays."""
    if secondary is None:
        secondary = next((site for site in active_sites(estate).values() if site != primary), None)
    wanted = {"PRIMARY": primary}
    if secondary is not None and secondary != primary and secondary in estate.config.dns.sites:
        wanted["SECONDARY"] = secondary
    return wanted


def point_to(estate: Estate, primary: str, secondary: str | None) -> bool:
    """Make ``primary`` the PRIMARY record and ``secondary`` the SECONDARY; True when something changed."""
    dns = estate.config.dns

    def record(site: str, role: str) -> route53.FailoverRecord:
        entry = dns.sites[site]
        return route53.FailoverRecord(entry.set_identifier, role, entry.value, entry.health_check_id, dns.ttl)

    wanted = [record(site, role) for role, site in wanted_pair(estate, primary, secondary).items()]
    return route53.publish_failover_pair(estate.route53, dns.zone_id, dns.record, dns.type, wanted)


def active_sites(estate: Estate) -> dict[str, str]:
    """The published pair: role (PRIMARY/SECONDARY) -> site."""
    dns = estate.config.dns
    records = route53.failover_records(estate.route53, dns.zone_id, dns.record, dns.type)
    by_id = {entry.set_identifier: name for name, entry in dns.sites.items()}
    return {r.role: by_id[r.set_identifier] for r in records if r.set_identifier in by_id}


class FailoverParams(Params):
    primary: str
    secondary: str | None = None


def plan_failover(ctx: ActionContext, p: FailoverParams) -> list[str]:
    dns, current = ctx.estate.config.dns, active_sites(ctx.estate)
    return [f"DNS {dns.record} {dns.type} {role}: {current.get(role, 'none')} -> {site}"
            for role, site in wanted_pair(ctx.estate, p.primary, p.secondary).items() if current.get(role) != site]


@action("route53.failover", FailoverParams, plan=plan_failover)
def failover_action(ctx: ActionContext, p: FailoverParams) -> dict[str, Any]:
    """UPSERT the failover pair so ``primary`` is the PRIMARY record (``secondary`` the SECONDARY); wait for INSYNC."""
    return {"changed": point_to(ctx.estate, p.primary, p.secondary)}
