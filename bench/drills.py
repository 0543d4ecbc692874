"""Medians of repeated drills, one mode after another, on one lab.

Run: .venv/bin/python bench/drills.py [--runs 5] [--rate 20]
Writes bench/results/drills.json and prints a Markdown table.

Per mode (switchover, chaos, isolated), --runs drills to tokyo in a row on the same
lab (each drill leaves the estate as it started, which this also checks), with
`lab load` writing --rate orders per second through the service name where the
mode has a client. Reported per mode: client-observed outage, lost acknowledged
writes, drorch's RTO, and drill wall time; isolated drills report their recovery
time and the copy's data age instead (nothing moves, so no client outage). The
baseline design's figures for the same fault are in bench/results/baseline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_common import code_version

from drorch.drill.chaos import chaos_drill
from drorch.drill.harness import DrillResult
from drorch.drill.isolated import isolated_drill
from drorch.drill.switchover import drill
from drorch.errors import DrorchError
from drorch.lab import lifecycle
from drorch.lab.control import open_lab
from drorch.state.backends import holding_lease, open_journal

RESULTS = Path(__file__).parent / "results" / "drills.json"
FIGURES = ("client_outage_seconds", "lost_acknowledged_writes", "drorch_rto_seconds", "detection_seconds",
           "recovery_seconds", "data_age_seconds")


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {"switchover": [], "chaos": [], "isolated": []}
    with tempfile.TemporaryDirectory(prefix="drorch-bench-drills-") as tmp:
        root = Path(tmp) / "lab"
        lifecycle.up(root)
        try:
            lab = open_lab(root)
            estate, journal = lab.estate, open_journal(lab.config)

            def switchover() -> DrillResult:
                with holding_lease(lab.config) as lease:
                    from drorch.engine.executor import Options

                    return drill(estate, "tokyo", args.rate, journal,
                                 options=Options(approvals=frozenset({"*"}), lease=lease))

            def isolated() -> DrillResult:
                with holding_lease(lab.config):
                    return isolated_drill(estate, "tokyo", journal)

            modes: dict[str, Callable[[], DrillResult]] = {
                "switchover": switchover,
                "chaos": lambda: chaos_drill(estate, "tokyo", args.rate, journal, rebuild=True),
                "isolated": isolated,
            }
            for mode, run in modes.items():
                for _ in range(args.runs):
                    started = time.monotonic()
                    try:
                        found = run()
                        entry = {"status": found.status, **{k: found.measured.get(k) for k in FIGURES}}
                    except DrorchError as exc:
                        entry = {"status": "failed", "error": str(exc)[:300]}
                    entry["wall_seconds"] = round(time.monotonic() - started, 1)
                    results[mode].append(entry)
                    print(json.dumps({"mode": mode, **entry}), flush=True)
        finally:
            lifecycle.down(root)
    summary = {}
    for mode, runs in results.items():
        done = [r for r in runs if r["status"] != "failed"]
        row: dict[str, Any] = {"runs": len(runs), "failed": len(runs) - len(done),
                               "wall_median_seconds": _median([r["wall_seconds"] for r in runs])}
        for key in FIGURES:
            values = [float(r[key]) for r in done if r.get(key) is not None]
            if values:
                row[f"{key}_median"] = _median(values)
        row["lost_acknowledged_writes_total"] = sum(int(r.get("lost_acknowledged_writes") or 0) for r in done)
        summary[mode] = row
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rate_per_second": args.rate, "code_version": code_version(),
                                   "load_average": os.getloadavg(), "summary": summary, "runs": results},
                                  indent=2) + "\n")
    print("| mode | runs (failed) | outage median s | lost writes | drorch RTO median s | wall median s |")
    print("|---|---|---|---|---|---|")
    for mode, row in summary.items():
        print(f"| {mode} | {row['runs']} ({row['failed']}) | {row.get('client_outage_seconds_median', '-')} | "
              f"{row['lost_acknowledged_writes_total']} | {row.get('drorch_rto_seconds_median', '-')} | "
              f"{row['wall_median_seconds']} |")
    isolated_row = summary["isolated"]
    print(f"isolated: recovery median {isolated_row.get('recovery_seconds_median')} s, copy data age median "
          f"{isolated_row.get('data_age_seconds_median')} s")


if __name__ == "__main__":
    main()
