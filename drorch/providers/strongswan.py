"""strongSwan over VICI: the state of each tunnel (CHILD_SA) as the IPsec daemon itself sees it.

AWS reports its side of a site-to-site VPN; the other end is a strongSwan daemon
(on NHN Cloud, a management VM). Its VICI socket tells whether each CHILD_SA is
INSTALLED and whether traffic really flows (byte counters), which AWS telemetry
cannot. One tunnel per CHILD_SA name; each may sit in its own IKE_SA.
"""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vici

from drorch.errors import InvalidInput, OperationFailed
from drorch.providers import retry

SOCKET_TIMEOUT_SECONDS = 5.0
ABSENT = "ABSENT"  # not a strongSwan state: no SA of that name exists right now
# sun_path holds 108 bytes including the terminating NUL
_MAX_UNIX_PATH = 107
# IKE_SA / CHILD_SA states in which the tunnel still carries traffic (during a rekey the old SA keeps working)
_IKE_UP = frozenset({"ESTABLISHED", "REKEYING", "REKEYED"})
_CHILD_UP = frozenset({"INSTALLED", "REKEYING", "UPDATING"})
# when several SAs share a CHILD_SA name (a rekey in progress), report the most useful one
_CHILD_PREFERENCE = ("INSTALLED", "REKEYING", "UPDATING", "REKEYED", "INSTALLING", "CREATED", "ROUTED")
# (IKE_SA name, IKE_SA, CHILD_SA) as list-sas reports them
_Found = tuple[str, Mapping[str, Any], Mapping[str, Any]]


@dataclass(frozen=True)
class ChildTunnel:
    """One CHILD_SA (one tunnel) and the IKE_SA that carries it.

    ``established_seconds`` is how long the CHILD_SA has been installed, ``rekey_seconds``
    how long until it is rekeyed (None when unknown or the tunnel is absent).
    """

    name: str
    ike_sa: str | None
    ike_state: str
    child_state: str
    established_seconds: int | None
    rekey_seconds: int | None
    bytes_in: int
    bytes_out: int
    local_host: str | None
    remote_host: str | None
    up: bool


def tunnels(socket_path: Path, ike_sa: str | None, children: list[str]) -> list[ChildTunnel]:
    """The CHILD_SAs named ``children`` (all of them when empty), in that order.

    ``ike_sa`` limits the search to one IKE_SA (None: every IKE_SA, for VPNs such as
    AWS's whose tunnels each have their own). A requested CHILD_SA that does not
    exist is reported with state ABSENT and ``up=False``, not as an error: a tunnel
    that is down is an answer, an unreachable daemon is not.
    """
    path = _checked_path(socket_path)
    try:
        sas = retry.call(lambda: _list_sas(path, ike_sa), attempts=3, deadline_seconds=3 * SOCKET_TIMEOUT_SECONDS)
    except OSError as exc:  # still unreachable after the retries
        raise OperationFailed(f"{exc} (check that charon runs and owns this socket)") from None
    found = _children_by_name(sas)
    names = children or sorted(found)
    return [_tunnel(name, found.get(name, [])) for name in names]


def _checked_path(socket_path: Path) -> Path:
    """Reject paths that can never work (configuration errors) before talking to the daemon."""
    path = Path(socket_path)
    if not path.is_absolute():
        raise InvalidInput(f"VICI socket {path}: must be an absolute path (e.g. /var/run/charon.vici)")
    if len(str(path).encode()) > _MAX_UNIX_PATH:
        raise InvalidInput(f"VICI socket {path}: longer than the {_MAX_UNIX_PATH} bytes a UNIX socket path may have")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise OperationFailed(
            f"no VICI socket at {path}: is charon running, with the vici plugin loaded "
            "(charon.plugins.vici.socket in strongswan.conf)?"
        ) from None
    except PermissionError:
        raise OperationFailed(f"VICI socket {path}: permission denied (run drorch as root or in its group)") from None
    if not stat.S_ISSOCK(mode):
        raise InvalidInput(f"VICI socket {path}: exists but is not a UNIX socket (check vpn.vici_socket)")
    return path


def _list_sas(path: Path, ike_sa: str | None) -> list[Mapping[str, Any]]:
    """One VICI session: connect with a timeout, run list-sas, always close."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(SOCKET_TIMEOUT_SECONDS)
    try:
        _connect(sock, path)
        filters = {"ike": ike_sa} if ike_sa else None
        try:
            return list(vici.Session(sock).list_sas(filters))
        except (vici.exception.SessionException, vici.exception.DeserializationException) as exc:
            raise OperationFailed(f"VICI list-sas on {path} failed: {exc}") from None
        except TimeoutError:
            raise TimeoutError(f"VICI socket {path}: no answer within {SOCKET_TIMEOUT_SECONDS} s") from None
        except OSError as exc:
            raise ConnectionError(f"VICI socket {path}: connection lost ({exc})") from None
    finally:
        sock.close()


def _connect(sock: socket.socket, path: Path) -> None:
    """Connect, turning every failure into a message that says what to check (transient ones stay retryable)."""
    try:
        sock.connect(str(path))
    except PermissionError:
        raise OperationFailed(f"VICI socket {path}: permission denied (run drorch as root)") from None
    except ConnectionRefusedError:
        raise ConnectionRefusedError(f"VICI socket {path} refuses connections: charon has stopped or crashed") from None
    except TimeoutError:
        raise TimeoutError(f"VICI socket {path}: connect timed out after {SOCKET_TIMEOUT_SECONDS} s") from None
    except OSError as exc:
        raise ConnectionError(f"VICI socket {path}: cannot connect ({exc.strerror or exc})") from None


def _children_by_name(sas: Iterable[Mapping[str, Any]]) -> dict[str, list[_Found]]:
    """CHILD_SA name -> every (IKE_SA name, IKE_SA, CHILD_SA) carrying that name."""
    found: dict[str, list[_Found]] = {}
    for item in sas:
        for ike_name, ike in item.items():
            for child in (ike.get("child-sas") or {}).values():
                name = _text(child.get("name"))
                if name:
                    found.setdefault(name, []).append((str(ike_name), ike, child))
    return found


def _tunnel(name: str, candidates: list[_Found]) -> ChildTunnel:
    if not candidates:
        return ChildTunnel(name, None, ABSENT, ABSENT, None, None, 0, 0, None, None, False)
    ike_name, ike, child = min(candidates, key=lambda entry: _preference(_text(entry[2].get("state"))))
    ike_state, child_state = _text(ike.get("state")), _text(child.get("state"))
    return ChildTunnel(
        name=name,
        ike_sa=ike_name,
        ike_state=ike_state,
        child_state=child_state,
        established_seconds=_int_or_none(child.get("install-time")),
        rekey_seconds=_int_or_none(child.get("rekey-time")),
        bytes_in=_int_or_none(child.get("bytes-in")) or 0,
        bytes_out=_int_or_none(child.get("bytes-out")) or 0,
        local_host=_text(ike.get("local-host")) or None,
        remote_host=_text(ike.get("remote-host")) or None,
        up=ike_state in _IKE_UP and child_state in _CHILD_UP,
    )


def _preference(state: str) -> int:
    return _CHILD_PREFERENCE.index(state) if state in _CHILD_PREFERENCE else len(_CHILD_PREFERENCE)


def _text(value: Any) -> str:
    """VICI values arrive as bytes."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(_text(value))
    except ValueError:
        return None
