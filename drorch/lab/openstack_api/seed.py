"""Seed data for the lab cloud and the parser for ``--seed`` JSON files of the same shape.

The defaults model the NHN site of the drorch lab: two app servers behind one load balancer
(the second is a stopped warm standby), a VPN gateway, and one NKS cluster. Ids are fixed so
playbooks and tests can name them; ids a seed file leaves out are derived from names.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeVar

from drorch.lab.openstack_api.config import stable_id
from drorch.lab.openstack_api.state import (
    Cluster,
    Flavor,
    LabState,
    Listener,
    LoadBalancer,
    Member,
    NodeGroup,
    Pool,
    Server,
    utcnow,
)

_SUBNET_ID = "5b0e7000-0000-4000-8000-000000000001"
_IMAGE_ID = "1a9e0000-0000-4000-8000-000000000001"

DEFAULT_SEED: Mapping[str, Any] = {
    "flavors": [
        {
            "id": "f1a70000-0000-4000-8000-000000000001",
            "name": "t2.c1m1",
            "vcpus": 1,
            "ram": 1024,
            "disk": 20,
        },
        {
            "id": "f1a70000-0000-4000-8000-000000000002",
            "name": "m2.c2m4",
            "vcpus": 2,
            "ram": 4096,
            "disk": 50,
        },
        {
            "id": "f1a70000-0000-4000-8000-000000000003",
            "name": "m2.c4m8",
            "vcpus": 4,
            "ram": 8192,
            "disk": 50,
        },
    ],
    "servers": [
        {
            "id": "5e7e0000-0000-4000-8000-000000000001",
            "name": "nhn-app-1",
            "status": "ACTIVE",
            "flavor": "m2.c2m4",
            "ip": "192.168.0.11",
            "metadata": {"role": "app", "drorch:tier": "primary"},
        },
        {
            "id": "5e7e0000-0000-4000-8000-000000000002",
            "name": "nhn-app-2",
            "status": "SHUTOFF",
            "flavor": "m2.c2m4",
            "ip": "192.168.0.12",
            "metadata": {"role": "app", "drorch:tier": "warm-standby"},
        },
        {
            "id": "5e7e0000-0000-4000-8000-000000000003",
            "name": "nhn-vpn-gw",
            "status": "ACTIVE",
            "flavor": "t2.c1m1",
            "ip": "192.168.0.5",
            "metadata": {"role": "vpn-gateway"},
        },
    ],
    "loadbalancers": [
        {
            "id": "1b000000-0000-4000-8000-000000000001",
            "name": "nhn-app-lb",
            "vip_address": "192.168.0.100",
            "listeners": [
                {
                    "id": "1157e000-0000-4000-8000-000000000001",
                    "name": "nhn-app-http",
                    "protocol": "HTTP",
                    "protocol_port": 80,
                    "pool": {
                        "id": "90010000-0000-4000-8000-000000000001",
                        "name": "nhn-app-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [
                            {
                                "id": "3e3be000-0000-4000-8000-000000000001",
                                "name": "nhn-app-1",
                                "address": "192.168.0.11",
                                "protocol_port": 8080,
                            },
                            {
                                "id": "3e3be000-0000-4000-8000-000000000002",
                                "name": "nhn-app-2",
                                "address": "192.168.0.12",
                                "protocol_port": 8080,
                            },
                        ],
                    },
                }
            ],
        }
    ],
    "clusters": [
        {
            "id": "c1057e70-0000-4000-8000-000000000001",
            "name": "nks-prod",
            "status": "CREATE_COMPLETE",
            "nodegroups": [
                {
                    "id": "40de0000-0000-4000-8000-000000000001",
                    "name": "default-worker",
                    "flavor": "m2.c4m8",
                    "node_count": 1,
                    "min_node_count": 1,
                    "max_node_count": 5,
                }
            ],
        }
    ],
}

_T = TypeVar("_T")


def _get(obj: Mapping[str, Any], key: str, kind: type[_T], where: str, default: _T | None = None) -> _T:
    """Read a typed key, so a malformed seed file fails at start-up with the offending path."""
    value = obj.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"seed: {where}.{key} must be a {kind.__name__}, got {value!r}")
    return value


def _items(obj: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    items = _get(obj, key, list, where, [])
    if not all(isinstance(item, dict) for item in items):
        raise ValueError(f"seed: every entry of {where}.{key} must be an object")
    return items


def _flavor_id(flavors: list[Flavor], ref: str, where: str) -> str:
    for flavor in flavors:
        if ref in (flavor.id, flavor.name):
            return flavor.id
    raise ValueError(f"seed: {where} names unknown flavor {ref!r}")


def _member(data: Mapping[str, Any], pool_id: str, where: str) -> Member:
    address = _get(data, "address", str, where)
    return Member(
        id=_get(data, "id", str, where, stable_id("member", pool_id, address)),
        name=_get(data, "name", str, where, ""),
        address=address,
        protocol_port=_get(data, "protocol_port", int, where),
        subnet_id=_get(data, "subnet_id", str, where, _SUBNET_ID),
        weight=_get(data, "weight", int, where, 1),
    )


def _listener(data: Mapping[str, Any], where: str) -> Listener:
    name = _get(data, "name", str, where)
    pool = _get(data, "pool", dict, where)
    pool_where = f"{where}.pool"
    pool_name = _get(pool, "name", str, pool_where, f"{name}-pool")
    pool_id = _get(pool, "id", str, pool_where, stable_id("pool", pool_name))
    return Listener(
        id=_get(data, "id", str, where, stable_id("listener", name)),
        name=name,
        protocol=_get(data, "protocol", str, where, "HTTP"),
        protocol_port=_get(data, "protocol_port", int, where),
        pool=Pool(
            id=pool_id,
            name=pool_name,
            protocol=_get(pool, "protocol", str, pool_where, "HTTP"),
            lb_algorithm=_get(pool, "lb_algorithm", str, pool_where, "ROUND_ROBIN"),
            members=[
                _member(m, pool_id, f"{pool_where}.members[{i}]")
                for i, m in enumerate(_items(pool, "members", pool_where))
            ],
        ),
    )


def _nodegroup(data: Mapping[str, Any], flavors: list[Flavor], where: str) -> NodeGroup:
    name = _get(data, "name", str, where)
    max_count = data.get("max_node_count")
    if max_count is not None:
        max_count = _get(data, "max_node_count", int, where)
    now = utcnow()
    return NodeGroup(
        id=_get(data, "id", str, where, stable_id("nodegroup", name)),
        name=name,
        role=_get(data, "role", str, where, "worker"),
        flavor_id=_flavor_id(flavors, _get(data, "flavor", str, where), where),
        image_id=_get(data, "image_id", str, where, _IMAGE_ID),
        node_count=_get(data, "node_count", int, where),
        min_node_count=_get(data, "min_node_count", int, where, 0),
        max_node_count=max_count,
        status=_get(data, "status", str, where, "CREATE_COMPLETE"),
        is_default=_get(data, "is_default", bool, where, True),
        created=now,
        updated=now,
    )


def _flavor(data: Mapping[str, Any], where: str) -> Flavor:
    name = _get(data, "name", str, where)
    return Flavor(
        id=_get(data, "id", str, where, stable_id("flavor", name)),
        name=name,
        vcpus=_get(data, "vcpus", int, where),
        ram=_get(data, "ram", int, where),
        disk=_get(data, "disk", int, where),
    )


def _server(data: Mapping[str, Any], flavors: list[Flavor], where: str) -> Server:
    name = _get(data, "name", str, where)
    status = _get(data, "status", str, where, "ACTIVE")
    if status not in ("ACTIVE", "SHUTOFF"):
        raise ValueError(f"seed: {where}.status must be ACTIVE or SHUTOFF, got {status!r}")
    now = utcnow()
    return Server(
        id=_get(data, "id", str, where, stable_id("server", name)),
        name=name,
        status=status,
        flavor_id=_flavor_id(flavors, _get(data, "flavor", str, where), where),
        image_id=_get(data, "image_id", str, where, _IMAGE_ID),
        network=_get(data, "network", str, where, "Default Network"),
        ip=_get(data, "ip", str, where),
        metadata=_get(data, "metadata", dict, where, {}),
        created=now,
        updated=now,
    )


def _loadbalancer(data: Mapping[str, Any], where: str) -> LoadBalancer:
    name = _get(data, "name", str, where)
    return LoadBalancer(
        id=_get(data, "id", str, where, stable_id("loadbalancer", name)),
        name=name,
        vip_address=_get(data, "vip_address", str, where),
        vip_subnet_id=_get(data, "vip_subnet_id", str, where, _SUBNET_ID),
        listeners=[
            _listener(ls, f"{where}.listeners[{i}]") for i, ls in enumerate(_items(data, "listeners", where))
        ],
        created=utcnow(),
    )


def _cluster(data: Mapping[str, Any], flavors: list[Flavor], where: str) -> Cluster:
    name = _get(data, "name", str, where)
    now = utcnow()
    return Cluster(
        id=_get(data, "id", str, where, stable_id("cluster", name)),
        name=name,
        status=_get(data, "status", str, where, "CREATE_COMPLETE"),
        master_count=_get(data, "master_count", int, where, 1),
        cluster_template_id=_get(data, "cluster_template_id", str, where, stable_id("template", "nks")),
        keypair=_get(data, "keypair", str, where, "nhn-lab-key"),
        nodegroups=[
            _nodegroup(ng, flavors, f"{where}.nodegroups[{i}]")
            for i, ng in enumerate(_items(data, "nodegroups", where))
        ],
        created=now,
        updated=now,
    )


def load_seed(seed: Mapping[str, Any] | None = None) -> LabState:
    """Build a fresh :class:`LabState` from ``seed`` (default :data:`DEFAULT_SEED`).

    Raises ValueError naming the offending path when the seed is malformed.
    """
    data = copy.deepcopy(dict(DEFAULT_SEED if seed is None else seed))
    flavors = [_flavor(f, f"flavors[{i}]") for i, f in enumerate(_items(data, "flavors", "seed"))]
    return LabState(
        flavors=flavors,
        servers=[_server(s, flavors, f"servers[{i}]") for i, s in enumerate(_items(data, "servers", "seed"))],
        loadbalancers=[
            _loadbalancer(lb, f"loadbalancers[{i}]")
            for i, lb in enumerate(_items(data, "loadbalancers", "seed"))
        ],
        clusters=[
            _cluster(c, flavors, f"clusters[{i}]") for i, c in enumerate(_items(data, "clusters", "seed"))
        ],
    )
