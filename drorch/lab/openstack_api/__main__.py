"""Run the lab OpenStack API until SIGTERM or SIGINT.

Example::

    python -m drorch.lab.openstack_api --host 127.0.0.1 --port 8774 \\
        --user lab --password-file secret.txt --project nhn-lab --region KR1

Requests are logged to stderr (method, path, status); bodies and headers never are, so
passwords and tokens stay out of the log.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from werkzeug.serving import WSGIRequestHandler, make_server

from drorch.lab.openstack_api.app import make_app
from drorch.lab.openstack_api.config import ApiConfig
from drorch.lab.openstack_api.seed import load_seed

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("drorch.lab.openstack_api")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m drorch.lab.openstack_api", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port (logged at start-up)")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", type=Path, required=True, help="file holding the password")
    parser.add_argument("--project", required=True, help="project (tenant) name")
    parser.add_argument("--project-id", help="project (tenant) id; default derived from the name")
    parser.add_argument("--region", default="KR1")
    parser.add_argument("--public-url", help="base URL clients use; default http://HOST:PORT")
    parser.add_argument("--seed", type=Path, help="JSON file replacing the default seed (same shape)")
    parser.add_argument(
        "--transition-seconds",
        type=float,
        default=0.0,
        help="delay before server power changes and node-group scaling complete (default 0)",
    )
    return parser.parse_args(argv)


class _RequestLog(WSGIRequestHandler):
    """Logs one plain line per request (werkzeug's default adds ANSI colours meant for terminals)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.info('%s "%s" %s', self.address_string(), self.requestline, code)


def _starting(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Placeholder app between binding and the real app being ready; nothing is served yet."""
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


def main(argv: list[str] | None = None) -> int:
    """Serve until a termination signal arrives; return the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        state = load_seed(json.loads(args.seed.read_text()) if args.seed else None)
        password = args.password_file.read_text().strip()
    except (OSError, ValueError) as exc:
        log.error("cannot load seed or password file: %s", exc)
        return 2
    # Bind before building the app so that --port 0 works: the catalog needs the real port.
    server = make_server(args.host, args.port, app=_starting, threaded=True, request_handler=_RequestLog)
    host = f"[{args.host}]" if ":" in args.host else args.host
    config = ApiConfig.create(
        user=args.user,
        password=password,
        project_name=args.project,
        project_id=args.project_id,
        region=args.region,
        base_url=args.public_url or f"http://{host}:{server.server_port}",
        transition_seconds=args.transition_seconds,
    )
    server.app = make_app(config, state)

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = threading.Thread(target=server.serve_forever, name="openstack-api", daemon=True)
    worker.start()
    log.info(
        "lab OpenStack API for project %s (%s) on %s", config.project_name, config.project_id, config.base_url
    )
    stop.wait()
    server.shutdown()
    server.server_close()
    worker.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
