"""Foundation benchmark: lab start-up time and switchover outage under load.

Run: .venv/bin/python bench/foundation.py [--runs 5] [--rate 20]
Writes bench/results/foundation.json and prints a Markdown table (medians).

Baselines measured in the same process, so a noisy machine shifts both sides:
- lab up is compared with starting one bare MariaDB server from a fresh datadir;
- the client-observed outage is compared with the DNS TTL, the floor any
  DNS-based switch has for clients that cache answers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from drorch.engine.failover import failover
from drorch.lab import lifecycle, mariadb, processes
from drorch.lab import load as lab_load
from drorch.lab.control import open_lab
from drorch.lab.layout import LabLayout
from drorch.lab.ports import free_port

RESULTS = Path(__file__).parent / "results" / "foundation.json"


def bare_mariadb_seconds(root: Path) -> float:
    """Baseline: template + one mariadbd until it answers."""
    layout = LabLayout(root)
    accounts = mariadb.Accounts("a", "b", "c", "d")
    started = time.monotonic()
    template = mariadb.build_template(layout, accounts)
    port = free_port()
    item = mariadb.start_server(layout, "seoul", template, "127.0.0.1", port)
    try:
        mariadb.wait_ready(mariadb.admin_client("seoul", "127.0.0.1", port, "a"), item, 60)
        return time.monotonic() - started
    finally:
        processes.stop(layout.run, item)


def lab_up_seconds(root: Path) -> float:
    result = lifecycle.up(root)
    lifecycle.down(root)
    return result.seconds


def switchovers(root: Path, runs: int, rate: float) -> list[dict[str, Any]]:
    lifecycle.up(root)
    lab = open_lab(root)
    out: list[dict[str, Any]] = []
    try:
        for run in range(runs):
            target = "tokyo" if run % 2 == 0 else "seoul"
            log = root / f"load-{run}.jsonl"
            loader = threading.Thread(target=lab_load.run, args=(lab, lab_load.LoadSpec(rate, 8.0, log)))
            loader.start()
            time.sleep(3.0)
            result = failover(lab.estate, target)
            loader.join()
            truth = lab_load.verify(lab, log)
            out.append({"to": target, "status": result.status, "rto_seconds": result.rto_seconds,
                        "rpo_seconds": result.rpo_seconds, "client_outage_seconds": truth.longest_outage_seconds,
                        "acknowledged": truth.acknowledged, "lost_acknowledged_writes": len(truth.lost_refs),
                        "ttl_seconds": lab.config.dns.ttl})
            print(json.dumps(out[-1]), flush=True)
    finally:
        lifecycle.down(root)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drorch-bench-") as tmp:
        base = Path(tmp)
        bare = [bare_mariadb_seconds(base / f"bare{i}") for i in range(3)]
        ups = [lab_up_seconds(base / f"up{i}") for i in range(3)]
        runs = switchovers(base / "switch", args.runs, args.rate)
    med = statistics.median
    ttl = runs[0]["ttl_seconds"]
    summary = {
        "lab_up_median_seconds": round(med(ups), 2),
        "bare_mariadb_median_seconds": round(med(bare), 2),
        "lab_up_vs_one_bare_mariadb": round(med(ups) / med(bare), 2),
        "switchover_rto_median_seconds": round(med(r["rto_seconds"] for r in runs), 3),
        "client_outage_median_seconds": round(med(r["client_outage_seconds"] for r in runs), 3),
        "client_outage_vs_ttl": round(med(r["client_outage_seconds"] for r in runs) / ttl, 2),
        "lost_acknowledged_writes_total": sum(r["lost_acknowledged_writes"] for r in runs),
        "acknowledged_writes_total": sum(r["acknowledged"] for r in runs),
        "runs": args.runs, "rate_per_second": args.rate, "ttl_seconds": ttl,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"summary": summary, "lab_up_seconds": ups, "bare_mariadb_seconds": bare,
                                   "switchovers": runs}, indent=2) + "\n")
    print("| measure | median |\n|---|---|")
    for key, value in summary.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
