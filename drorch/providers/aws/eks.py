"""EKS managed node groups: scale a site's worker capacity."""

from __future__ import annotations

from typing import Any

from drorch.providers import retry


def scale_nodegroup(eks: Any, cluster: str, nodegroup: str, desired: int) -> int:
    """Set the node group's desired size (raising max when needed); idempotent. Returns the desired size."""
    group = retry.call(lambda: eks.describe_nodegroup(clusterName=cluster, nodegroupName=nodegroup))["nodegroup"]
    scaling = group["scalingConfig"]
    if int(scaling["desiredSize"]) == desired:
        return desired
    config = {"minSize": min(int(scaling["minSize"]), desired), "maxSize": max(int(scaling["maxSize"]), desired),
              "desiredSize": desired}
    retry.call(lambda: eks.update_nodegroup_config(clusterName=cluster, nodegroupName=nodegroup, scalingConfig=config))
    return desired
