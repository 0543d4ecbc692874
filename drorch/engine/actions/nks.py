"""NKS (NHN Kubernetes) actions: scale the site's worker node group to its active or warm size, or a count.

``active`` is ``compute.nks_active_count``; ``warm`` is the group's own
min_node_count (see ``sizing``). The provider waits until Magnum reports the
update complete at that count, and fails on UPDATE_FAILED.
"""

from __future__ import annotations

from typing import Any

from drorch.config.schema import OpenStackCompute
from drorch.engine.actions.sizing import Resize, ScaleParams, changes, compute_of, target
from drorch.engine.catalogue import ActionContext, action
from drorch.errors import InvalidInput
from drorch.providers.openstack import nks


def _resize(ctx: ActionContext, p: ScaleParams) -> tuple[str, str, Resize]:
    compute = compute_of(ctx.estate, p.site, OpenStackCompute)
    if compute.nks_cluster is None or compute.nks_nodegroup is None:
        raise InvalidInput(f"sites.{p.site}.compute: set nks_cluster and nks_nodegroup to scale NKS there")
    label = f"{p.site} NKS {compute.nks_cluster}/{compute.nks_nodegroup}"
    now = nks.nodegroup(ctx.estate.openstack(p.site), compute.nks_cluster, compute.nks_nodegroup)
    wanted = target(p, compute.nks_active_count, now.min_node_count, label)
    return compute.nks_cluster, compute.nks_nodegroup, Resize(label, now.node_count, wanted)


def plan(ctx: ActionContext, p: ScaleParams) -> list[str]:
    return changes([_resize(ctx, p)[2]])


@action("nks.scale_nodegroup", ScaleParams, plan=plan)
def scale_nodegroup_action(ctx: ActionContext, p: ScaleParams) -> dict[str, Any]:
    """Set the node count of the site's NKS worker group (size active/warm, or count) and wait for UPDATE_COMPLETE."""
    cluster, group, resize = _resize(ctx, p)
    result = nks.scale(ctx.estate.openstack(p.site), cluster, group, resize.target, timeout=p.timeout)
    return {"nodegroup": f"{cluster}/{group}", "previous": resize.current, "node_count": result.node_count,
            "status": result.status, "changed": resize.current != resize.target}
