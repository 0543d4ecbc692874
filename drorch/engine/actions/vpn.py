"""VPN actions: refuse to go on unless enough of a site's tunnels carry traffic.

A playbook that moves the database to the NHN site needs the VPN its replication
runs through. The check reads the VPN probe's merged view, so a tunnel counts as up
only when both the AWS telemetry and strongSwan (whichever are configured) say so.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from drorch.engine.actions.probed import probed
from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import OperationFailed
from drorch.probes import vpn as vpn_probe


class AssertUpParams(Params):
    site: str
    min_tunnels: int | None = Field(default=None, ge=1)  # default: every tunnel


@action("vpn.assert_up", AssertUpParams, mutating=False)
def assert_up_action(ctx: ActionContext, p: AssertUpParams) -> dict[str, Any]:
    """Fail, naming the down tunnels, unless at least ``min_tunnels`` (default: all) of the site's tunnels are up."""
    result = probed(vpn_probe.probe(ctx.estate, p.site),
                    f"sites.{p.site}.vpn: no VPN configured for {p.site} (aws_connection_id or vici_socket)",
                    f"{p.site} VPN: cannot read the tunnels")
    states: dict[str, str] = result.detail["tunnels"]
    down = [name for name, state in states.items() if state != "UP"]
    need = len(states) if p.min_tunnels is None else p.min_tunnels
    if not states:
        raise OperationFailed(f"{p.site} VPN: no tunnels reported")
    if need > len(states):
        raise OperationFailed(f"{p.site} VPN: {need} tunnels must be up but it has only {len(states)}")
    up = len(states) - len(down)
    if up < need:
        raise OperationFailed(f"{p.site} VPN: {up} of {len(states)} tunnels up, {need} needed; "
                              f"down: {', '.join(down)}")
    return {"up": up, "tunnels": states, "down": down}
