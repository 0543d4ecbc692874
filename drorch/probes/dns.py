"""Which site the service name's failover records currently serve."""

from __future__ import annotations

from typing import Any

from drorch.engine.actions.dns import active_sites
from drorch.probes.result import ProbeResult, timed
from drorch.providers.estate import Estate


def probe(estate: Estate) -> ProbeResult:
    def measure() -> tuple[bool, float | None, dict[str, Any]]:
        pair = active_sites(estate)
        return "PRIMARY" in pair, None, {"primary": pair.get("PRIMARY"), "secondary": pair.get("SECONDARY"),
                                         "record": estate.config.dns.record}

    return timed("*", "dns", measure)
