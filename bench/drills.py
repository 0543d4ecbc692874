"""Medians of repeated drills, one mode after another, on one lab.

Run: .venv/bin/python bench/drills.py [--runs 5] [--rate 20] [--modes switchover,chaos,isolated,...]
Writes bench/results/drills.json and prints a Markdown table.

Per mode (switchover, chaos, isolated), --runs drills to tokyo in a row on the same
lab (each drill leaves the estate as it started, which this also checks), with
`lab load` writing --rate orders per second through the service name where the
mode has a client. Reported per mode: client-observed outage, lost acknowledged
writes, drorch's RTO, and drill wall time; isolated drills report their recovery
time and the copy's data age instead (nothing moves, so no client outage). The
baseline design's figures for the same fault are in bench/results/baseline.json.

The ``*-estate`` modes run the same drills the way a real estate does: from a config
outside the lab (``drorch.lab.estate_copy``), with the client and its verifier as
configured commands (``ground_truth``), the chaos fault as an AWS FIS experiment
(``chaos.fault.fis``, carried out by the lab's AWS server) and the isolated drill's
copy on a scratch server the estate keeps (``isolated.scratch``). Their medians next
to the lab modes' show what the estate path costs and whether it measures the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_common import code_version, temporary_lab

from drorch.config import load_config
from drorch.drill.chaos import chaos_drill
from drorch.drill.harness import DrillResult
from drorch.drill.isolated import isolated_drill
from drorch.drill.switchover import drill
from drorch.errors import DrorchError
from drorch.lab import scratch
from drorch.lab.control import Lab
from drorch.lab.estate_copy import estate_config, lab_command, lab_ground_truth
from drorch.providers.estate import Estate
from drorch.state.backends import holding_lease, open_journal

RESULTS = Path(__file__).parent / "results" / "drills.json"
MODES = ("switchover", "chaos", "isolated", "switchover-estate", "chaos-estate", "isolated-estate")
FIGURES = ("client_outage_seconds", "lost_acknowledged_writes", "drorch_rto_seconds", "detection_seconds",
           "recovery_seconds", "data_age_seconds")


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    args = parser.parse_args()
    chosen = [mode for mode in args.modes.split(",") if mode]
    unknown = sorted(set(chosen) - set(MODES))
    if unknown:
        parser.error(f"unknown mode {', '.join(unknown)}: choose from {', '.join(MODES)}")
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in chosen}
    with temporary_lab("drorch-bench-drills-") as (lab, tmp):
        lab_estate = lab.estate
        estate = Estate(load_config(_estate_config(lab, tmp / "estate", None)))
        journal = open_journal(lab.config)
        with_scratch: list[Estate] = []

        def isolated_estate() -> DrillResult:
            # the estate's scratch server, started once the lab's own isolated drills (which start and
            # delete a scratch server of the same name) are over
            if not with_scratch:
                path = _estate_config(lab, tmp / "estate", scratch.start(lab, "tokyo"))
                with_scratch.append(Estate(load_config(path)))
            return isolated(with_scratch[0])

        def switchover(on: Estate) -> DrillResult:
            with holding_lease(lab.config) as lease:
                from drorch.engine.executor import Options

                return drill(on, "tokyo", args.rate, journal,
                             options=Options(approvals=frozenset({"*"}), lease=lease))

        def isolated(on: Estate) -> DrillResult:
            with holding_lease(lab.config):
                return isolated_drill(on, "tokyo", journal)

        modes: dict[str, Callable[[], DrillResult]] = {
            "switchover": lambda: switchover(lab_estate),
            "chaos": lambda: chaos_drill(lab_estate, "tokyo", args.rate, journal, rebuild=True),
            "isolated": lambda: isolated(lab_estate),
            "switchover-estate": lambda: switchover(estate),
            "chaos-estate": lambda: chaos_drill(estate, "tokyo", args.rate, journal, rebuild=True),
            "isolated-estate": isolated_estate,
        }
        for mode in chosen:
            run = modes[mode]
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
    for mode in ("isolated", "isolated-estate"):
        if mode in summary:
            row = summary[mode]
            print(f"{mode}: recovery median {row.get('recovery_seconds_median')} s, copy data age median "
                  f"{row.get('data_age_seconds_median')} s")


def _estate_config(lab: Lab, directory: Path, place: scratch.Scratch | None) -> Path:
    """The lab as an estate: its client and verifier, an FIS experiment, a scratch server (when started)."""
    template = json.loads(lab.layout.manifest.read_text())["fis_templates"]["seoul"]
    sections: dict[str, Any] = {
        "ground_truth": lab_ground_truth(lab),
        "chaos": {"fault": {"fis": {"experiment_template_id": template}}, "heal": lab_command(lab, "chaos", "heal")}}
    if place is not None:
        address = place.db.address
        sections["isolated"] = {"scratch": {"tokyo": {
            "mysql": {"host": address.host, "port": address.port, "user": address.user,
                      "password": {"file": str(lab.layout.secret("admin"))}}, "app_url": place.app_url}}}
    return estate_config(lab, directory, **sections)


if __name__ == "__main__":
    main()
