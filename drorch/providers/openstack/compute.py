"""Nova servers: find a site's servers by name and power them on or off, idempotently.

Nova refuses to start an ACTIVE server (409) and to act on a server while a power
change is in flight, so idempotency lives here: read the state, act only when
needed, then wait until the target state is reached or the bound runs out.
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


@dataclass(frozen=True)
class ServerStatus:
    """A server as Nova reports it; ``task_state`` is set while a power change is in flight."""

    name: str
    id: str
    status: str
    power_state: int | None
    task_state: str | None = None

    @property
    def settled(self) -> bool:
        return self.task_state is None


def _status(server: Any) -> ServerStatus:
    power = server.power_state
    return ServerStatus(
        name=str(server.name),
        id=str(server.id),
        status=str(server.status),
        power_state=int(power) if power is not None else None,
        task_state=server.task_state,
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


def _get(conn: Connection, server_id: str) -> ServerStatus:
    try:
        return retry.call(lambda: _status(conn.compute.get_server(server_id)))
    except openstack.exceptions.NotFoundException:
        raise OperationFailed(f"OpenStack server {server_id} disappeared while changing its power state") from None
