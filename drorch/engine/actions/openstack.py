"""OpenStack (NHN Cloud) actions: power a site's application servers on or off, resize one, wait for its load
balancer.

A warm NHN standby keeps some servers SHUTOFF to save cost; failover starts them and
failback stops them again. Nova refuses to start a running server, so each server is
read first and only the ones not yet in the target state are changed (the provider
waits until each one settles). A resize is confirmed by the action and leaves the server
in the power state it had.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from drorch.config.schema import OpenStackCompute
from drorch.engine.actions.sizing import compute_of
from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import InvalidInput, OperationFailed
from drorch.providers.openstack import compute, loadbalancer


class ServersParams(Params):
    site: str
    servers: list[str] | None = Field(default=None, min_length=1)  # default: the site's configured servers
    timeout: float = Field(default=300.0, gt=0, le=3600)


def _names(ctx: ActionContext, p: ServersParams) -> list[str]:
    return p.servers or compute_of(ctx.estate, p.site, OpenStackCompute).servers


def _plan(ctx: ActionContext, p: ServersParams, target: str) -> list[str]:
    found = compute.servers(ctx.estate.openstack(p.site), _names(ctx, p))
    return [f"{p.site} server {s.name}: {s.status} -> {target}" for s in found
            if not (s.status == target and s.settled)]


def _power(ctx: ActionContext, p: ServersParams, target: str) -> dict[str, Any]:
    """Bring every named server to ``target`` within ``p.timeout`` in all, then read them back to verify."""
    conn = ctx.estate.openstack(p.site)
    names = _names(ctx, p)
    change = compute.start if target == "ACTIVE" else compute.stop
    deadline = time.monotonic() + p.timeout
    changed = [name for name in names if change(conn, name, max(1.0, deadline - time.monotonic()))]
    now = {s.name: s.status for s in compute.servers(conn, names)}
    wrong = {name: status for name, status in now.items() if status != target}
    if wrong:
        raise OperationFailed(f"{p.site} servers not {target} after the change: {wrong}")
    return {"servers": now, "changed": changed}


def plan_start(ctx: ActionContext, p: ServersParams) -> list[str]:
    return _plan(ctx, p, "ACTIVE")


def plan_stop(ctx: ActionContext, p: ServersParams) -> list[str]:
    return _plan(ctx, p, "SHUTOFF")


@action("openstack.server_start", ServersParams, plan=plan_start)
def server_start_action(ctx: ActionContext, p: ServersParams) -> dict[str, Any]:
    """Power on the site's OpenStack servers (default: those in its config) and wait until each is ACTIVE."""
    return _power(ctx, p, "ACTIVE")


@action("openstack.server_stop", ServersParams, plan=plan_stop)
def server_stop_action(ctx: ActionContext, p: ServersParams) -> dict[str, Any]:
    """Power off the site's OpenStack servers (default: those in its config) and wait until each is SHUTOFF."""
    return _power(ctx, p, "SHUTOFF")


class ResizeParams(Params):
    site: str
    server: str = Field(min_length=1)
    flavor: str = Field(min_length=1)  # a flavor name or id
    timeout: float = Field(default=600.0, gt=0, le=3600)


def _flavor(server: compute.ServerStatus) -> str | None:
    return server.flavor or server.flavor_id


def plan_resize(ctx: ActionContext, p: ResizeParams) -> list[str]:
    conn = ctx.estate.openstack(p.site)
    target = compute.find_flavor(conn, p.flavor)
    found = compute.servers(conn, [p.server])[0]
    if not compute.needs_resize(found, target):
        return []
    return [f"{p.site} server {found.name}: flavor {_flavor(found)} -> {target.name}"]


@action("openstack.server_resize", ResizeParams, plan=plan_resize)
def server_resize_action(ctx: ActionContext, p: ResizeParams) -> dict[str, Any]:
    """Resize one OpenStack server of the site to a flavor (name or id), confirm the resize and wait until the
    server is back in the status it had (a SHUTOFF server stays off)."""
    conn = ctx.estate.openstack(p.site)
    target = compute.find_flavor(conn, p.flavor)
    before = compute.servers(conn, [p.server])[0]
    changed = compute.resize(conn, p.server, target.id, p.timeout)
    after = compute.servers(conn, [p.server])[0]
    if compute.needs_resize(after, target):
        raise OperationFailed(
            f"{p.site} server {p.server} is {after.status} on flavor {_flavor(after)} after the resize to {target.name}"
        )
    return {"server": p.server, "flavor": target.name, "previous": _flavor(before), "status": after.status,
            "changed": changed}


class LoadBalancerParams(Params):
    site: str
    name: str | None = None  # default: the site's configured load balancer
    timeout: float = Field(default=300.0, gt=0, le=3600)


@action("openstack.wait_load_balancer", LoadBalancerParams, mutating=False)
def wait_load_balancer_action(ctx: ActionContext, p: LoadBalancerParams) -> dict[str, Any]:
    """Wait until the site's LBaaS v2 load balancer is ACTIVE and serving (ONLINE, or DEGRADED with a healthy
    member); fail at once when its provisioning is in ERROR."""
    name = p.name or compute_of(ctx.estate, p.site, OpenStackCompute).load_balancer
    if name is None:
        raise InvalidInput(f"sites.{p.site}.compute.load_balancer: no load balancer configured; set it or pass name")
    found = loadbalancer.wait_online(ctx.estate.openstack(p.site), name, p.timeout)
    return {"load_balancer": name, "operating_status": found.operating_status, "members": dict(found.members)}
