"""Rebuild benchmark: `drorch replication reprotect SITE --rebuild` of a diverged former primary.

Run: .venv/bin/python bench/rebuild.py [--runs 3] [--megabytes 100]
Writes bench/results/rebuild.json and prints a Markdown table (medians).

On a fresh lab, ``--megabytes`` of rows go into the primary (seoul), seoul dies, the service fails
over to tokyo, seoul comes back and takes one write tokyo never gets: a diverged former primary.
Each run then times, as on-call runs it, ``drorch replication reprotect seoul --rebuild --yes``
(fence, wipe, dump from tokyo streamed into seoul, replication from the dump's GTID position,
caught up), after making seoul diverge again. The baseline, measured in the same runs on the same
data: the bare pipe ``mariadb-dump ... | mariadb`` from tokyo into seoul, the floor any logical
copy has; the difference is drorch's process start, checks, wipe, progress copy and catch-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_common import code_version, load_rows, temporary_lab

from drorch.data import heartbeat
from drorch.engine.failover import failover
from drorch.lab import chaos
from drorch.lab.control import Lab

RESULTS = Path(__file__).parent / "results" / "rebuild.json"


def diverge_former_primary(lab: Lab) -> None:
    """seoul dies, tokyo takes over, seoul returns (fenced) and takes a write tokyo never gets."""
    heartbeat.write(lab.estate.mysql("seoul"), lab.config.data.heartbeat.table, "seoul", int(time.time() * 1000))
    chaos.kill_db(lab, "seoul")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replica = lab.admin("tokyo").state().replica
        if replica is None or not replica.io_running:
            break
        time.sleep(0.1)
    result = failover(lab.estate, "tokyo")
    assert result.status == "succeeded", result.error
    chaos.start_db(lab, "seoul")
    diverge_again(lab, 0)


def diverge_again(lab: Lab, run: int) -> None:
    seoul = lab.admin("seoul")
    seoul.execute("STOP SLAVE", f"INSERT INTO shop.orders (client_ref, site) VALUES ('diverged-{run}', 'seoul')")


def bare_pipe_seconds(lab: Lab, tmp: Path) -> float:
    """The floor: mariadb-dump from tokyo piped into mariadb on seoul (replication stopped), nothing else."""
    secret = lab.layout.secret("admin").read_text().strip()
    files = {}
    for site in ("tokyo", "seoul"):
        s = lab.state.sites[site]
        path = tmp / f"{site}.cnf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f'[client]\nhost={s.ip}\nport={s.mysql_port}\nuser=lab_admin\npassword="{secret}"\n'
                         "skip-ssl\n" + ("init-command=SET SESSION sql_log_bin = 0\n" if site == "seoul" else ""))
        files[site] = path
    lab.admin("seoul").execute("STOP SLAVE")
    pipe = (f"set -o pipefail; mariadb-dump --defaults-extra-file={files['tokyo']} --single-transaction --gtid "
            "--master-data=1 --routines --events --triggers --databases drorch shop | "
            f"mariadb --defaults-extra-file={files['seoul']}")
    started = time.monotonic()
    subprocess.run(["bash", "-c", pipe], check=True)
    return time.monotonic() - started


def timed_rebuild(lab: Lab) -> dict[str, Any]:
    env = {**os.environ, "DRORCH_CONFIG": str(lab.layout.config)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "drorch.cli", "replication", "reprotect", "seoul", "--rebuild",
                           "--yes", "--output", "json"], capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    rebuilt = json.loads(done.stdout)["rebuilt"]
    return {"wall_seconds": round(wall, 3), "rebuild_seconds": rebuilt["seconds"],
            "copy_seconds": rebuilt["copy_seconds"], "bytes_copied": rebuilt["bytes_copied"],
            "mb_per_second": rebuilt["mb_per_second"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with temporary_lab("drorch-bench-") as (lab, tmp):
        started = time.monotonic()
        rows = load_rows(lab, args.megabytes)
        load_seconds = time.monotonic() - started
        diverge_former_primary(lab)
        for run in range(args.runs):
            if run:
                diverge_again(lab, run)
            rebuild = timed_rebuild(lab)
            pipe_seconds = bare_pipe_seconds(lab, tmp)  # the same dump: the rebuild counted its bytes
            runs.append({**rebuild, "bare_pipe_seconds": round(pipe_seconds, 3),
                         "bare_pipe_mb_per_second": round(rebuild["bytes_copied"] / 1e6 / pipe_seconds, 2)})
            print(json.dumps(runs[-1]), flush=True)
            lab.admin("seoul").execute("START SLAVE")
    med = statistics.median
    summary = {
        "rebuild_wall_median_seconds": round(med(r["wall_seconds"] for r in runs), 2),
        "rebuild_copy_median_seconds": round(med(r["copy_seconds"] for r in runs), 2),
        "rebuild_mb_per_second_median": round(med(r["mb_per_second"] for r in runs), 1),
        "bytes_copied_median": int(med(r["bytes_copied"] for r in runs)),
        "bare_pipe_median_seconds": round(med(r["bare_pipe_seconds"] for r in runs), 2),
        "bare_pipe_mb_per_second_median": round(med(r["bare_pipe_mb_per_second"] for r in runs), 1),
        "rebuild_wall_vs_bare_pipe": round(med(r["wall_seconds"] for r in runs)
                                           / med(r["bare_pipe_seconds"] for r in runs), 2),
        "rows": rows, "load_seconds": round(load_seconds, 1), "megabytes_loaded": args.megabytes,
        "runs": args.runs, "code_version": code_version(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")
    print("| measure | median |\n|---|---|")
    for key, value in summary.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
