"""Nova (compute v2.1): servers with start/stop/resize actions, flavors, and microversion negotiation.

openstacksdk negotiates a microversion from the discovery document and sends it on every
call, so the lab advertises a real range and echoes the chosen version like Nova does.
Power actions follow Nova's rules: starting an ACTIVE server is a 409, not a no-op, because
drorch's action layer, not the cloud, is responsible for idempotency.

A resize runs like Nova's: ``resize`` (202) takes an ACTIVE or SHUTOFF server through status
RESIZE (task_state resize_prep, resize_migrating, resize_migrated, resize_finish) to
VERIFY_RESIZE, where it already has the new flavor; ``confirmResize`` (204) then settles it back
in the status it had (ACTIVE or SHUTOFF) and ``revertResize`` (202) restores the old flavor.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from drorch.lab.openstack_api.config import ApiConfig
from drorch.lab.openstack_api.keystone import CatalogEntry
from drorch.lab.openstack_api.state import Flavor, LabState, Resize, Server, utcnow
from drorch.lab.openstack_api.web import json_body, token_guard

log = logging.getLogger(__name__)

PREFIX = "/compute"
CATALOG = CatalogEntry("compute", "nova", PREFIX + "/v2.1")
MIN_VERSION = (2, 1)
MAX_VERSION = (2, 79)
# Nova names its error bodies after the HTTP status.
_FAULT_NAMES = {400: "badRequest", 404: "itemNotFound", 409: "conflictingRequest"}
_POWER_STATE = {"ACTIVE": 1, "SHUTOFF": 4}
_VM_STATE = {"ACTIVE": "active", "SHUTOFF": "stopped"}
_RESIZE_TASKS = ("resize_prep", "resize_migrating", "resize_migrated", "resize_finish")
_ACTIONS = ("os-start", "os-stop", "resize", "confirmResize", "revertResize")


def _fmt(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def nova_error(code: int, message: str) -> Response:
    """An error in Nova's body format, e.g. ``{"itemNotFound": {"code": 404, "message": ...}}``."""
    response = jsonify({_FAULT_NAMES.get(code, "computeFault"): {"code": code, "message": message}})
    response.status_code = code
    return response


def _version_document(config: ApiConfig) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": _fmt(MAX_VERSION),
        "min_version": _fmt(MIN_VERSION),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": config.url(CATALOG.path + "/")}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
        ],
    }


def _requested_version() -> tuple[int, int] | None:
    """The microversion the client asked for (Nova's default 2.1 when none), or None if unparsable."""
    raw = request.headers.get("X-OpenStack-Nova-API-Version", "")
    for part in request.headers.get("OpenStack-API-Version", "").split(","):
        service, _, value = part.strip().partition(" ")
        if service == "compute":
            raw = value.strip()
    if not raw:
        return MIN_VERSION
    if raw == "latest":
        return MAX_VERSION
    match = re.fullmatch(r"(\d+)\.(\d+)", raw)
    return (int(match[1]), int(match[2])) if match else None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _links(config: ApiConfig, kind: str, ident: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": config.url(f"{CATALOG.path}/{kind}/{ident}")},
        {"rel": "bookmark", "href": config.url(f"{PREFIX}/{kind}/{ident}")},
    ]


def _flavor_view(config: ApiConfig, flavor: Flavor, detail: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": flavor.id,
        "name": flavor.name,
        "links": _links(config, "flavors", flavor.id),
        "description": None,
    }
    if detail:
        view |= {
            "vcpus": flavor.vcpus,
            "ram": flavor.ram,
            "disk": flavor.disk,
            "swap": 0,
            "OS-FLV-EXT-DATA:ephemeral": 0,
            "OS-FLV-DISABLED:disabled": False,
            "os-flavor-access:is_public": True,
            "rxtx_factor": 1.0,
            "extra_specs": {},
        }
    return view


def _server_flavor(config: ApiConfig, state: LabState, server: Server) -> dict[str, Any]:
    """Flavor as embedded in a server: a link before microversion 2.47, a description from 2.47 on."""
    flavor = next(f for f in state.flavors if f.id == server.flavor_id)
    if g.microversion < (2, 47):
        return {"id": flavor.id, "links": _links(config, "flavors", flavor.id)[1:]}
    return {
        "vcpus": flavor.vcpus,
        "ram": flavor.ram,
        "disk": flavor.disk,
        "ephemeral": 0,
        "swap": 0,
        "original_name": flavor.name,
        "extra_specs": {},
    }


def _vm_state(server: Server) -> str:
    """Nova's vm_state: ``resized`` from VERIFY_RESIZE on, else that of the status the server rests in."""
    if server.status in ("VERIFY_RESIZE", "REVERT_RESIZE"):
        return "resized"
    return _VM_STATE[server.resize.source_status if server.resize else server.status]


def _power_state(server: Server) -> int:
    """A resize keeps the guest's power: running if it was ACTIVE, shut down if it was SHUTOFF."""
    return _POWER_STATE[server.resize.source_status if server.resize else server.status]


def _server_view(config: ApiConfig, state: LabState, server: Server) -> dict[str, Any]:
    mac = "fa:16:3e:" + ":".join(server.id.replace("-", "")[-6:][i : i + 2] for i in (0, 2, 4))
    return {
        "id": server.id,
        "name": server.name,
        "status": server.status,
        "tenant_id": config.project_id,
        "user_id": config.user_id,
        "metadata": server.metadata,
        "hostId": hashlib.sha224((config.project_id + server.id).encode()).hexdigest(),
        "image": {"id": server.image_id, "links": _links(config, "images", server.image_id)[1:]},
        "flavor": _server_flavor(config, state, server),
        "created": _iso(server.created),
        "updated": _iso(server.updated),
        "addresses": {
            server.network: [
                {"version": 4, "addr": server.ip, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac}
            ]
        },
        "accessIPv4": "",
        "accessIPv6": "",
        "links": _links(config, "servers", server.id),
        "key_name": "nhn-lab-key",
        "security_groups": [{"name": "default"}],
        "progress": 0,
        "config_drive": "",
        "locked": False,
        "description": None,
        "tags": [],
        "trusted_image_certificates": None,
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": "kr-pub-a",
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:vm_state": _vm_state(server),
        "OS-EXT-STS:power_state": _power_state(server),
        "OS-SRV-USG:launched_at": server.created.strftime("%Y-%m-%dT%H:%M:%S.000000"),
        "OS-SRV-USG:terminated_at": None,
        "os-extended-volumes:volumes_attached": [],
    }


def _listed(state: LabState) -> list[Server]:
    """Servers matching Nova's ``name`` (a regular expression) and ``status`` list filters."""
    name = request.args.get("name")
    status = request.args.get("status", "").upper()
    return [
        s
        for s in state.servers
        if (name is None or re.search(name, s.name)) and (not status or s.status == status)
    ]


def _busy(server: Server, action: str, vm_states: tuple[str, ...]) -> Response | None:
    """Nova's ``check_instance_state``: a 409 unless no task runs and the vm_state is one of ``vm_states``."""
    if server.task_state is not None:
        return nova_error(
            409, f"Cannot '{action}' instance {server.id} while it is in task_state {server.task_state}"
        )
    if _vm_state(server) not in vm_states:
        return nova_error(409, f"Cannot '{action}' instance {server.id} while it is in vm_state {_vm_state(server)}")
    return None


def _power(config: ApiConfig, state: LabState, server: Server, action: str) -> Response:
    """Apply os-start/os-stop with Nova's state checks; the change lands after transition_seconds."""
    wanted_from, target, task = {
        "os-start": ("SHUTOFF", "ACTIVE", "powering-on"),
        "os-stop": ("ACTIVE", "SHUTOFF", "powering-off"),
    }[action]
    refused = _busy(server, action.removeprefix("os-"), (_VM_STATE[wanted_from],))
    if refused is not None:
        return refused
    server.task_state = task
    server.updated = utcnow()

    def finish() -> None:
        server.status, server.task_state, server.updated = target, None, utcnow()
        log.info("server %s is now %s", server.name, target)

    state.schedule(config.transition_seconds, finish)
    return Response(status=202)


def _resize(config: ApiConfig, state: LabState, server: Server, args: Any) -> Response:
    """Start a resize to ``args["flavorRef"]`` (an id or a flavor link); it reaches VERIFY_RESIZE later."""
    ref = args.get("flavorRef") if isinstance(args, dict) else None
    if not isinstance(ref, str | int) or isinstance(ref, bool) or not str(ref):
        return nova_error(
            400, f"Invalid input for field/attribute resize. Value: {args!r}. 'flavorRef' is a required property"
        )
    refused = _busy(server, "resize", ("active", "stopped"))
    if refused is not None:
        return refused
    flavor_id = str(ref).rstrip("/").rsplit("/", 1)[-1]
    flavor = next((f for f in state.flavors if f.id == flavor_id), None)
    if flavor is None:
        return nova_error(400, "Unable to locate requested flavor.")
    if flavor.id == server.flavor_id:
        return nova_error(400, "Resize requires a flavor change.")
    resize = Resize(old_flavor_id=server.flavor_id, new_flavor_id=flavor.id, source_status=server.status)
    server.resize, server.status, server.task_state, server.updated = resize, "RESIZE", _RESIZE_TASKS[0], utcnow()

    def advance(task: str) -> None:
        server.task_state, server.updated = task, utcnow()

    def finish() -> None:
        # Nova gives the instance its new flavor in finish_resize, before the user confirms.
        server.flavor_id, server.status, server.task_state = resize.new_flavor_id, "VERIFY_RESIZE", None
        resize.status, server.updated = "finished", utcnow()
        log.info("server %s is resized to %s, waiting for confirmation", server.name, flavor.name)

    # Every stage is scheduled now, spread over one transition, so polling slower than the stages
    # still sees the resize end on time.
    step = config.transition_seconds / len(_RESIZE_TASKS)
    for i, task in enumerate(_RESIZE_TASKS[1:], start=1):
        state.schedule(step * i, functools.partial(advance, task))
    state.schedule(config.transition_seconds, finish)
    return Response(status=202)


def _end_resize(config: ApiConfig, state: LabState, server: Server, action: str) -> Response:
    """``confirmResize`` (204) keeps the new flavor, ``revertResize`` (202) restores the old one."""
    refused = _busy(server, action, ("resized",))
    if refused is not None:
        return refused
    resize = server.resize
    if resize is None or resize.status != "finished":
        return nova_error(400, "Instance has not been resized.")
    confirming = action == "confirmResize"
    resize.status = "confirming" if confirming else "reverting"
    if not confirming:
        server.status, server.task_state = "REVERT_RESIZE", "resize_reverting"
    server.updated = utcnow()

    def finish() -> None:
        if not confirming:
            server.flavor_id = resize.old_flavor_id
        server.status, server.task_state, server.resize, server.updated = resize.source_status, None, None, utcnow()
        log.info("server %s resize %s, it is %s", server.name, "confirmed" if confirming else "reverted", server.status)

    state.schedule(config.transition_seconds, finish)
    return Response(status=204 if confirming else 202)


def blueprints(config: ApiConfig, state: LabState) -> list[Blueprint]:
    """Nova discovery (public) and the authenticated v2.1 API."""
    discovery = Blueprint("compute_discovery", __name__, url_prefix=PREFIX)
    api = Blueprint("compute", __name__, url_prefix=CATALOG.path)
    api.before_request(token_guard(config, state))

    @discovery.get("/")
    def root() -> Response:
        return jsonify({"versions": [_version_document(config)]})

    @discovery.get("/v2.1/")
    def version() -> Response:
        return jsonify({"version": _version_document(config)})

    @api.before_request
    def negotiate() -> Response | None:
        wanted = _requested_version()
        if wanted is None or not MIN_VERSION <= wanted <= MAX_VERSION:
            return nova_error(
                406,
                "The requested microversion is not supported by the API. "
                f"Minimum is {_fmt(MIN_VERSION)} and maximum is {_fmt(MAX_VERSION)}.",
            )
        g.microversion = wanted
        return None

    @api.after_request
    def announce(response: Response) -> Response:
        if "microversion" in g:
            response.headers["OpenStack-API-Version"] = f"compute {_fmt(g.microversion)}"
            response.headers["X-OpenStack-Nova-API-Version"] = _fmt(g.microversion)
            response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        return response

    @api.get("/servers")
    def list_servers() -> Response:
        with state.transaction() as db:
            servers = [
                {"id": s.id, "name": s.name, "links": _links(config, "servers", s.id)} for s in _listed(db)
            ]
        return jsonify({"servers": servers})

    @api.get("/servers/detail")
    def list_servers_detail() -> Response:
        with state.transaction() as db:
            servers = [_server_view(config, db, s) for s in _listed(db)]
        return jsonify({"servers": servers})

    @api.get("/servers/<server_id>")
    def show_server(server_id: str) -> Response:
        with state.transaction() as db:
            server = db.server(server_id)
            if server is None:
                return nova_error(404, f"Instance {server_id} could not be found.")
            return jsonify({"server": _server_view(config, db, server)})

    @api.post("/servers/<server_id>/action")
    def server_action(server_id: str) -> Response:
        body = json_body()
        actions = [k for k in body if k in _ACTIONS] if isinstance(body, dict) else []
        if len(actions) != 1:
            return nova_error(400, f"The lab supports exactly one of the actions {', '.join(_ACTIONS)}.")
        with state.transaction() as db:
            server = db.server(server_id)
            if server is None:
                return nova_error(404, f"Instance {server_id} could not be found.")
            if actions[0] == "resize":
                return _resize(config, db, server, body["resize"])
            if actions[0] in ("confirmResize", "revertResize"):
                return _end_resize(config, db, server, actions[0])
            return _power(config, db, server, actions[0])

    @api.get("/flavors")
    def list_flavors() -> Response:
        return jsonify({"flavors": [_flavor_view(config, f, detail=False) for f in state.flavors]})

    @api.get("/flavors/detail")
    def list_flavors_detail() -> Response:
        return jsonify({"flavors": [_flavor_view(config, f, detail=True) for f in state.flavors]})

    @api.get("/flavors/<flavor_id>")
    def show_flavor(flavor_id: str) -> Response:
        flavor = next((f for f in state.flavors if f.id == flavor_id), None)
        if flavor is None:
            return nova_error(404, f"Flavor {flavor_id} could not be found.")
        return jsonify({"flavor": _flavor_view(config, flavor, detail=True)})

    return [discovery, api]
