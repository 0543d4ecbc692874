"""LBaaS v2: load balancers, listeners, pools and members, read-only, with live operating status.

The same resources are mounted where Octavia serves them (``/load-balancer/v2.0/lbaas``, which
openstacksdk's ``conn.load_balancer`` uses, and ``/load-balancer/v2/lbaas``) and where NHN Cloud
serves them on its Neutron endpoint (``/network/v2.0/lbaas``). Provisioning is always ACTIVE.
Operating status stands in for a health monitor: a member is ONLINE while the server owning its
address is ACTIVE and OFFLINE otherwise, and a pool, listener or load balancer is ONLINE while at
least one of its members is ONLINE and ERROR otherwise, so stopping servers shows in the LB.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from drorch.lab.openstack_api.config import ApiConfig
from drorch.lab.openstack_api.keystone import CatalogEntry
from drorch.lab.openstack_api.state import LabState, Listener, LoadBalancer, Member, Pool

OCTAVIA = CatalogEntry("load-balancer", "octavia", "/load-balancer")
NEUTRON = CatalogEntry("network", "neutron", "/network")
# (blueprint name, mount point of /lbaas). openstacksdk skips discovery for load-balancer and network
# and appends "v2.0" to the catalog URL; "/v2" is where Octavia's discovery document points.
MOUNTS = (
    ("lbaas_octavia", OCTAVIA.path + "/v2.0"),
    ("lbaas_octavia_v2", OCTAVIA.path + "/v2"),
    ("lbaas_neutron", NEUTRON.path + "/v2.0"),
)


def octavia_error(code: int, message: str) -> Response:
    """Octavia's (WSME) error body, which openstacksdk reads ``faultstring`` from."""
    response = jsonify(
        {"faultcode": "Client" if code < 500 else "Server", "faultstring": message, "debuginfo": None}
    )
    response.status_code = code
    return response


def _member_status(state: LabState, member: Member) -> str:
    server = state.server_by_address(member.address)
    return "ONLINE" if server is not None and server.status == "ACTIVE" else "OFFLINE"


def _aggregate(state: LabState, members: Iterable[Member]) -> str:
    return "ONLINE" if any(_member_status(state, m) == "ONLINE" for m in members) else "ERROR"


def _lb_members(lb: LoadBalancer) -> list[Member]:
    return [m for listener in lb.listeners for m in listener.pool.members]


def _common(config: ApiConfig, ident: str, name: str, operating_status: str) -> dict[str, Any]:
    return {
        "id": ident,
        "name": name,
        "description": "",
        "admin_state_up": True,
        "provisioning_status": "ACTIVE",
        "operating_status": operating_status,
        "project_id": config.project_id,
        "tenant_id": config.project_id,
        "tags": [],
    }


def _member_view(config: ApiConfig, state: LabState, member: Member) -> dict[str, Any]:
    return _common(config, member.id, member.name, _member_status(state, member)) | {
        "address": member.address,
        "protocol_port": member.protocol_port,
        "weight": member.weight,
        "backup": False,
        "subnet_id": member.subnet_id,
        "monitor_address": None,
        "monitor_port": None,
    }


def _pool_view(config: ApiConfig, state: LabState, lb: LoadBalancer, listener: Listener) -> dict[str, Any]:
    pool = listener.pool
    return _common(config, pool.id, pool.name, _aggregate(state, pool.members)) | {
        "protocol": pool.protocol,
        "lb_algorithm": pool.lb_algorithm,
        "session_persistence": None,
        "healthmonitor_id": None,
        "listeners": [{"id": listener.id}],
        "loadbalancers": [{"id": lb.id}],
        "members": [{"id": m.id} for m in pool.members],
    }


def _listener_view(
    config: ApiConfig, state: LabState, lb: LoadBalancer, listener: Listener
) -> dict[str, Any]:
    return _common(config, listener.id, listener.name, _aggregate(state, listener.pool.members)) | {
        "protocol": listener.protocol,
        "protocol_port": listener.protocol_port,
        "connection_limit": -1,
        "default_pool_id": listener.pool.id,
        "loadbalancers": [{"id": lb.id}],
        "l7policies": [],
        "insert_headers": {},
        "default_tls_container_ref": None,
        "sni_container_refs": [],
    }


def _lb_view(config: ApiConfig, state: LabState, lb: LoadBalancer) -> dict[str, Any]:
    return _common(config, lb.id, lb.name, _aggregate(state, _lb_members(lb))) | {
        "vip_address": lb.vip_address,
        "vip_subnet_id": lb.vip_subnet_id,
        "vip_port_id": None,
        "provider": "amphora",
        "flavor_id": None,
        "availability_zone": None,
        "listeners": [{"id": ls.id} for ls in lb.listeners],
        "pools": [{"id": ls.pool.id} for ls in lb.listeners],
        "created_at": lb.created.strftime("%Y-%m-%dT%H:%M:%S"),
        "updated_at": None,
    }


def _status_tree(state: LabState, lb: LoadBalancer) -> dict[str, Any]:
    """The ``/status`` document: every object's provisioning and operating status, nested."""

    def node(ident: str, name: str, status: str) -> dict[str, Any]:
        return {"id": ident, "name": name, "provisioning_status": "ACTIVE", "operating_status": status}

    def pool_node(pool: Pool) -> dict[str, Any]:
        members = [
            node(m.id, m.name, _member_status(state, m))
            | {"address": m.address, "protocol_port": m.protocol_port}
            for m in pool.members
        ]
        return node(pool.id, pool.name, _aggregate(state, pool.members)) | {"members": members}

    listeners = [
        node(ls.id, ls.name, _aggregate(state, ls.pool.members)) | {"pools": [pool_node(ls.pool)]}
        for ls in lb.listeners
    ]
    return {
        "loadbalancer": node(lb.id, lb.name, _aggregate(state, _lb_members(lb))) | {"listeners": listeners}
    }


def _matches(field: Any, wanted: str) -> bool:
    return str(field).lower() == wanted.lower() if isinstance(field, bool) else str(field) == wanted


def _filtered(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply Octavia's equality filters (``?name=...``); parameters that are not scalar fields are ignored."""
    return [
        view
        for view in views
        if all(
            _matches(view[key], wanted)
            for key, wanted in request.args.items()
            if key in view and not isinstance(view[key], list | dict)
        )
    ]


def _one(kind: str, resource_key: str, ident: str, views: list[dict[str, Any]]) -> Response:
    found = next((v for v in views if v["id"] == ident), None)
    if found is None:
        return octavia_error(404, f"{kind} {ident} not found.")
    return jsonify({resource_key: found})


def blueprint(config: ApiConfig, state: LabState) -> Blueprint:
    """The ``/lbaas`` resources; register once per :data:`MOUNTS` entry. The caller adds the token guard."""
    bp = Blueprint("lbaas", __name__)

    def lbs(db: LabState) -> list[dict[str, Any]]:
        return [_lb_view(config, db, lb) for lb in db.loadbalancers]

    def listeners(db: LabState) -> list[dict[str, Any]]:
        return [_listener_view(config, db, lb, ls) for lb in db.loadbalancers for ls in lb.listeners]

    def pools(db: LabState) -> list[dict[str, Any]]:
        return [_pool_view(config, db, lb, ls) for lb in db.loadbalancers for ls in lb.listeners]

    @bp.get("/lbaas/loadbalancers")
    def list_loadbalancers() -> Response:
        with state.transaction() as db:
            return jsonify({"loadbalancers": _filtered(lbs(db)), "loadbalancers_links": []})

    @bp.get("/lbaas/loadbalancers/<lb_id>")
    def show_loadbalancer(lb_id: str) -> Response:
        with state.transaction() as db:
            return _one("Load Balancer", "loadbalancer", lb_id, lbs(db))

    @bp.get("/lbaas/loadbalancers/<lb_id>/status")
    def loadbalancer_status(lb_id: str) -> Response:
        with state.transaction() as db:
            lb = next((lb for lb in db.loadbalancers if lb.id == lb_id), None)
            if lb is None:
                return octavia_error(404, f"Load Balancer {lb_id} not found.")
            return jsonify({"statuses": _status_tree(db, lb)})

    @bp.get("/lbaas/listeners")
    def list_listeners() -> Response:
        with state.transaction() as db:
            return jsonify({"listeners": _filtered(listeners(db)), "listeners_links": []})

    @bp.get("/lbaas/listeners/<listener_id>")
    def show_listener(listener_id: str) -> Response:
        with state.transaction() as db:
            return _one("Listener", "listener", listener_id, listeners(db))

    @bp.get("/lbaas/pools")
    def list_pools() -> Response:
        with state.transaction() as db:
            return jsonify({"pools": _filtered(pools(db)), "pools_links": []})

    @bp.get("/lbaas/pools/<pool_id>")
    def show_pool(pool_id: str) -> Response:
        with state.transaction() as db:
            return _one("Pool", "pool", pool_id, pools(db))

    def pool_members(db: LabState, pool_id: str) -> list[dict[str, Any]] | None:
        pool = next(
            (ls.pool for lb in db.loadbalancers for ls in lb.listeners if ls.pool.id == pool_id), None
        )
        return None if pool is None else [_member_view(config, db, m) for m in pool.members]

    @bp.get("/lbaas/pools/<pool_id>/members")
    def list_members(pool_id: str) -> Response:
        with state.transaction() as db:
            members = pool_members(db, pool_id)
            if members is None:
                return octavia_error(404, f"Pool {pool_id} not found.")
            return jsonify({"members": _filtered(members), "members_links": []})

    @bp.get("/lbaas/pools/<pool_id>/members/<member_id>")
    def show_member(pool_id: str, member_id: str) -> Response:
        with state.transaction() as db:
            members = pool_members(db, pool_id)
            if members is None:
                return octavia_error(404, f"Pool {pool_id} not found.")
            return _one("Member", "member", member_id, members)

    return bp


def discovery_blueprint(config: ApiConfig) -> Blueprint:
    """Version documents for the Octavia and Neutron endpoints; served without a token."""
    bp = Blueprint("lbaas_discovery", __name__)

    @bp.get(OCTAVIA.path + "/")
    def octavia_versions() -> Response:
        # Octavia lists every 2.x minor version with the same /v2 link; two are enough for discovery.
        link = [{"rel": "self", "href": config.url(OCTAVIA.path + "/v2")}]
        return jsonify(
            {
                "versions": [
                    {"id": "v2.0", "status": "SUPPORTED", "updated": "2016-12-11T00:00:00Z", "links": link},
                    {"id": "v2.27", "status": "CURRENT", "updated": "2023-05-05T00:00:00Z", "links": link},
                ]
            }
        )

    @bp.get(NEUTRON.path + "/")
    def neutron_versions() -> Response:
        link = [{"rel": "self", "href": config.url(NEUTRON.path + "/v2.0/")}]
        return jsonify({"versions": [{"id": "v2.0", "status": "CURRENT", "links": link}]})

    return bp
