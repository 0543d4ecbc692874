"""LBaaS v2 load balancers: the status of a site's load balancer and its members.

The status tree (``/lbaas/loadbalancers/{id}/status``) gives the balancer and every
member's health in one request. It is read through Octavia (``load-balancer``) when
the catalog has it, otherwise through the network endpoint, where NHN Cloud serves
the same LBaaS v2 API.
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
# DEGRADED: some members are down but the balancer serves through the others, as a
# site with a stopped warm-standby server normally is.
SERVING = ("ONLINE", "DEGRADED")


@dataclass(frozen=True)
class LoadBalancerStatus:
    """``members`` holds (member name, or address when unnamed, operating status) for every pool member."""

    name: str
    id: str
    provisioning_status: str
    operating_status: str
    members: tuple[tuple[str, str], ...]

    @property
    def online(self) -> bool:
        """Whether the balancer is provisioned and serving through at least one member."""
        return self.provisioning_status == "ACTIVE" and self.operating_status in SERVING


def status(conn: Connection, name: str) -> LoadBalancerStatus:
    """The balancer named ``name`` and its members' health; OperationFailed if it is missing or ambiguous."""
    api = _lbaas(conn)
    found = [
        lb
        for lb in _get_json(api, "/lbaas/loadbalancers", {"name": name})["loadbalancers"]
        if lb.get("name") == name  # filter again: not every LBaaS endpoint honours ?name=
    ]
    if not found:
        raise OperationFailed(f"OpenStack load balancer {name} not found in cloud {conn.config.name}")
    if len(found) > 1:
        raise OperationFailed(f"OpenStack load balancer name {name} is ambiguous: {[lb['id'] for lb in found]}")
    tree = _get_json(api, f"/lbaas/loadbalancers/{found[0]['id']}/status", None)["statuses"]["loadbalancer"]
    members = tuple(
        (str(m.get("name") or m.get("address") or m["id"]), str(m["operating_status"]))
        for listener in tree.get("listeners", [])
        for pool in listener.get("pools", [])
        for m in pool.get("members", [])
    )
    return LoadBalancerStatus(
        name=name,
        id=str(tree["id"]),
        provisioning_status=str(tree["provisioning_status"]),
        operating_status=str(tree["operating_status"]),
        members=members,
    )


def wait_online(conn: Connection, name: str, timeout: float = 300.0) -> LoadBalancerStatus:
    """Wait until the balancer serves (ACTIVE and ONLINE or DEGRADED); fail at once if provisioning is ERROR."""
    deadline = time.monotonic() + timeout
    while True:
        now = status(conn, name)
        if now.online:
            return now
        if now.provisioning_status == "ERROR":
            raise OperationFailed(f"OpenStack load balancer {name} is in provisioning status ERROR")
        if time.monotonic() > deadline:
            raise OperationFailed(
                f"OpenStack load balancer {name} not online after {timeout:.0f} s: "
                f"{now.provisioning_status}/{now.operating_status}; members: {_members(now)}"
            )
        time.sleep(POLL_SECONDS)


def _lbaas(conn: Connection) -> Any:
    """The proxy serving LBaaS v2: Octavia if the catalog lists it, else the network service (NHN Cloud)."""
    has_octavia = retry.call(lambda: conn.endpoint_for("load-balancer")) is not None
    return conn.load_balancer if has_octavia else conn.network


def _get_json(api: Any, path: str, params: dict[str, str] | None) -> Any:
    def get() -> Any:
        response = api.get(path, params=params)
        openstack.exceptions.raise_from_response(response)
        return response.json()

    return retry.call(get)


def _members(lb: LoadBalancerStatus) -> str:
    return ", ".join(f"{member} {state}" for member, state in lb.members) or "none"
