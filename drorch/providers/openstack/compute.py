"""Nova servers: find a site's servers by name, power them on or off and resize them, idempotently.

Nova refuses to start an ACTIVE server (409) and to act on a server while a power
change is in flight, so idempotency lives here: read the state, act only when
needed, then wait until the target state is reached or the bound runs out.

A resize is Nova's two-step one: ``resize`` takes the server through RESIZE to
VERIFY_RESIZE (already on the new flavor), and ``confirmResize`` settles it back in
the status it had, ACTIVE or SHUTOFF.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import openstack.exceptions
from openstack.connection import Connection

from drorch.errors import OperationFailed
from drorch.providers import retry

POLL_SECONDS = 0.5
# (verb, status the action starts from) per target status.
_ACTIONS = {"ACTIVE": ("start", "SHUTOFF"), "SHUTOFF": ("stop", "ACTIVE")}
# Statuses a server rests in that a resize can start from and comes back to.
_RESTING = ("ACTIVE", "SHUTOFF")
# Statuses a resize passes through on its own (VERIFY_RESIZE is handled apart: it waits for us).
_RESIZING = ("RESIZE", "REVERT_RESIZE")


@dataclass(frozen=True)
class Flavor:
    """A Nova flavor, resolved from a name or an id."""

    id: str
    name: str


@dataclass(frozen=True)
class ServerStatus:
    """A server as Nova reports it; ``task_state`` is set while a change is in flight.

    ``flavor`` is the flavor's name (Nova embeds it from microversion 2.47 on, which the SDK
    negotiates), ``flavor_id`` its id when Nova gives one instead (older microversions).
    """

    name: str
    id: str
    status: str
    power_state: int | None
    task_state: str | None = None
    flavor: str | None = None
    flavor_id: str | None = None

    @property
    def settled(self) -> bool:
        return self.task_state is None


def _status(server: Any) -> ServerStatus:
    power = server.power_state
    # From microversion 2.47 on Nova embeds the flavor's original_name and no id; before, only its id.
    # (The SDK's Flavor.id falls back to the name, so it cannot tell which one it holds.)
    name = getattr(server.flavor, "original_name", None)
    ident = None if name or server.flavor is None else server.flavor.id
    return ServerStatus(
        name=str(server.name),
        id=str(server.id),
        status=str(server.status),
        power_state=int(power) if power is not None else None,
        task_state=server.task_state,
        flavor=str(name) if name else None,
        flavor_id=str(ident) if ident else None,
    )


def servers(conn: Connection, names: list[str]) -> list[ServerStatus]:
    """The named servers, in the order given; OperationFailed names any missing or ambiguous one.

    One listing serves every name, and names are matched exactly (Nova's ``name``
    filter is a regular expression, so ``app-1`` would also match ``app-10``).
    """
    listing = retry.call(lambda: [_status(s) for s in conn.compute.servers()])
    by_name: dict[str, list[ServerStatus]] = {}
    for server in listing:
        by_name.setdefault(server.name, []).append(server)
    missing = [name for name in names if name not in by_name]
    if missing:
        raise OperationFailed(f"OpenStack server(s) not found in cloud {conn.config.name}: {', '.join(missing)}")
    for name in names:
        if len(by_name[name]) > 1:
            ids = ", ".join(s.id for s in by_name[name])
            raise OperationFailed(f"OpenStack server name {name} is ambiguous: servers {ids}")
    return [by_name[name][0] for name in names]


def start(conn: Connection, name: str, timeout: float = 300.0) -> bool:
    """Power ``name`` on and wait until it is ACTIVE; False (nothing done) if it already was."""
    return _power(conn, name, "ACTIVE", timeout)


def stop(conn: Connection, name: str, timeout: float = 300.0) -> bool:
    """Power ``name`` off and wait until it is SHUTOFF; False (nothing done) if it already was."""
    return _power(conn, name, "SHUTOFF", timeout)


def _power(conn: Connection, name: str, target: str, timeout: float) -> bool:
    verb, source = _ACTIONS[target]
    current = servers(conn, [name])[0]
    if current.status == target and current.settled:
        return False
    deadline = time.monotonic() + timeout
    requested = False
    while not (current.status == target and current.settled):
        if current.settled:
            if current.status != source or requested:
                # After our request Nova went back to no task without reaching the target: the action failed.
                raise OperationFailed(f"cannot {verb} OpenStack server {name}: it is {current.status}")
            _request(conn, current.id, verb)
            requested = True
        elif time.monotonic() > deadline:
            raise OperationFailed(
                f"OpenStack server {name} is still {current.status} ({current.task_state}) after {timeout:.0f} s"
            )
        else:
            time.sleep(POLL_SECONDS)
        current = _get(conn, current.id)
    return True


def _request(conn: Connection, server_id: str, verb: str) -> None:
    """Ask Nova for the power change; a 409 means a change is already under way, which the wait sees."""
    action = conn.compute.start_server if verb == "start" else conn.compute.stop_server
    with contextlib.suppress(openstack.exceptions.ConflictException):
        retry.call(lambda: action(server_id))


def _get(conn: Connection, server_id: str, doing: str = "changing its power state") -> ServerStatus:
    try:
        return retry.call(lambda: _status(conn.compute.get_server(server_id)))
    except openstack.exceptions.NotFoundException:
        raise OperationFailed(f"OpenStack server {server_id} disappeared while {doing}") from None


# ---------------------------------------------------------------------------------------- resize


def find_flavor(conn: Connection, name_or_id: str) -> Flavor:
    """The flavor named (or with id) ``name_or_id``; OperationFailed names the flavors that exist if none is."""
    try:
        found = retry.call(lambda: conn.compute.find_flavor(name_or_id, ignore_missing=True))
    except openstack.exceptions.DuplicateResource:
        raise OperationFailed(f"OpenStack flavor name {name_or_id} is ambiguous in cloud {conn.config.name}") from None
    if found is None:
        known = sorted(str(f.name) for f in retry.call(lambda: list(conn.compute.flavors())))
        raise OperationFailed(
            f"OpenStack flavor {name_or_id} not found in cloud {conn.config.name}; it has {', '.join(known) or 'none'}"
        )
    return Flavor(id=str(found.id), name=str(found.name))


def has_flavor(server: ServerStatus, flavor: Flavor) -> bool:
    """Whether ``server`` runs on ``flavor`` (by id when Nova gives one, else by name, which Nova keeps unique)."""
    if server.flavor_id is not None:
        return server.flavor_id == flavor.id
    return server.flavor == flavor.name


def needs_resize(server: ServerStatus, flavor: Flavor) -> bool:
    """False when ``server`` rests (ACTIVE or SHUTOFF, no task) on ``flavor``: a resize would do nothing."""
    return not (server.status in _RESTING and server.settled and has_flavor(server, flavor))


def resize(conn: Connection, name: str, flavor: str, timeout: float = 600.0) -> bool:
    """Resize ``name`` to ``flavor`` (a name or an id), confirm it, and wait until the server rests again.

    False (nothing done) if it already rests on that flavor. The server comes back in the
    status it had: a SHUTOFF server stays off. A resize to ``flavor`` left waiting for
    confirmation (VERIFY_RESIZE) by an interrupted run is confirmed; one to another flavor
    is refused, as is a server in ERROR or in a status Nova cannot resize from.
    """
    target = find_flavor(conn, flavor)
    current = servers(conn, [name])[0]
    if not needs_resize(current, target):
        return False
    # Where the server must come back to; unknown when a resize was already under way.
    settle_to = current.status if current.status in _RESTING else None
    deadline = time.monotonic() + timeout
    doing = f"resizing it to {target.name}"
    requested = confirmed = False
    while True:
        if current.status == "ERROR":
            fault = _fault(conn, current)
            raise OperationFailed(f"OpenStack server {name} went into ERROR resizing to {target.name}{fault}")
        if current.status in _RESTING and current.settled:
            if has_flavor(current, target):
                if settle_to is not None and current.status != settle_to:
                    raise OperationFailed(
                        f"OpenStack server {name} was {settle_to} before the resize to {target.name}, "
                        f"is {current.status} after it"
                    )
                return True
            if requested:
                # Nova went back to rest on the old flavor: the resize was reverted or rolled back.
                raise OperationFailed(
                    f"resize of OpenStack server {name} to {target.name} did not take: "
                    f"it is {current.status} on flavor {current.flavor or current.flavor_id}"
                )
            requested = _request_resize(conn, current, target)
        elif current.status == "VERIFY_RESIZE" and current.settled:
            if not has_flavor(current, target):
                raise OperationFailed(
                    f"OpenStack server {name} waits to confirm a resize to {current.flavor or current.flavor_id}, "
                    f"not {target.name}: confirm or revert it first"
                )
            if not confirmed:
                _confirm(conn, current.id)
                confirmed = True
        elif current.settled and current.status not in _RESIZING:
            raise OperationFailed(f"cannot resize OpenStack server {name}: it is {current.status}")
        if time.monotonic() > deadline:
            last = _get(conn, current.id, doing)  # what became of the request just sent, if any
            raise OperationFailed(
                f"OpenStack server {name} is still {last.status} ({last.task_state}) "
                f"after {timeout:.0f} s resizing to {target.name}"
            )
        time.sleep(POLL_SECONDS)
        current = _get(conn, current.id, doing)


def _request_resize(conn: Connection, server: ServerStatus, flavor: Flavor) -> bool:
    """Ask Nova for the resize: True if accepted, False on a 409 (busy: the wait sees it free up)."""
    try:
        retry.call(lambda: conn.compute.resize_server(server.id, flavor.id))
    except openstack.exceptions.ConflictException:
        return False
    except openstack.exceptions.BadRequestException as exc:
        raise OperationFailed(
            f"Nova refused to resize OpenStack server {server.name} to {flavor.name}: {exc.details or exc}"
        ) from None
    return True


def _confirm(conn: Connection, server_id: str) -> None:
    """Confirm the resize. A 409 or a 400 ("Instance has not been resized.") means a confirm or revert is
    already under way; the wait sees where it ends."""
    with contextlib.suppress(openstack.exceptions.ConflictException, openstack.exceptions.BadRequestException):
        retry.call(lambda: conn.compute.confirm_server_resize(server_id))


def _fault(conn: Connection, server: ServerStatus) -> str:
    """Nova's fault message for a server in ERROR, as ": message", or "" when there is none."""
    try:
        fault = retry.call(lambda: conn.compute.get_server(server.id).fault)
    except openstack.exceptions.SDKException:
        return ""
    message = fault.get("message") if isinstance(fault, dict) else None
    return f": {message}" if message else ""
