"""ECS actions: scale a standby's Fargate service to a size and wait until its tasks run.

A warm standby runs a small count and is scaled out on failover (what the Tokyo
teams' "dr-on-button" Lambda did); scaling back to warm is the same action.
"""

from __future__ import annotations

from typing import Any

from drorch.config.schema import EcsCompute
from drorch.engine.actions.sizing import Resize, ScaleParams, changes, compute_of, target
from drorch.engine.catalogue import ActionContext, action
from drorch.errors import OperationFailed
from drorch.providers.aws import ecs


def _resize(ctx: ActionContext, p: ScaleParams) -> tuple[EcsCompute, Resize]:
    compute = compute_of(ctx.estate, p.site, EcsCompute)
    label = f"{p.site} ECS {compute.cluster}/{compute.service}"
    wanted = target(p, compute.active_count, compute.warm_count, label)
    now = ecs.capacity(ctx.estate.aws(p.site, "ecs"), compute.cluster, compute.service)
    return compute, Resize(label, now.desired, wanted)


def plan(ctx: ActionContext, p: ScaleParams) -> list[str]:
    return changes([_resize(ctx, p)[1]])


@action("ecs.scale", ScaleParams, plan=plan)
def scale_action(ctx: ActionContext, p: ScaleParams) -> dict[str, Any]:
    """Set the site's ECS service desired count (size active/warm from the config, or count) and wait until it runs.

    Scaling down returns once the new desired count is set and at least that many tasks
    run; ECS drains the surplus on its own.
    """
    compute, resize = _resize(ctx, p)
    client = ctx.estate.aws(p.site, "ecs")
    result = ecs.scale(client, compute.cluster, compute.service, resize.target, timeout=p.timeout)
    if result.desired != resize.target:  # someone (an autoscaler?) changed it meanwhile
        raise OperationFailed(f"{resize.label}: desired count is {result.desired} after setting {resize.target}")
    return {"service": compute.service, "previous": resize.current, "desired": result.desired,
            "running": result.running, "changed": resize.current != resize.target}
