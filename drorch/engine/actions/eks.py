"""EKS actions: scale a site's managed node groups to their active or warm size, or to a count.

``active`` is the size configured per node group (``compute.nodegroups``); ``warm`` is
the group's own minSize, the floor it keeps when it is not serving (see ``sizing``).
"""

from __future__ import annotations

import time
from typing import Any

from drorch.config.schema import EksCompute
from drorch.engine.actions.sizing import Resize, ScaleParams, changes, compute_of, target
from drorch.engine.catalogue import ActionContext, action
from drorch.providers.aws import eks


class NodegroupParams(ScaleParams):
    nodegroup: str | None = None  # default: every node group in the site's config


def _resizes(ctx: ActionContext, p: NodegroupParams) -> tuple[EksCompute, dict[str, Resize]]:
    """Node group name -> its size now and its target."""
    compute = compute_of(ctx.estate, p.site, EksCompute)
    client = ctx.estate.aws(p.site, "eks")
    resizes = {}
    for name in [p.nodegroup] if p.nodegroup else list(compute.nodegroups):
        label = f"{p.site} EKS {compute.cluster}/{name}"
        now = eks.nodegroup_size(client, compute.cluster, name)
        resizes[name] = Resize(label, now.desired, target(p, compute.nodegroups.get(name), now.minimum, label))
    return compute, resizes


def plan(ctx: ActionContext, p: NodegroupParams) -> list[str]:
    return changes(list(_resizes(ctx, p)[1].values()))


@action("eks.scale_nodegroup", NodegroupParams, plan=plan)
def scale_nodegroup_action(ctx: ActionContext, p: NodegroupParams) -> dict[str, Any]:
    """Set the desired size of the site's EKS node groups (one, or all configured) and wait until they are ACTIVE.

    ``size: active`` uses the configured size, ``size: warm`` the group's minSize, ``count`` a number.
    """
    compute, resizes = _resizes(ctx, p)
    client = ctx.estate.aws(p.site, "eks")
    deadline = time.monotonic() + p.timeout
    for name, resize in resizes.items():  # all requests first, so the groups grow in parallel
        eks.scale_nodegroup(client, compute.cluster, name, resize.target)
    for name, resize in resizes.items():
        eks.wait_desired(client, compute.cluster, name, resize.target, max(1.0, deadline - time.monotonic()))
    return {"nodegroups": {name: {"previous": r.current, "desired": r.target} for name, r in resizes.items()},
            "changed": bool(changes(list(resizes.values())))}
