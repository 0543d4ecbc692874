"""Compute actions: bring a standby's application capacity to its active or warm size."""

from __future__ import annotations

from typing import Any, Literal

from drorch.config.schema import EcsCompute, EksCompute
from drorch.engine.catalogue import ActionContext, Params, action
from drorch.providers.aws import ecs, eks
from drorch.providers.estate import Estate


def scale_to_active(estate: Estate, site: str) -> dict[str, Any]:
    """Scale ``site`` to its active footprint; returns what was set (empty when nothing to do)."""
    compute = estate.config.site(site).compute
    if isinstance(compute, EcsCompute):
        result = ecs.scale(estate.aws(site, "ecs"), compute.cluster, compute.service, compute.active_count)
        return {"ecs_service": compute.service, "desired": result.desired, "running": result.running}
    if isinstance(compute, EksCompute):
        client = estate.aws(site, "eks")
        sizes = {name: eks.scale_nodegroup(client, compute.cluster, name, size)
                 for name, size in compute.nodegroups.items()}
        return {"eks_nodegroups": sizes}
    return {}


class ScaleParams(Params):
    site: str
    size: Literal["active", "warm"] = "active"


@action("compute.scale", ScaleParams)
def scale_action(ctx: ActionContext, p: ScaleParams) -> dict[str, Any]:
    """Scale the site's compute (ECS service, EKS node groups) to its configured active or warm size and wait."""
    if p.size == "active":
        return scale_to_active(ctx.estate, p.site)
    compute = ctx.estate.config.site(p.site).compute
    if isinstance(compute, EcsCompute):
        result = ecs.scale(ctx.estate.aws(p.site, "ecs"), compute.cluster, compute.service, compute.warm_count)
        return {"ecs_service": compute.service, "desired": result.desired, "running": result.running}
    return {}
