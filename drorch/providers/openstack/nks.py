"""NKS (NHN's Magnum) node groups: read a worker group's size and scale it, idempotently.

openstacksdk has no node-group resource, so this speaks Magnum's v1 REST API through
the connection's authenticated session. Node groups need API microversion 1.9,
which every Magnum with node groups serves. Scaling is a JSON-patch of
``node_count``; Magnum then moves the group through UPDATE_IN_PROGRESS to
UPDATE_COMPLETE (or UPDATE_FAILED), which is what the wait watches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import openstack.exceptions
from openstack.connection import Connection

from drorch.errors import OperationFailed
from drorch.providers import retry

POLL_SECONDS = 1.0
_HEADERS = {"OpenStack-API-Version": "container-infra 1.9"}


@dataclass(frozen=True)
class NodeGroup:
    """A node group's size, limits (``max_node_count`` None = unbounded) and Magnum status."""

    cluster: str
    name: str
    node_count: int
    min_node_count: int
    max_node_count: int | None
    status: str

    @property
    def busy(self) -> bool:
        return "IN_PROGRESS" in self.status

    def allows(self, count: int) -> bool:
        return self.min_node_count <= count and (self.max_node_count is None or count <= self.max_node_count)


def nodegroup(conn: Connection, cluster: str, nodegroup: str) -> NodeGroup:
    """The node group ``nodegroup`` of ``cluster`` (names or ids); OperationFailed if either is missing."""
    body = _call(conn, "GET", cluster, nodegroup, None, "read it")
    maximum = body.get("max_node_count")
    return NodeGroup(
        cluster=cluster,
        name=nodegroup,
        node_count=int(body["node_count"]),
        min_node_count=int(body.get("min_node_count") or 0),
        max_node_count=int(maximum) if maximum is not None else None,
        status=str(body["status"]),
    )


def scale(conn: Connection, cluster: str, nodegroup: str, count: int, timeout: float = 900.0) -> NodeGroup:
    """Set the group's node count and wait until Magnum reports UPDATE_COMPLETE at that count.

    Idempotent: a group already at ``count`` is left alone. An update already running
    is waited out first, since Magnum refuses a second one (409). A count outside the
    group's min/max fails before anything is sent.
    """
    deadline = time.monotonic() + timeout
    group = _settled(conn, cluster, nodegroup, deadline, timeout)
    if group.node_count == count and not group.status.endswith("_FAILED"):
        return group
    if not group.allows(count):
        upper = "unbounded" if group.max_node_count is None else group.max_node_count
        raise OperationFailed(
            f"NKS node group {cluster}/{nodegroup}: cannot scale to {count} nodes, outside its limits "
            f"min_node_count {group.min_node_count}, max_node_count {upper} (change the limits in NKS or the count)"
        )
    patch = [{"op": "replace", "path": "/node_count", "value": count}]
    _call(conn, "PATCH", cluster, nodegroup, patch, f"scale it to {count} nodes")
    group = _settled(conn, cluster, nodegroup, deadline, timeout)
    if group.status != "UPDATE_COMPLETE" or group.node_count != count:
        raise OperationFailed(
            f"NKS node group {cluster}/{nodegroup}: scaling to {count} ended {group.status} "
            f"with {group.node_count} nodes"
        )
    return group


def _settled(conn: Connection, cluster: str, name: str, deadline: float, timeout: float) -> NodeGroup:
    """Poll until no update is in progress, within the caller's deadline."""
    while True:
        group = nodegroup(conn, cluster, name)
        if not group.busy:
            return group
        if time.monotonic() > deadline:
            raise OperationFailed(f"NKS node group {cluster}/{name} still {group.status} after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def _call(conn: Connection, method: str, cluster: str, group: str, body: Any, doing: str) -> Any:
    """One Magnum request under the retry policy; client errors become OperationFailed with Magnum's own detail."""
    endpoint = {
        "service_type": "container-infra",
        "interface": conn.config.get_interface(),
        "region_name": conn.config.get_region_name(),
    }

    def send() -> Any:
        path = f"/clusters/{cluster}/nodegroups/{group}"
        response = conn.session.request(
            path, method, json=body, headers=_HEADERS, endpoint_filter=endpoint, raise_exc=False
        )
        if response.status_code >= 500 or response.status_code == 429:
            openstack.exceptions.raise_from_response(response)  # server trouble: for the retry policy to judge
        return response

    response = retry.call(send)
    if response.status_code >= 400:
        raise OperationFailed(
            f"NKS node group {cluster}/{group}: cannot {doing}: {_detail(response)} (HTTP {response.status_code})"
        )
    return response.json()


def _detail(response: Any) -> str:
    """Magnum's error text (``errors[0].detail``), which openstacksdk does not extract."""
    try:
        return str(response.json()["errors"][0]["detail"])
    except (ValueError, KeyError, IndexError, TypeError):
        return str(response.reason or response.text[:200])
