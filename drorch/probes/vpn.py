"""VPN tunnels a site's data path depends on.

One tunnel down is a degraded VPN (warning); all down is an outage of the data
path, so the probe fails only then.
"""

from __future__ import annotations

from typing import Any

from drorch.probes.result import ProbeResult, timed
from drorch.providers.aws import vpn
from drorch.providers.estate import Estate


def probe(estate: Estate, site: str) -> ProbeResult | None:
    config = estate.config.site(site).vpn
    if config is None or config.aws_connection_id is None or config.aws_site is None:
        return None
    aws_site, connection_id = config.aws_site, config.aws_connection_id

    def measure() -> tuple[bool, float | None, dict[str, Any]]:
        tunnels = vpn.tunnels(estate.aws(aws_site, "ec2"), connection_id)
        up = [t for t in tunnels if t.up]
        detail = {"connection": connection_id, "tunnels": {t.outside_ip: "UP" if t.up else "DOWN" for t in tunnels},
                  "degraded": 0 < len(up) < len(tunnels)}
        return bool(up), float(len(up)), detail

    return timed(site, "vpn", measure)
