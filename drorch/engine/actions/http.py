"""Verification: the service name leads clients to the new site, and it accepts writes."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, Literal

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


def _poll(problem: Callable[[], str | None], timeout: float, failure: str) -> float:
    """Call ``problem`` until it reports none; returns seconds waited, or fails with the last problem."""
    started = time.monotonic()
    last = "not checked yet"
    while time.monotonic() - started < timeout:
        found = problem()
        if found is None:
            return time.monotonic() - started
        last = found
        time.sleep(0.2)
    raise OperationFailed(f"{failure} after {timeout:.0f} s: {last}")


def _app_problem(estate: Estate, site: str) -> str | None:
    app = estate.config.site(site).app
    health = http.check(app.url.rstrip("/") + app.health_path)
    if health.ok and health.body.get("writable") is True:
        return None
    return f"{site} health {health.status} {health.body or health.error}"


def wait_serving(estate: Estate, site: str, timeout: float) -> float:
    """Wait until DNS answers ``site`` and its app reports a writable database; returns seconds waited."""
    def problem() -> str | None:
        resolved, app = _resolved_site(estate), _app_problem(estate, site)
        return None if resolved == site and app is None else f"DNS answers {resolved}, {app or 'app ok'}"

    return _poll(problem, timeout, f"{site} not serving through DNS")


def wait_app(estate: Estate, site: str, timeout: float) -> float:
    """Wait until the site's app itself (not through DNS) reports a writable database; returns seconds waited."""
    return _poll(lambda: _app_problem(estate, site), timeout, f"{site} app not healthy and writable")


class WaitHealthyParams(Params):
    site: str
    timeout: float = 60.0
    via: Literal["dns", "direct"] = "dns"


@action("http.wait_healthy", WaitHealthyParams, mutating=False)
def wait_healthy_action(ctx: ActionContext, p: WaitHealthyParams) -> dict[str, Any]:
    """Wait until the site's app reports a writable database: through DNS (default: DNS must answer the site) or
    directly at its URL (``via: direct``, e.g. before DNS is flipped)."""
    waited = wait_serving(ctx.estate, p.site, p.timeout) if p.via == "dns" else wait_app(ctx.estate, p.site, p.timeout)
    return {"waited_seconds": waited, "via": p.via}
