"""``compute.scale``: bring a site's application capacity to its active or warm size, whatever runs it.

A playbook that should work for any target site (``failover.yaml``) cannot name
``ecs.scale`` or ``eks.scale_nodegroup``: this action reads what the site runs and
delegates to the service's own action, so the work and its plan are written once.
On OpenStack, ``active`` starts the configured servers and scales NKS (when
configured) to its active count; ``warm`` scales NKS back and leaves servers as
they are (stopping servers is ``openstack.server_stop``, a decision of its own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from drorch.config.schema import EcsCompute, EksCompute, OpenStackCompute
from drorch.engine.actions import ecs, eks, nks, openstack
from drorch.engine.actions.sizing import ScaleParams
from drorch.engine.catalogue import ActionContext, Params, action

Call = tuple[Callable[[ActionContext, Any], Any], Params]


class ComputeParams(Params):
    site: str
    size: Literal["active", "warm"] = "active"
    timeout: float = Field(default=600.0, gt=0, le=3600)


def _calls(ctx: ActionContext, p: ComputeParams, planning: bool) -> dict[str, Call]:
    """The service actions (or their plans) that scale this site, by name."""
    compute = ctx.estate.config.site(p.site).compute
    sized = ScaleParams(site=p.site, size=p.size, timeout=p.timeout)
    if isinstance(compute, EcsCompute):
        return {"ecs": (ecs.plan if planning else ecs.scale_action, sized)}
    if isinstance(compute, EksCompute):
        group = eks.NodegroupParams(site=p.site, size=p.size, timeout=p.timeout)
        return {"eks": (eks.plan if planning else eks.scale_nodegroup_action, group)}
    if not isinstance(compute, OpenStackCompute):
        return {}
    calls: dict[str, Call] = {}
    if p.size == "active":
        servers = openstack.ServersParams(site=p.site, timeout=p.timeout)
        calls["servers"] = (openstack.plan_start if planning else openstack.server_start_action, servers)
    if compute.nks_cluster and compute.nks_nodegroup:
        calls["nks"] = (nks.plan if planning else nks.scale_nodegroup_action, sized)
    return calls


def plan(ctx: ActionContext, p: ComputeParams) -> list[str]:
    return [line for fn, params in _calls(ctx, p, planning=True).values() for line in fn(ctx, params)]


@action("compute.scale", ComputeParams, plan=plan)
def scale_action(ctx: ActionContext, p: ComputeParams) -> dict[str, Any]:
    """Scale the site's compute, whatever runs it (ECS service, EKS node groups, OpenStack servers and NKS), to its
    configured active or warm size and wait."""
    return {name: fn(ctx, params) for name, (fn, params) in _calls(ctx, p, planning=False).items()}
