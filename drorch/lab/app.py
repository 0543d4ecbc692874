"""The lab's demo application, one per site: the thing clients really use.

``GET /healthz`` answers 200 only when the site's database answers (the body says
whether it is writable); ``POST /orders`` writes an order to the site's database.
Health checks, the resolver and the load generator all talk to this, so outages
the lab measures are ones a client would have seen.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pymysql
from flask import Flask, request
from werkzeug.serving import make_server

READ_ONLY_ERRNO = 1290


def _connect(args: argparse.Namespace, password: str) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=args.db_host, port=args.db_port, user=args.db_user, password=password, database="shop",
        connect_timeout=1, read_timeout=3, write_timeout=3, autocommit=True, ssl_disabled=True,
    )


def make_app(args: argparse.Namespace, password: str) -> Flask:
    app = Flask(f"drorch-lab-app-{args.site}")

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, Any], int]:
        try:
            conn = _connect(args, password)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT @@GLOBAL.read_only")
                    row = cur.fetchone()
            finally:
                conn.close()
        except pymysql.MySQLError as exc:
            return {"site": args.site, "database": "unreachable", "error": str(exc.args[:1])}, 503
        read_only = bool(row and int(row[0]))
        return {"site": args.site, "database": "up", "writable": not read_only}, 200

    @app.post("/orders")
    def create_order() -> tuple[dict[str, Any], int]:
        body = request.get_json(silent=True) or {}
        client_ref = str(body.get("client_ref", ""))[:64]
        if not client_ref:
            return {"error": "client_ref is required"}, 400
        try:
            conn = _connect(args, password)
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "INSERT INTO orders (client_ref, site, amount) VALUES (%s, %s, %s)",
                        (client_ref, args.site, int(body.get("amount", 1))),
                    )
                    order_id = cur.lastrowid
            finally:
                conn.close()
        except pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args else 0
            reason = "read-only" if code == READ_ONLY_ERRNO else "database error"
            return {"site": args.site, "error": reason, "code": code}, 503
        return {"id": order_id, "site": args.site, "client_ref": client_ref}, 201

    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m drorch.lab.app")
    parser.add_argument("--site", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db-host", required=True)
    parser.add_argument("--db-port", type=int, required=True)
    parser.add_argument("--db-user", default="app")
    parser.add_argument("--db-password-file", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    password = args.db_password_file.read_text().strip()
    server = make_server(args.host, args.port, make_app(args, password), threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"demo app for {args.site} on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
