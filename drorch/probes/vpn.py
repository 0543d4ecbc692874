"""VPN tunnels a site's data path depends on, seen from both ends.

The AWS side (site-to-site VPN telemetry) and the strongSwan side (CHILD_SAs over
VICI) are merged: a tunnel counts as up only when every configured view says so.
One tunnel down is a degraded VPN (warning); all down is an outage of the data
path, so the probe fails only then.
"""

from __future__ import annotations

from typing import Any

from drorch.config.schema import Vpn
from drorch.probes.result import ProbeResult, timed
from drorch.providers import strongswan
from drorch.providers.aws import vpn
from drorch.providers.estate import Estate


def _views(estate: Estate, config: Vpn) -> dict[str, dict[str, Any]]:
    """Per view ("aws", "strongswan"): tunnel name -> details with an ``up`` flag."""
    views: dict[str, dict[str, Any]] = {}
    if config.aws_connection_id is not None and config.aws_site is not None:
        tunnels = vpn.tunnels(estate.aws(config.aws_site, "ec2"), config.aws_connection_id)
        views["aws"] = {t.outside_ip: {"up": t.up, "status": t.status_message} for t in tunnels}
    if config.vici_socket is not None:
        socket = estate.config.resolve_path(config.vici_socket)
        children = strongswan.tunnels(socket, config.ike_sa, config.tunnels)
        views["strongswan"] = {c.name: {"up": c.up, "ike": c.ike_state, "child": c.child_state,
                                        "bytes_in": c.bytes_in, "bytes_out": c.bytes_out} for c in children}
    return views


def probe(estate: Estate, site: str) -> ProbeResult | None:
    config = estate.config.site(site).vpn
    if config is None or (config.aws_connection_id is None and config.vici_socket is None):
        return None

    def measure() -> tuple[bool, float | None, dict[str, Any]]:
        views = _views(estate, config)
        # The views name tunnels differently (outside IP, CHILD_SA name): pair them by position.
        counts = {len(tunnels) for tunnels in views.values()}
        width = max(counts) if counts else 0
        states: dict[str, str] = {}
        for index in range(width):
            names = [list(tunnels)[index] for tunnels in views.values() if index < len(tunnels)]
            up = all(list(tunnels.values())[index]["up"] for tunnels in views.values() if index < len(tunnels))
            states[" / ".join(names)] = "UP" if up else "DOWN"
        up_count = sum(state == "UP" for state in states.values())
        detail = {"tunnels": states, "degraded": 0 < up_count < len(states), "views": views}
        return up_count > 0, float(up_count), detail

    return timed(site, "vpn", measure)
