"""DNS actions: publish the failover pair so the chosen site is PRIMARY."""

from __future__ import annotations

from typing import Any

from drorch.engine.catalogue import ActionContext, Params, action
from drorch.providers.aws import route53
from drorch.providers.estate import Estate


def point_to(estate: Estate, primary: str, secondary: str | None) -> bool:
    """Make ``primary`` the PRIMARY record and ``secondary`` the SECONDARY; True when something changed.

    With no ``secondary`` the current pair's other member stays as SECONDARY.
    """
    dns = estate.config.dns
    if secondary is None:
        current = active_sites(estate)
        secondary = next((site for site in current.values() if site != primary), None)

    def record(site: str, role: str) -> route53.FailoverRecord:
        entry = dns.sites[site]
        return route53.FailoverRecord(entry.set_identifier, role, entry.value, entry.health_check_id, dns.ttl)

    wanted = [record(primary, "PRIMARY")]
    if secondary is not None and secondary != primary and secondary in dns.sites:
        wanted.append(record(secondary, "SECONDARY"))
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


@action("route53.failover", FailoverParams)
def failover_action(ctx: ActionContext, p: FailoverParams) -> dict[str, Any]:
    """UPSERT the failover pair so ``primary`` is the PRIMARY record (``secondary`` the SECONDARY); wait for INSYNC."""
    return {"changed": point_to(ctx.estate, p.primary, p.secondary)}
