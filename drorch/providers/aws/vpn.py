"""Site-to-site VPN: the health of each tunnel of an AWS VPN connection.

AWS reports each tunnel's state in the connection's ``VgwTelemetry``. A site whose
data path runs over the VPN is only as reachable as its tunnels, so probes read
them; with two tunnels, one DOWN is a warning and both DOWN is an outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions

from drorch.errors import OperationFailed
from drorch.providers import retry


@dataclass(frozen=True)
class Tunnel:
    """One tunnel as AWS last saw it; ``accepted_routes`` counts the routes it carries."""

    outside_ip: str
    up: bool
    status_message: str
    last_status_change: datetime | None
    accepted_routes: int


def tunnels(ec2: Any, connection_id: str) -> list[Tunnel]:
    """The tunnels of ``connection_id``; OperationFailed if the connection is unknown or deleted."""
    try:
        response = retry.call(lambda: ec2.describe_vpn_connections(VpnConnectionIds=[connection_id]))
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "").startswith("InvalidVpnConnectionID"):
            raise OperationFailed(f"VPN connection {connection_id} not found in {_region(ec2)}") from None
        raise
    found = response["VpnConnections"]
    if not found or found[0].get("State") in ("deleting", "deleted"):
        raise OperationFailed(f"VPN connection {connection_id} not found (or deleted) in {_region(ec2)}")
    return [
        Tunnel(
            outside_ip=str(item["OutsideIpAddress"]),
            up=item.get("Status") == "UP",
            status_message=str(item.get("StatusMessage") or ""),
            last_status_change=_utc(item.get("LastStatusChange")),
            accepted_routes=int(item.get("AcceptedRouteCount") or 0),
        )
        for item in found[0].get("VgwTelemetry", [])
    ]


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def _region(client: Any) -> str:
    return str(client.meta.region_name)
