"""NKS, NHN's Magnum-based Kubernetes service: clusters and node groups, with node-group scaling.

Scaling is a JSON-patch ``PATCH`` of a node group, as in Magnum. The new size is validated
against the group's min/max like Magnum does, the group and its cluster go through
UPDATE_IN_PROGRESS for ``transition_seconds`` (skipped when 0), then UPDATE_COMPLETE.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from drorch.lab.openstack_api.config import ApiConfig
from drorch.lab.openstack_api.keystone import CatalogEntry
from drorch.lab.openstack_api.state import Cluster, LabState, NodeGroup, utcnow
from drorch.lab.openstack_api.web import json_body, token_guard

log = logging.getLogger(__name__)

PREFIX = "/container-infra"
CATALOG = CatalogEntry("container-infra", "magnum", PREFIX + "/v1")
_SCALABLE = ("node_count", "min_node_count", "max_node_count")


def magnum_error(code: int, message: str) -> Response:
    """Magnum's error body: a list of errors with ``detail``."""
    title = {400: "Bad Request", 404: "Not Found", 409: "Conflict"}.get(code, "Error")
    response = jsonify(
        {
            "errors": [
                {
                    "request_id": "",
                    "code": "client" if code < 500 else "server",
                    "status": code,
                    "title": title,
                    "detail": message,
                    "links": [],
                }
            ]
        }
    )
    response.status_code = code
    return response


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _links(config: ApiConfig, path: str) -> list[dict[str, str]]:
    return [
        {"href": config.url(f"{CATALOG.path}/{path}"), "rel": "self"},
        {"href": config.url(f"{PREFIX}/{path}"), "rel": "bookmark"},
    ]


def _node_addresses(cluster: Cluster, group: NodeGroup) -> list[str]:
    index = cluster.nodegroups.index(group)
    return [f"10.100.{index}.{10 + n}" for n in range(group.node_count)]


def _workers(cluster: Cluster) -> list[NodeGroup]:
    return [ng for ng in cluster.nodegroups if ng.role != "master"]


def _nodegroup_view(config: ApiConfig, cluster: Cluster, group: NodeGroup, detail: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "uuid": group.id,
        "name": group.name,
        "flavor_id": group.flavor_id,
        "image_id": group.image_id,
        "node_count": group.node_count,
        "role": group.role,
        "max_node_count": group.max_node_count,
        "min_node_count": group.min_node_count,
        "is_default": group.is_default,
        "stack_id": None,
        "status": group.status,
        "links": _links(config, f"clusters/{cluster.id}/nodegroups/{group.id}"),
    }
    if detail:
        view |= {
            "cluster_id": cluster.id,
            "project_id": config.project_id,
            "docker_volume_size": None,
            "labels": {},
            "node_addresses": _node_addresses(cluster, group),
            "status_reason": None,
            "version": None,
            "created_at": _iso(group.created),
            "updated_at": _iso(group.updated),
        }
    return view


def _cluster_view(config: ApiConfig, cluster: Cluster, detail: bool) -> dict[str, Any]:
    workers = _workers(cluster)
    view: dict[str, Any] = {
        "uuid": cluster.id,
        "name": cluster.name,
        "status": cluster.status,
        "health_status": "HEALTHY" if cluster.status.endswith("_COMPLETE") else "UNKNOWN",
        "stack_id": None,
        "keypair": cluster.keypair,
        "master_count": cluster.master_count,
        "node_count": sum(ng.node_count for ng in workers),
        "cluster_template_id": cluster.cluster_template_id,
        "create_timeout": 60,
        "docker_volume_size": None,
        "labels": {},
        "master_flavor_id": None,
        "flavor_id": workers[0].flavor_id if workers else None,
        "project_id": config.project_id,
        "links": _links(config, f"clusters/{cluster.id}"),
    }
    if detail:
        view |= {
            "api_address": f"https://{cluster.id}.{config.region.lower()}-api-kubernetes.lab.invalid:6443",
            "coe_version": "v1.29.3",
            "container_version": "1.12.6",
            "discovery_url": None,
            "master_addresses": [],
            "node_addresses": [a for ng in workers for a in _node_addresses(cluster, ng)],
            "status_reason": None,
            "health_status_reason": {},
            "faults": {},
            "fixed_network": None,
            "fixed_subnet": None,
            "floating_ip_enabled": False,
            "master_lb_enabled": True,
            "user_id": config.user_id,
            "created_at": _iso(cluster.created),
            "updated_at": _iso(cluster.updated),
        }
    return view


@dataclass(frozen=True)
class _Counts:
    """The patchable sizes of a node group."""

    node_count: int
    min_node_count: int
    max_node_count: int | None


def _patched(group: NodeGroup, patch: Any) -> _Counts | str:
    """Apply a JSON patch to the group's sizes; return the new sizes or an error message."""
    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        return "The request body must be a JSON patch: a list of operations."
    counts = _Counts(group.node_count, group.min_node_count, group.max_node_count)
    for op in patch:
        field = str(op.get("path", "")).removeprefix("/")
        if field not in _SCALABLE:
            return f"'{op.get('path')}' can't be updated; patchable attributes are {', '.join(_SCALABLE)}."
        value = op.get("value")
        if op.get("op") == "remove" and field == "max_node_count":
            counts = replace(counts, max_node_count=None)
        elif op.get("op") not in ("replace", "add"):
            return f"Unsupported patch operation {op.get('op')!r} on {field}."
        elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"Invalid value for {field}: {value!r} is not a non-negative integer."
        else:
            counts = replace(counts, **{field: value})
    return counts


def _count_error(group: NodeGroup, counts: _Counts) -> str | None:
    """Magnum's rules: min_node_count <= node_count <= max_node_count (when max is set)."""
    node, low, high = counts.node_count, counts.min_node_count, counts.max_node_count
    if high is not None and high < low:
        return (
            f"max_node_count for {group.name} is invalid "
            f"(max_node_count {high} is less than min_node_count {low})."
        )
    if high is not None and node > high:
        return (
            f"node_count for {group.name} is invalid (node_count {node} is more than max_node_count {high})."
        )
    if node < low:
        return (
            f"node_count for {group.name} is invalid (node_count {node} is less than min_node_count {low})."
        )
    return None


def _scale(config: ApiConfig, state: LabState, cluster: Cluster, group: NodeGroup) -> Response:
    if "IN_PROGRESS" in cluster.status or "IN_PROGRESS" in group.status:
        return magnum_error(409, f"Cluster {cluster.name} is {cluster.status}; wait for the running update.")
    counts = _patched(group, json_body())
    if isinstance(counts, str):
        return magnum_error(400, counts)
    error = _count_error(group, counts)
    if error is not None:
        return magnum_error(400, error)
    group.node_count, group.min_node_count, group.max_node_count = (
        counts.node_count,
        counts.min_node_count,
        counts.max_node_count,
    )
    group.status = cluster.status = "UPDATE_IN_PROGRESS"
    group.updated = cluster.updated = utcnow()

    def finish() -> None:
        group.status = cluster.status = "UPDATE_COMPLETE"
        group.updated = cluster.updated = utcnow()
        log.info("node group %s/%s now has %d nodes", cluster.name, group.name, group.node_count)

    state.schedule(config.transition_seconds, finish)
    response = jsonify(_nodegroup_view(config, cluster, group, detail=True))
    response.status_code = 202
    return response


def blueprints(config: ApiConfig, state: LabState) -> list[Blueprint]:
    """Magnum discovery (public) and the authenticated v1 API."""
    discovery = Blueprint("nks_discovery", __name__, url_prefix=PREFIX)
    api = Blueprint("nks", __name__, url_prefix=CATALOG.path)
    api.before_request(token_guard(config, state))

    @discovery.get("/")
    def root() -> Response:
        return jsonify(
            {
                "name": "OpenStack Magnum API",
                "description": (
                    "Magnum is an OpenStack project which aims to provide container cluster management."
                ),
                "versions": [
                    {
                        "id": "v1",
                        "status": "CURRENT",
                        "min_version": "1.1",
                        "max_version": "1.11",
                        "links": [{"href": config.url(CATALOG.path + "/"), "rel": "self"}],
                    }
                ],
            }
        )

    @discovery.get("/v1/")
    def version() -> Response:
        return jsonify(
            {
                "id": "v1",
                "links": [{"href": config.url(CATALOG.path + "/"), "rel": "self"}],
                "media_types": [
                    {"base": "application/json", "type": "application/vnd.openstack.magnum.v1+json"}
                ],
                "clusters": _links(config, "clusters"),
            }
        )

    @api.get("/clusters")
    def list_clusters() -> Response:
        with state.transaction() as db:
            return jsonify({"clusters": [_cluster_view(config, c, detail=False) for c in db.clusters]})

    @api.get("/clusters/<ident>")
    def show_cluster(ident: str) -> Response:
        with state.transaction() as db:
            cluster = db.cluster(ident)
            if cluster is None:
                return magnum_error(404, f"Cluster {ident} could not be found.")
            return jsonify(_cluster_view(config, cluster, detail=True))

    @api.get("/clusters/<ident>/nodegroups")
    def list_nodegroups(ident: str) -> Response:
        role = request.args.get("role")
        with state.transaction() as db:
            cluster = db.cluster(ident)
            if cluster is None:
                return magnum_error(404, f"Cluster {ident} could not be found.")
            groups = [ng for ng in cluster.nodegroups if role is None or ng.role == role]
            return jsonify(
                {"nodegroups": [_nodegroup_view(config, cluster, ng, detail=False) for ng in groups]}
            )

    @api.route("/clusters/<ident>/nodegroups/<ng_ident>", methods=["GET", "PATCH"])
    def nodegroup(ident: str, ng_ident: str) -> Response:
        with state.transaction() as db:
            cluster = db.cluster(ident)
            if cluster is None:
                return magnum_error(404, f"Cluster {ident} could not be found.")
            group = next((ng for ng in cluster.nodegroups if ng_ident in (ng.id, ng.name)), None)
            if group is None:
                return magnum_error(404, f"Nodegroup {ng_ident} could not be found.")
            if request.method == "PATCH":
                return _scale(config, db, cluster, group)
            return jsonify(_nodegroup_view(config, cluster, group, detail=True))

    return [discovery, api]
