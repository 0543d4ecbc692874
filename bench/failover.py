"""Unplanned failover in automatic mode, measured from the client's side.

Run: .venv/bin/python bench/failover.py [--runs 5] [--rate 20] [--ttl 5]
Writes bench/results/failover.json and prints a Markdown table (medians).

Each run uses a fresh lab (an unplanned failover leaves the old primary needing a
rebuild): `drorch serve` with automatic failover (1 s probes, threshold 3), DNS TTL
set to --ttl, `lab load` writing through the resolver; seoul's database and app are
SIGKILLed/stopped mid-load. Measured: client-observed outage from the kill to the
first acknowledged write on tokyo, lost acknowledged writes, drorch's own RTO.
Baseline in the same run: the floor a DNS-based design cannot beat, detection
(interval x threshold) + TTL; the estates drorch replaces claimed 120 s.
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

import yaml

from drorch.config import load_config
from drorch.engine.actions import dns
from drorch.lab import chaos, lifecycle
from drorch.lab import load as lab_load
from drorch.lab.control import open_lab
from drorch.measure.groundtruth import read_log
from drorch.providers.estate import Estate
from drorch.serve.daemon import Round, serve

RESULTS = Path(__file__).parent / "results" / "failover.json"


def one_run(root: Path, rate: float, ttl: int, duration: float = 25.0, kill_after: float = 6.0) -> dict[str, Any]:
    lifecycle.up(root)
    try:
        lab = open_lab(root)
        document = yaml.safe_load(lab.layout.config.read_text())
        document["automation"] = {"auto_failover": True, "block_seconds": 3600}
        document["dns"]["ttl"] = ttl
        path = root / "drorch-bench.yaml"
        path.write_text(yaml.safe_dump(document))
        config = load_config(path)
        dns.point_to(Estate(config), "seoul", "tokyo")  # republish the pair with the benchmark's TTL
        rounds: list[Round] = []
        stop = threading.Event()
        server = threading.Thread(target=serve, args=(config, stop, rounds.append), daemon=True)
        server.start()
        log = root / "load.jsonl"
        loader = threading.Thread(target=lab_load.run, args=(lab, lab_load.LoadSpec(rate, duration, log)))
        loader.start()
        time.sleep(kill_after)
        killed_at = time.time()
        chaos.kill_db(lab, "seoul")
        chaos.stop_app(lab, "seoul")
        loader.join()
        stop.set()
        server.join(timeout=15)
        acted = next((r for r in rounds if r.decision.acted), None)
        truth = lab_load.verify(lab, log)
        first_tokyo_ack = min((r.done for r in read_log(log) if r.ok and r.site == "tokyo"), default=None)
        return {
            "outage_from_kill_seconds": None if first_tokyo_ack is None else round(first_tokyo_ack - killed_at, 3),
            "detected_after_seconds": None if acted is None else round(acted.snapshot.at - killed_at, 3),
            "drorch_rto_seconds": acted.decision.result.rto_seconds if acted and acted.decision.result else None,
            "lost_acknowledged_writes": len(truth.lost_refs), "acknowledged": truth.acknowledged,
            "attempted": truth.attempted,
        }
    finally:
        lifecycle.down(root)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--ttl", type=int, default=5)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="drorch-bench-failover-") as tmp:
        for index in range(args.runs):
            runs.append(one_run(Path(tmp) / f"run{index}", args.rate, args.ttl))
            print(json.dumps(runs[-1]), flush=True)
    outages = [r["outage_from_kill_seconds"] for r in runs if r["outage_from_kill_seconds"] is not None]
    floor = 1.0 * 3 + args.ttl
    summary = {
        "runs": args.runs, "rate_per_second": args.rate, "ttl_seconds": args.ttl,
        "client_outage_median_seconds": round(statistics.median(outages), 3) if outages else None,
        "client_outage_max_seconds": max(outages) if outages else None,
        "detection_median_seconds": statistics.median(r["detected_after_seconds"] for r in runs
                                                      if r["detected_after_seconds"] is not None),
        "drorch_rto_median_seconds": statistics.median(r["drorch_rto_seconds"] for r in runs
                                                       if r["drorch_rto_seconds"] is not None),
        "lost_acknowledged_writes_total": sum(r["lost_acknowledged_writes"] for r in runs),
        "acknowledged_total": sum(r["acknowledged"] for r in runs),
        "dns_design_floor_seconds": floor,
        "outage_vs_floor": round(statistics.median(outages) / floor, 2) if outages else None,
        "target_seconds": 8.0,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")
    print("| measure | value |\n|---|---|")
    for key, value in summary.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
