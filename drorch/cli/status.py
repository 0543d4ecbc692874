"""``drorch status`` and ``drorch serve``."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import typer

from drorch.cli.output import ConfigOption, Output, OutputOption, emit_json, handle_errors, info


def _load(config: Path | None) -> Any:
    from drorch.config import find_config_path, load_config

    return load_config(find_config_path(config))


def _mark(ok: bool | None) -> str:
    return {True: "[green]ok[/]", False: "[red]FAIL[/]", None: "-"}[ok]


def _table(doc: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"{doc['service']}: primary {doc['primary'] or '[red]NONE or SPLIT[/]'}, "
                        f"DNS serves {doc['dns'].get('primary', '?')}")
    for column in ("site", "role", "health", "database", "replication", "lag s", "capacity", "vpn", "dynamodb",
                   "ready"):
        table.add_column(column)
    for site, data in doc["sites"].items():
        probes = data["probes"]
        db = probes.get("database", {})
        detail = db.get("detail", {})
        if not db.get("ok"):
            role, replication = "[red]unreachable[/]", "-"
        elif detail.get("writable"):
            semi = "semi-sync ON" if detail.get("semi_sync_source_active") else "[yellow]semi-sync OFF[/]"
            role, replication = "[bold]primary[/]", semi
        else:
            threads = "running" if detail.get("io_running") and detail.get("sql_running") else "[red]STOPPED[/]"
            role, replication = "replica", f"{threads} from {detail.get('source', '?')}"
        lag = "-" if db.get("value") is None or detail.get("writable") else f"{db['value']:.3f}"
        cap = probes.get("compute", {}).get("value")
        ready = data["readiness"]
        ready_text = "-" if ready is None else ("[green]ready[/]" if ready["ready"] else
                                                "[red]no[/]: " + "; ".join(ready["reasons"]))
        table.add_row(site, data["configured_role"], _mark(data["healthy"]), role, replication, lag,
                      "-" if cap is None else f"{cap:g}", _mark(probes.get("vpn", {}).get("ok")),
                      _mark(probes.get("dynamodb", {}).get("ok")), ready_text)
    return table


@handle_errors
def status_command(
    config: Path | None = ConfigOption,
    watch: float = typer.Option(0.0, "--watch", "-w", min=0.0, help="refresh every N seconds (0: once)"),
    fresh: bool = typer.Option(False, "--fresh", help="probe now even when a running `drorch serve` has a view"),
    output: Output = OutputOption,
) -> None:
    """Every site at a glance: health, database role and lag, capacity, VPN, DNS, readiness.

    When ``drorch serve`` runs against the same state store, its newest round is shown
    (the view automatic failover acts on, and instant); otherwise the estate is probed now.
    """
    from rich.console import Console

    from drorch.state.backends import open_journal

    cfg = _load(config)
    journal = open_journal(cfg)
    console = Console(width=None if sys.stdout.isatty() else 200)  # pipes and logs get the full table
    while True:
        doc = None if fresh else _served_view(journal, cfg.detection.interval_seconds)
        if doc is None:
            doc = _probe_now(cfg)
        doc["lease"] = _lease(cfg)
        if output == Output.json:
            emit_json(doc)
        else:
            if watch:
                console.clear()
            console.print(_table(doc))
            console.print(_observer(doc))
        if not watch:
            return
        time.sleep(watch)


def _served_view(journal: Any, interval: float) -> dict[str, Any] | None:
    """The status ``drorch serve`` published, when it is recent enough to be the current truth."""
    published = journal.latest_status()
    if published is None:
        return None
    at, doc = published
    age = time.time() - at
    if age > max(3 * interval, 3.0) or age < -1.0:
        return None
    return {**doc, "observer": {"by": "serve", "age_seconds": round(age, 3)}}


def _probe_now(cfg: Any) -> dict[str, Any]:
    from drorch.probes.report import status
    from drorch.providers.estate import Estate

    estate = Estate(cfg)
    doc: dict[str, Any] = status(estate).to_json(estate)
    return {**doc, "observer": {"by": "status", "age_seconds": 0.0}}


def _lease(cfg: Any) -> dict[str, Any] | None:
    """Who holds the controller lease now (None: nobody; the store's error when it does not answer)."""
    from drorch.errors import OperationFailed
    from drorch.state.backends import open_lease

    try:
        held = open_lease(cfg).current()
    except OperationFailed as exc:
        return {"error": str(exc)}
    return None if held is None else {"holder": held.holder, "fencing_token": held.token,
                                      "expires_in_seconds": round(held.expires_at - time.time(), 1)}


def _observer(doc: dict[str, Any]) -> str:
    observer = doc["observer"]
    lease = doc.get("lease")
    held = ("; lease: free" if lease is None else f"; lease: {lease['error']}" if "error" in lease
            else f"; lease held by {lease['holder']} (token {lease['fencing_token']})")
    if observer["by"] == "serve":
        return f"[dim]as seen by drorch serve {observer['age_seconds']:.1f} s ago (--fresh probes now){held}[/]"
    return f"[dim]probed now (no drorch serve publishing to this state store){held}[/]"


@handle_errors
def serve_command(config: Path | None = ConfigOption, output: Output = OutputOption) -> None:
    """Probe continuously, write heartbeats, and serve Prometheus metrics until SIGTERM or Ctrl-C."""
    from drorch.serve.daemon import serve

    cfg = _load(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    info(f"drorch serve: metrics on http://{cfg.metrics.listen}/metrics, probing every "
         f"{cfg.detection.interval_seconds:g} s")
    serve(cfg, stop)
    info("drorch serve: stopped")
