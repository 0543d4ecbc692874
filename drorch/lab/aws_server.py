"""Lab AWS endpoint: moto in server mode, seeded with the estate, plus a chaos hook.

Run as ``python -m drorch.lab.aws_server --host H --port P --seed SEED.json
--ready-file READY.json [--control-port C]``.

moto runs in *this* process (``ThreadedMotoServer``) rather than as ``moto_server``
because two things need its in-process backend objects: VPN tunnel telemetry
(``VgwTelemetry``), which no AWS API can set, and flipping that telemetry at run
time for "vpn-down" chaos. ``ThreadedMotoServer`` builds its WSGI app inside its
own thread and offers no hook for extra routes, so the chaos hook is a second,
tiny HTTP listener (``--control-port``, default 0 = any free port; the bound
address is written to READY.json as ``control_endpoint``).

Control interface: ``POST /_drorch/vpn-tunnel`` with JSON
``{"vpn_connection_id": "vpn-...", "outside_ip": "198.51.100.10", "status": "DOWN",
"status_message": "optional"}`` answers 200 with the tunnel's new telemetry,
400 for a malformed request, 404 for an unknown connection or tunnel.

READY.json is written (temp file + rename) only after seeding succeeded, and is
removed again on shutdown so that it never advertises a dead server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Literal, cast

from moto.ec2.models import ec2_backends
from moto.server import ThreadedMotoServer

from drorch.lab import fis
from drorch.lab.aws_seed import (
    NHN_CIDR,
    TUNNEL_OUTSIDE_IPS,
    LabClients,
    LabSeed,
    ReadyInfo,
    SeededEstate,
    SeedError,
    load_seed,
    seed_estate,
)

TunnelStatus = Literal["UP", "DOWN"]

CONTROL_PATH = "/_drorch/vpn-tunnel"
# Bound on the moto thread binding its socket; a port already in use never binds.
START_TIMEOUT_S = 5.0
_MAX_CONTROL_BODY = 4096


def _log(message: str) -> None:
    print(f"aws_server: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- VPN telemetry


@dataclass(frozen=True)
class TunnelState:
    """What AWS reports per tunnel in ``VgwTelemetry``."""

    outside_ip: str
    status: TunnelStatus
    status_message: str
    accepted_route_count: int
    last_status_change: datetime

    def telemetry(self) -> dict[str, Any]:
        """The dict moto's serializer renders as one ``VgwTelemetry`` item."""
        return {
            "OutsideIpAddress": self.outside_ip,
            "Status": self.status,
            "StatusMessage": self.status_message,
            "AcceptedRouteCount": self.accepted_route_count,
            "LastStatusChange": self.last_status_change,
        }


class TunnelBoard:
    """Owns the telemetry of the lab's VPN connections inside moto's EC2 backend.

    moto's ``VPNConnection`` has no telemetry of its own, but its response
    serializer looks up each shape member on the model object by snake_case
    name, so setting ``vgw_telemetry`` (and ``routes``/``options``) on the object
    makes ``DescribeVpnConnections`` return them. Writes replace the list whole,
    under a lock, so a concurrent describe sees either the old or the new list.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self._account_id = account_id
        self._region = region
        self._lock = threading.Lock()
        self._tunnels: dict[str, dict[str, TunnelState]] = {}

    def _connection(self, vpn_connection_id: str) -> Any:
        # Any: the attributes set below are not declared on moto's VPNConnection.
        connection: Any = ec2_backends[self._account_id][self._region].vpn_connections[vpn_connection_id]
        return connection

    def install(self, vpn_connection_id: str, outside_ips: tuple[str, ...], static_cidr: str) -> None:
        """Give a fresh connection its static route, tunnel options and UP tunnels."""
        connection = self._connection(vpn_connection_id)
        connection.routes = [{"DestinationCidrBlock": static_cidr, "Source": "Static", "State": "available"}]
        connection.options = {
            "StaticRoutesOnly": True,
            "TunnelOptions": [{"OutsideIpAddress": ip} for ip in outside_ips],
        }
        now = datetime.now(UTC)
        states = {ip: TunnelState(ip, "UP", "", 1, now) for ip in outside_ips}
        with self._lock:
            self._tunnels[vpn_connection_id] = states
            connection.vgw_telemetry = [state.telemetry() for state in states.values()]

    def set_status(self, vpn_connection_id: str, outside_ip: str, status: TunnelStatus, message: str) -> TunnelState:
        """Flip one tunnel; KeyError if the connection or tunnel is unknown."""
        with self._lock:
            states = self._tunnels[vpn_connection_id]
            old = states[outside_ip]
            changed = old.last_status_change if old.status == status else datetime.now(UTC)
            routes = 1 if status == "UP" else 0
            new = TunnelState(outside_ip, status, message, routes, changed)
            states[outside_ip] = new
            self._connection(vpn_connection_id).vgw_telemetry = [s.telemetry() for s in states.values()]
        _log(f"vpn {vpn_connection_id} tunnel {outside_ip} -> {status}")
        return new


# ---------------------------------------------------------------- control hook


class _ControlHandler(BaseHTTPRequestHandler):
    """Serves ``POST /_drorch/vpn-tunnel``; see the module docstring."""

    board: TunnelBoard  # set on the subclass made by ``start_control``

    def do_POST(self) -> None:
        if self.path != CONTROL_PATH:
            self._reply(404, {"error": f"unknown path {self.path}"})
            return
        try:
            vpn_id, outside_ip, status, message = _parse_tunnel_request(self._body())
        except ValueError as exc:
            self._reply(400, {"error": str(exc)})
            return
        try:
            state = self.board.set_status(vpn_id, outside_ip, status, message)
        except KeyError:
            self._reply(404, {"error": f"no tunnel {outside_ip} on {vpn_id}"})
            return
        telemetry = state.telemetry()
        telemetry["LastStatusChange"] = state.last_status_change.isoformat()
        self._reply(200, telemetry)

    def _body(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= _MAX_CONTROL_BODY:
            raise ValueError(f"body must be 1..{_MAX_CONTROL_BODY} bytes of JSON")
        try:
            return json.loads(self.rfile.read(length))
        except json.JSONDecodeError as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc

    def _reply(self, code: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request access logs; state changes are logged by TunnelBoard."""


def _parse_tunnel_request(doc: object) -> tuple[str, str, TunnelStatus, str]:
    if not isinstance(doc, dict):
        raise ValueError("body must be a JSON object")
    vpn_id, outside_ip = doc.get("vpn_connection_id"), doc.get("outside_ip")
    status, message = doc.get("status"), doc.get("status_message")
    if not isinstance(vpn_id, str) or not isinstance(outside_ip, str):
        raise ValueError("vpn_connection_id and outside_ip must be strings")
    if status not in ("UP", "DOWN"):
        raise ValueError("status must be UP or DOWN")
    if message is None:
        message = "" if status == "UP" else "lab: tunnel forced down"
    if not isinstance(message, str):
        raise ValueError("status_message must be a string")
    return vpn_id, outside_ip, cast(TunnelStatus, status), message


def start_control(host: str, port: int, board: TunnelBoard) -> ThreadingHTTPServer:
    """Start the control listener on a daemon thread; port 0 picks a free one."""
    handler = type("ControlHandler", (_ControlHandler,), {"board": board})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="drorch-control", daemon=True).start()
    return server


# ---------------------------------------------------------------- process


def serialise_dynamodb_writes() -> None:
    """Make moto's DynamoDB writes atomic, as DynamoDB's are.

    DynamoDB evaluates a condition expression and applies the write as one atomic
    step per item; conditional writes are what drorch's lease and replicator rely
    on. moto's threaded server evaluates them without any lock, so two racing
    conditional writes can both succeed. One lock around every write call of the
    backend restores the real service's guarantee (reads are left concurrent).
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    for name in ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


def start_moto(host: str, port: int) -> ThreadedMotoServer:
    """Start moto, failing instead of hanging if it cannot bind.

    ``ThreadedMotoServer.start`` waits forever when binding fails in its thread
    (the OSError is printed by the thread), so it is started from a helper
    thread and joined with a bound.
    """
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    serialise_dynamodb_writes()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    starter = threading.Thread(target=server.start, name="moto-start", daemon=True)
    starter.start()
    starter.join(START_TIMEOUT_S)
    if starter.is_alive():
        raise RuntimeError(f"moto did not start listening on {host}:{port} (port in use?)")
    return server


def write_ready(path: Path, info: ReadyInfo) -> None:
    """Write READY.json atomically so a watcher never reads half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def build_ready(endpoint: str, control_endpoint: str, seed: LabSeed, estate: SeededEstate) -> ReadyInfo:
    """Combine the seeded ids with where to reach the servers."""
    return {
        "endpoint": endpoint,
        "control_endpoint": control_endpoint,
        "account_id": seed.account_id,
        "zone_id": estate.zone_id,
        "record": seed.record,
        "health_checks": estate.health_checks,
        "vpn_region": seed.primary_region,
        "vpn_connection_id": estate.vpn_connection_id,
        "tunnels": list(TUNNEL_OUTSIDE_IPS),
        "eks": estate.eks,
        "ecs": estate.ecs,
        "dynamodb": estate.dynamodb,
        "fis_templates": estate.fis_templates,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The CLI; port 0 lets the OS choose, and READY.json reports what was bound."""
    parser = argparse.ArgumentParser(prog="python -m drorch.lab.aws_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address for moto and the control hook")
    parser.add_argument("--port", type=int, required=True, help="moto port (0 = any free port)")
    parser.add_argument("--seed", type=Path, required=True, help="SEED.json describing the estate")
    parser.add_argument("--ready-file", type=Path, required=True, help="where to write READY.json")
    parser.add_argument("--control-port", type=int, default=0, help="control hook port (0 = any free port)")
    parser.add_argument("--lab-dir", type=Path, default=None,
                        help="the lab whose processes FIS experiments of its templates act on")
    return parser.parse_args(argv)


def _install_stop_handlers() -> threading.Event:
    """SIGTERM/SIGINT only set an event; shutdown runs on the main thread afterwards."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def serve(args: argparse.Namespace, seed: LabSeed, stop: threading.Event) -> int:
    """Start, seed, announce readiness, wait for a stop signal, shut down."""
    started = time.monotonic()
    if args.lab_dir is not None:
        fis.install(args.lab_dir)
    moto = start_moto(args.host, args.port)
    control: ThreadingHTTPServer | None = None
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        estate = seed_estate(LabClients(endpoint), seed)
        board = TunnelBoard(seed.account_id, seed.primary_region)
        board.install(estate.vpn_connection_id, TUNNEL_OUTSIDE_IPS, NHN_CIDR)
        control = start_control(args.host, args.control_port, board)
        control_endpoint = f"http://{args.host}:{control.server_address[1]}"
        write_ready(args.ready_file, build_ready(endpoint, control_endpoint, seed, estate))
        _log(f"ready in {time.monotonic() - started:.2f}s: moto {endpoint}, control {control_endpoint}")
        stop.wait()
        _log("stopping")
    finally:
        args.ready_file.unlink(missing_ok=True)
        if control is not None:
            control.shutdown()
            control.server_close()
        moto.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Exit 0 after a signal-driven shutdown, 1 if startup or seeding fails, 2 on bad input."""
    args = parse_args(argv)
    stop = _install_stop_handlers()
    args.ready_file.unlink(missing_ok=True)
    try:
        seed = load_seed(args.seed)
    except SeedError as exc:
        _log(f"bad seed: {exc}")
        return 2
    # Every request lands in the seed's account, whatever credentials the client uses.
    os.environ["MOTO_ACCOUNT_ID"] = seed.account_id
    try:
        return serve(args, seed, stop)
    except Exception as exc:
        _log(f"failed: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
