"""Backup benchmark: base backup and restore throughput, binlog-shipping lag under load, recovery from a bad migration.

Run: .venv/bin/python bench/backup.py [--runs 3] [--megabytes 200] [--seconds 10]
Writes bench/results/backup.json and prints a Markdown table (medians).

On a fresh lab, ``--megabytes`` of rows go into seoul (replicated everywhere). Each run times:
* a base backup of nhn (the lab's backup source, an async replica) into the lab's bucket on moto:
  ``mariadb-dump --single-transaction`` streamed through gzip and SHA-256 into a multipart upload,
  with the per-table checks read alongside; MB/s of dump (uncompressed SQL) per second;
* a restore of that backup into a scratch MariaDB (download, checksum, load): MB/s of SQL loaded;
* recovery from the bad migration: ``lab chaos bad-migration`` drops a table on seoul while the shipper
  runs, then ``drorch restore mysql --to-time (just before - 1 s)`` into a scratch server, timed as the
  command on-call would type (the whole database comes back, then the binlogs are replayed).
Binlog-shipping lag: while the shipper runs (interval from the lab config, 1 s), a client writes at 100
and then 1,000 writes/s for ``--seconds``; the backup RPO (now minus the time up to which everything is
shipped, what ``drorch_backup_rpo_seconds`` exports) is sampled every 0.1 s.
Baseline in the same runs: the bare pipe ``mariadb-dump ... | gzip -1 > /dev/null`` from nhn (the dump
and compression alone, no store).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench_common import code_version, load_rows, temporary_lab

from drorch.backup import base, restore
from drorch.backup.binlogs import Shipper
from drorch.lab import scratch
from drorch.lab.control import Lab
from drorch.providers.mysql.gtid import GtidPosition

RESULTS = Path(__file__).parent / "results" / "backup.json"

def caught_up(lab: Lab, timeout: float = 300) -> None:
    target = lab.admin("seoul").state().binlog_gtid
    for site in ("tokyo", "nhn"):
        lab.admin(site).query("SELECT MASTER_GTID_WAIT(%s, %s) AS r", (target, timeout), read_timeout=timeout + 5)


def bare_dump_seconds(lab: Lab, tmp: Path) -> float:
    s = lab.state.sites["nhn"]
    secret = lab.layout.secret("admin").read_text().strip()
    path = tmp / "nhn.cnf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f'[client]\nhost={s.ip}\nport={s.mysql_port}\nuser=lab_admin\npassword="{secret}"\nskip-ssl\n')
    started = time.monotonic()
    subprocess.run(["bash", "-c", f"set -o pipefail; mariadb-dump --defaults-extra-file={path} --single-transaction "
                    "--gtid --master-data=1 --routines --events --triggers --databases drorch shop | gzip -1 "
                    ">/dev/null"], check=True)
    return time.monotonic() - started


def writer(lab: Lab, rate: float, seconds: float, stop: threading.Event) -> int:
    """One client writing ``rate`` rows a second into seoul for ``seconds``; returns the writes done."""
    conn = lab.admin("seoul").open()
    done = 0
    started = time.monotonic()
    try:
        with conn.cursor() as cur:
            while not stop.is_set() and (elapsed := time.monotonic() - started) < seconds:
                due = int(elapsed * rate)
                while done < due and time.monotonic() - started < seconds:
                    cur.execute("INSERT INTO shop.orders (client_ref, site) VALUES (%s, 'seoul')",
                                (f"bench-{rate}-{done}-{time.time_ns()}",))
                    done += 1
                time.sleep(0.001)
    finally:
        conn.close()
    return done


def shipping_lag(lab: Lab, rate: float, seconds: float) -> dict[str, Any]:
    shipper = Shipper(lab.estate)
    stop = threading.Event()
    thread = threading.Thread(target=shipper.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(3)  # the reader connects and the backlog is shipped
    samples: list[float] = []
    counted: list[int] = []
    write_stop = threading.Event()
    client = threading.Thread(target=lambda: counted.append(writer(lab, rate, seconds, write_stop)), daemon=True)
    started = time.monotonic()
    client.start()
    while client.is_alive() and time.monotonic() - started < seconds + 30:
        lag = shipper.rpo_seconds()
        if lag is not None:
            samples.append(lag)
        time.sleep(0.1)
    write_stop.set()
    client.join(10)
    stop.set()
    thread.join(30)
    samples.sort()
    achieved = counted[0] / seconds if counted else 0.0
    return {"offered_per_second": rate, "achieved_per_second": round(achieved, 1), "samples": len(samples),
            "rpo_median_seconds": round(statistics.median(samples), 3),
            "rpo_p95_seconds": round(samples[int(0.95 * (len(samples) - 1))], 3),
            "rpo_max_seconds": round(samples[-1], 3), "shipped_mb": round(shipper.bytes_shipped / 1e6, 2)}


def timed_backup(lab: Lab) -> dict[str, Any]:
    started = time.monotonic()
    manifest = base.take(lab.estate)
    seconds = time.monotonic() - started
    return {"backup_seconds": round(seconds, 3), "dump_bytes": manifest.raw_size, "stored_bytes": manifest.size,
            "backup_mb_per_second": round(manifest.raw_size / 1e6 / seconds, 2), "id": manifest.id,
            "gtid": manifest.gtid_position}


def timed_restore(lab: Lab, gtid: str) -> dict[str, Any]:
    bubble = scratch.start(lab, "nhn")
    try:
        started = time.monotonic()
        done = restore.restore(lab.estate, "scratch", restore.Goal(gtid=GtidPosition.parse(gtid)), False,
                               db=bubble.db)
        seconds = time.monotonic() - started
    finally:
        scratch.stop(lab, "nhn")
    return {"restore_seconds": round(seconds, 3), "restore_mb_per_second": round(done.dump_bytes / 1e6 / seconds, 2),
            "restore_load_mb_per_second": done.mb_per_second}


def bad_migration_recovery(lab: Lab, run: int) -> dict[str, Any]:
    """A victim table, the shipper running, the drop; then the restore as on-call types it, timed."""
    seoul = lab.admin("seoul")
    table = f"victim_{run}"
    seoul.execute(f"CREATE TABLE shop.{table} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
                  f"INSERT INTO shop.{table} (v) SELECT seq FROM shop.seq_1_to_1000")
    shipper = Shipper(lab.estate)
    stop = threading.Event()
    thread = threading.Thread(target=shipper.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(2.2)
        from drorch.lab import chaos

        dropped = chaos.bad_migration(lab, f"shop.{table}")
        deadline = time.monotonic() + 30
        while (shipper.state.caught_up_at or 0) <= float(str(dropped["before"])) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    bubble = scratch.start(lab, "tokyo")
    try:
        target = f"{bubble.db.address.host}:{bubble.db.address.port}"
        env = {**os.environ, "DRORCH_CONFIG": str(lab.layout.config)}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "drorch.cli", "restore", "mysql", "--target", target,
                               "--to-time", str(float(str(dropped["before"])) - 1), "--yes", "--output", "json"],
                              capture_output=True, text=True, env=env, check=False)
        seconds = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        rows = bubble.db.query(f"SELECT COUNT(*) AS n FROM shop.{table}")[0]["n"]
        assert rows == 1000, rows
    finally:
        scratch.stop(lab, "tokyo")
    return {"recovery_seconds": round(seconds, 3), "replayed_transactions": json.loads(done.stdout)["transactions"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    lag: list[dict[str, Any]] = []
    with temporary_lab("drorch-bench-") as (lab, tmp):
        started = time.monotonic()
        rows = load_rows(lab, args.megabytes)
        caught_up(lab)
        load_seconds = time.monotonic() - started
        for run in range(args.runs):
            backup = timed_backup(lab)
            restored = timed_restore(lab, backup["gtid"])
            bare = bare_dump_seconds(lab, tmp)
            recovery = bad_migration_recovery(lab, run)
            runs.append({**backup, **restored, **recovery, "bare_dump_gzip_seconds": round(bare, 3),
                         "bare_dump_gzip_mb_per_second": round(backup["dump_bytes"] / 1e6 / bare, 2)})
            print(json.dumps(runs[-1]), flush=True)
        for rate in (100.0, 1000.0):
            lag.append(shipping_lag(lab, rate, args.seconds))
            print(json.dumps(lag[-1]), flush=True)
    med = statistics.median
    summary = {
        "backup_mb_per_second_median": round(med(r["backup_mb_per_second"] for r in runs), 1),
        "backup_seconds_median": round(med(r["backup_seconds"] for r in runs), 2),
        "restore_mb_per_second_median": round(med(r["restore_mb_per_second"] for r in runs), 1),
        "restore_seconds_median": round(med(r["restore_seconds"] for r in runs), 2),
        "bare_dump_gzip_mb_per_second_median": round(med(r["bare_dump_gzip_mb_per_second"] for r in runs), 1),
        "backup_vs_bare_dump_gzip": round(med(r["backup_seconds"] for r in runs)
                                          / med(r["bare_dump_gzip_seconds"] for r in runs), 2),
        "bad_migration_recovery_seconds_median": round(med(r["recovery_seconds"] for r in runs), 2),
        "dump_mb": round(med(r["dump_bytes"] for r in runs) / 1e6, 1),
        "stored_mb": round(med(r["stored_bytes"] for r in runs) / 1e6, 1),
        **{f"shipping_rpo_median_seconds_at_{int(x['offered_per_second'])}": x["rpo_median_seconds"] for x in lag},
        **{f"shipping_rpo_p95_seconds_at_{int(x['offered_per_second'])}": x["rpo_p95_seconds"] for x in lag},
        **{f"achieved_writes_per_second_at_{int(x['offered_per_second'])}": x["achieved_per_second"] for x in lag},
        "rows": rows, "load_seconds": round(load_seconds, 1), "megabytes_loaded": args.megabytes,
        "runs": args.runs, "code_version": code_version(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"summary": summary, "runs": runs, "shipping": lag}, indent=2) + "\n")
    print("| measure | median |\n|---|---|")
    for key, value in summary.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
