"""Compute capacity of a site: desired versus running."""

from __future__ import annotations

from typing import Any

from drorch.config.schema import EcsCompute, EksCompute, OpenStackCompute
from drorch.probes.result import ProbeResult, timed
from drorch.providers.aws import ecs
from drorch.providers.estate import Estate


def probe(estate: Estate, site: str) -> ProbeResult | None:
    compute = estate.config.site(site).compute
    if compute is None:
        return None

    def measure() -> tuple[bool, float | None, dict[str, Any]]:
        if isinstance(compute, EcsCompute):
            cap = ecs.capacity(estate.aws(site, "ecs"), compute.cluster, compute.service)
            return cap.running >= 1, float(cap.running), {
                "kind": "ecs", "desired": cap.desired, "running": cap.running,
                "warm_count": compute.warm_count, "active_count": compute.active_count}
        if isinstance(compute, EksCompute):
            client = estate.aws(site, "eks")
            sizes = {}
            for name in compute.nodegroups:
                group = client.describe_nodegroup(clusterName=compute.cluster, nodegroupName=name)["nodegroup"]
                sizes[name] = int(group["scalingConfig"]["desiredSize"])
            return all(size >= 1 for size in sizes.values()), float(sum(sizes.values())), {
                "kind": "eks", "desired": sizes}
        assert isinstance(compute, OpenStackCompute)
        from drorch.providers.openstack import compute as os_compute

        servers = os_compute.servers(estate.openstack(site), compute.servers)
        active = [s.name for s in servers if s.status == "ACTIVE"]
        return bool(active), float(len(active)), {
            "kind": "openstack", "active": active, "servers": {s.name: s.status for s in servers}}

    return timed(site, "compute", measure)
