"""Verification: the service name leads clients to the new site, and it accepts writes."""

from __future__ import annotations

import socket
import time
from typing import Any

from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import OperationFailed
from drorch.providers import http
from drorch.providers.estate import Estate


def _resolved_site(estate: Estate) -> str | None:
    dns = estate.config.dns
    if dns.verify_via == "lab-resolver":
        from drorch.lab.resolver import resolve

        value = resolve(estate.route53, dns.zone_id, dns.record, dns.type).value
    else:
        value = str(socket.getaddrinfo(dns.record.rstrip("."), None)[0][4][0])
    return next((name for name, entry in dns.sites.items() if entry.value == value), None)


def wait_serving(estate: Estate, site: str, timeout: float) -> float:
    """Wait until DNS answers ``site`` and its app reports a writable database; returns seconds waited."""
    app = estate.config.site(site).app
    started = time.monotonic()
    last = "not checked yet"
    while time.monotonic() - started < timeout:
        resolved = _resolved_site(estate)
        health = http.check(app.url.rstrip("/") + app.health_path)
        if resolved == site and health.ok and health.body.get("writable") is True:
            return time.monotonic() - started
        last = f"DNS answers {resolved}, {site} health {health.status} {health.body or health.error}"
        time.sleep(0.2)
    raise OperationFailed(f"{site} not serving through DNS after {timeout:.0f} s: {last}")


class WaitHealthyParams(Params):
    site: str
    timeout: float = 60.0


@action("http.wait_healthy", WaitHealthyParams, mutating=False)
def wait_healthy_action(ctx: ActionContext, p: WaitHealthyParams) -> dict[str, Any]:
    """Wait until DNS answers the site and its app reports a writable database."""
    return {"waited_seconds": wait_serving(ctx.estate, p.site, p.timeout)}
