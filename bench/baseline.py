"""drorch against the design it replaces, on the same lab, with the same load and the same fault.

Run: .venv/bin/python bench/baseline.py [--runs 5] [--rate 20] [--drorch-ttl 5]
Writes bench/results/baseline.json and prints a Markdown table (medians).

The baseline is what the source estates ran: the standby's MySQL is refreshed by
a dump of the primary every 60 s (no replication), and traffic moves only when
Route 53 health checks (10 s interval, failure threshold 3) fail the primary's
record over, with a 60 s TTL on the name. drorch is its chaos drill: semi-sync
replication, heartbeat detection, automatic failover, the lab's DNS TTL set to
--drorch-ttl. The fault is identical: the primary's database SIGKILLed and its app
stopped under `lab load`. Each run of each design uses a fresh lab; the baseline's
fault falls at a different point of its dump cycle, and of the client's DNS cache,
in every run (both evenly spread, in different orders).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from drorch.config import load_config
from drorch.drill.chaos import chaos_drill
from drorch.engine.actions import dns
from drorch.lab import chaos, lifecycle
from drorch.lab import load as lab_load
from drorch.lab.control import Lab, open_lab
from drorch.lab.mariadb import find_program
from drorch.measure.groundtruth import read_log
from drorch.providers.estate import Estate
from drorch.state.backends import open_journal

RESULTS = Path(__file__).parent / "results" / "baseline.json"
DUMP_EVERY, CHECK_INTERVAL, THRESHOLD, BASELINE_TTL = 60.0, 10.0, 3, 60


def _config_copy(lab: Lab, name: str, ttl: int, health_checks: bool) -> Path:
    """The lab's config with another TTL (and, for the baseline, records carrying no health check)."""
    document = yaml.safe_load(lab.layout.config.read_text())
    document["dns"]["ttl"] = ttl
    if not health_checks:  # the baseline's health checker below moves the records, with Route 53's timing
        for entry in document["dns"]["sites"].values():
            entry.pop("health_check_id", None)
    path = lab.layout.root / name  # beside the lab's config: its relative paths still hold
    path.write_text(yaml.safe_dump(document))
    return path


def drorch_run(root: Path, rate: float, ttl: int) -> dict[str, Any]:
    lifecycle.up(root)
    try:
        lab = open_lab(root)
        config = load_config(_config_copy(lab, "drorch-bench.yaml", ttl, health_checks=True))
        dns.point_to(Estate(config), "seoul", "tokyo")  # republish the pair with this TTL
        started = time.monotonic()
        result = chaos_drill(Estate(config), "tokyo", rate, open_journal(config))
        m = result.measured
        return {"design": "drorch", "status": result.status, "client_outage_seconds": m["client_outage_seconds"],
                "lost_acknowledged_writes": m["lost_acknowledged_writes"], "acknowledged": m["acknowledged_writes"],
                "detection_seconds": m["detection_seconds"], "drorch_rto_seconds": m["drorch_rto_seconds"],
                "drill_wall_seconds": round(time.monotonic() - started, 1)}
    finally:
        lifecycle.down(root)


def _defaults_file(directory: Path, lab: Lab) -> Path:
    """Client credentials for the dump job, in a 0600 file (never on a command line)."""
    path = directory / "dump.cnf"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(f"[client]\nuser=lab_admin\npassword={lab.layout.secret('admin').read_text().strip()}\n")
    return path


def _dump_once(lab: Lab, credentials: Path) -> bool:
    """The baseline's cron job: dump the primary's schema, load it into the standby."""
    seoul, tokyo = lab.state.sites["seoul"], lab.state.sites["tokyo"]
    dump = subprocess.Popen([find_program("mariadb-dump"), f"--defaults-extra-file={credentials}",
                             f"--host={seoul.ip}", f"--port={seoul.mysql_port}", "--single-transaction", "shop"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    loaded = subprocess.run([find_program("mariadb"), f"--defaults-extra-file={credentials}", f"--host={tokyo.ip}",
                             f"--port={tokyo.mysql_port}", "shop"], stdin=dump.stdout, capture_output=True,
                            timeout=120, check=False)
    assert dump.stdout is not None
    dump.stdout.close()
    return dump.wait(timeout=120) == 0 and loaded.returncode == 0


def _health_checker(lab: Lab, estate: Estate, stop: threading.Event, flipped: dict[str, float]) -> None:
    """Route 53's failover: check every 10 s, move the record after 3 failures in a row."""
    url = f"{lab.state.app_url('seoul')}/healthz"
    failures = 0
    while not stop.wait(CHECK_INTERVAL):
        try:
            healthy = requests.get(url, timeout=4).status_code == 200
        except requests.RequestException:
            healthy = False
        failures = 0 if healthy else failures + 1
        if failures >= THRESHOLD:
            dns.point_to(estate, "tokyo", "seoul")
            flipped["at"] = time.time()
            return


def baseline_run(root: Path, rate: float, phase: float, cache_offset: float) -> dict[str, Any]:
    """``phase``: fault this long after the last dump; ``cache_offset``: the client resolved this long before
    the first dump (so the age of its cached answer at the DNS flip differs from run to run, as for real users)."""
    lifecycle.up(root)
    try:
        lab = open_lab(root)
        config = load_config(_config_copy(lab, "baseline.yaml", BASELINE_TTL, health_checks=False))
        estate = Estate(config)
        dns.point_to(estate, "seoul", "tokyo")
        seoul, tokyo = lab.admin("seoul"), lab.admin("tokyo")
        tokyo.execute("STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF")  # a dump target, not a replica
        seoul.execute("SET GLOBAL rpl_semi_sync_master_enabled = OFF")
        credentials = _defaults_file(root, lab)
        stop, flipped = threading.Event(), dict[str, float]()
        log = root / "load.jsonl"
        loader = threading.Thread(target=lab_load.run, args=(lab, lab_load.LoadSpec(rate, 600.0, log), stop))
        checker = threading.Thread(target=_health_checker, args=(lab, estate, stop, flipped))
        loader.start()
        checker.start()
        time.sleep(cache_offset)
        dumps = 0
        for _ in range(2):  # two dump cycles, then the fault `phase` seconds after the second dump
            dumps += _dump_once(lab, credentials)
            time.sleep(DUMP_EVERY if dumps < 2 else phase)
        killed_at = time.time()
        chaos.kill_db(lab, "seoul")
        chaos.stop_app(lab, "seoul")
        deadline = time.monotonic() + CHECK_INTERVAL * (THRESHOLD + 2) + BASELINE_TTL + 30
        while time.monotonic() < deadline and not any(r.ok and r.site == "tokyo" for r in read_log(log)
                                                      if r.done > killed_at):
            time.sleep(1)
        time.sleep(3)
        stop.set()
        loader.join(timeout=60)
        checker.join(timeout=60)
        truth = lab_load.verify(lab, log)
        first_tokyo = min((r.done for r in read_log(log) if r.ok and r.site == "tokyo"), default=None)
        return {"design": "baseline", "phase_seconds": round(phase, 1), "cache_offset_seconds": round(cache_offset, 1),
                "dumps": dumps,
                "client_outage_seconds": round(truth.longest_outage_seconds, 3),
                "lost_acknowledged_writes": len(truth.lost_refs), "acknowledged": truth.acknowledged,
                "detection_seconds": round(flipped["at"] - killed_at, 3) if "at" in flipped else None,
                "first_write_on_standby_after_fault_seconds": None if first_tokyo is None
                else round(first_tokyo - killed_at, 3)}
    finally:
        lifecycle.down(root)


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--drorch-ttl", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"drorch": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="drorch-bench-baseline-") as tmp:
        for index in range(args.runs):
            runs["drorch"].append(drorch_run(Path(tmp) / f"d{index}", args.rate, args.drorch_ttl))
            print(json.dumps(runs["drorch"][-1]), flush=True)
            phase = (index + 0.5) / args.runs * DUMP_EVERY  # both phases evenly spread, in different orders
            cache_offset = ((2 * index + 1) % args.runs + 0.5) / args.runs * BASELINE_TTL
            runs["baseline"].append(baseline_run(Path(tmp) / f"b{index}", args.rate, phase, cache_offset))
            print(json.dumps(runs["baseline"][-1]), flush=True)
    summary = {design: {"runs": len(found), "ttl_seconds": args.drorch_ttl if design == "drorch" else BASELINE_TTL,
                        "client_outage_median_seconds": _median(found, "client_outage_seconds"),
                        "client_outage_max_seconds": max(r["client_outage_seconds"] for r in found),
                        "lost_acknowledged_writes_median": _median(found, "lost_acknowledged_writes"),
                        "lost_acknowledged_writes_total": sum(r["lost_acknowledged_writes"] for r in found),
                        "acknowledged_total": sum(r["acknowledged"] for r in found),
                        "detection_median_seconds": _median(found, "detection_seconds")}
               for design, found in runs.items()}
    drorch_outage = summary["drorch"]["client_outage_median_seconds"]
    baseline_outage = summary["baseline"]["client_outage_median_seconds"]
    ratio = round(baseline_outage / drorch_outage, 1) if drorch_outage and baseline_outage else None
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rate_per_second": args.rate, "summary": summary,
                                   "baseline_over_drorch_outage": ratio, "runs": runs}, indent=2) + "\n")
    print("| design | TTL s | outage median s | outage max s | lost writes median | lost / acknowledged | "
          "detection median s |\n|---|---|---|---|---|---|---|")
    for design, row in summary.items():
        print(f"| {design} | {row['ttl_seconds']} | {row['client_outage_median_seconds']} | "
              f"{row['client_outage_max_seconds']} | {row['lost_acknowledged_writes_median']} | "
              f"{row['lost_acknowledged_writes_total']} / {row['acknowledged_total']} | "
              f"{row['detection_median_seconds']} |")
    print(f"baseline outage / drorch outage (medians): {ratio}")


if __name__ == "__main__":
    main()
