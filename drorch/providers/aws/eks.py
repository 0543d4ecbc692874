"""EKS managed node groups: scale a site's worker capacity."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from drorch.errors import OperationFailed
from drorch.providers import retry

POLL_SECONDS = 1.0


@dataclass(frozen=True)
class NodegroupSize:
    """A node group's scaling config and EKS status (UPDATING while a change is applied, then ACTIVE)."""

    desired: int
    minimum: int
    maximum: int
    status: str


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


def nodegroup_size(eks: Any, cluster: str, nodegroup: str) -> NodegroupSize:
    """The node group's sizes and status; OperationFailed when the cluster or node group does not exist."""
    try:
        group = retry.call(lambda: eks.describe_nodegroup(clusterName=cluster, nodegroupName=nodegroup))["nodegroup"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise OperationFailed(f"EKS node group {cluster}/{nodegroup} not found in {eks.meta.region_name}") from None
        raise
    scaling = group["scalingConfig"]
    return NodegroupSize(int(scaling["desiredSize"]), int(scaling["minSize"]), int(scaling["maxSize"]),
                         str(group.get("status", "ACTIVE")))


def wait_desired(eks: Any, cluster: str, nodegroup: str, desired: int, timeout: float) -> NodegroupSize:
    """Wait until the node group is ACTIVE at ``desired``; OperationFailed with its state after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        now = nodegroup_size(eks, cluster, nodegroup)
        if now.status == "ACTIVE" and now.desired == desired:
            return now
        if time.monotonic() > deadline:
            raise OperationFailed(f"EKS node group {cluster}/{nodegroup}: desired {now.desired} ({now.status}), "
                                  f"not {desired}, after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)
