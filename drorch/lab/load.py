"""``drorch lab load``: a client writing orders at a steady rate through the service name.

Each write resolves the name through the lab resolver (with TTL caching, as a real
client would), posts to the site it got, and logs the outcome as one JSON line.
Writes are scheduled on a fixed clock and run on a worker pool, so a hung request
does not slow the rate — the log shows the outage instead of hiding it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from drorch.errors import OperationFailed
from drorch.lab.control import Lab
from drorch.lab.resolver import CachingResolver
from drorch.measure.groundtruth import GroundTruth, analyse, read_log

REQUEST_TIMEOUT = 2.0


@dataclass(frozen=True)
class LoadSpec:
    rate: float
    duration: float
    out: Path


class _Writer:
    def __init__(self, path: Path) -> None:
        self._handle = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _one_write(lab: Lab, resolver: CachingResolver, session: requests.Session, ref: str, seq: int) -> dict[str, Any]:
    sent = time.time()
    record: dict[str, Any] = {"seq": seq, "client_ref": ref, "sent": sent}
    try:
        answer = resolver.resolve()
        port = lab.config.dns.app_port
        response = session.post(f"http://{answer.value}:{port}/orders", json={"client_ref": ref},
                                timeout=REQUEST_TIMEOUT)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        record.update(ok=response.status_code == 201, site=body.get("site"), id=body.get("id"),
                      status=response.status_code, error=None if response.status_code == 201 else body.get("error"))
    except Exception as exc:  # any failure is an unacknowledged write; the log says which
        record.update(ok=False, site=None, error=type(exc).__name__)
    record["done"] = time.time()
    return record


def run(lab: Lab, spec: LoadSpec, stop: threading.Event | None = None) -> Path:
    """Write at ``spec.rate`` per second for ``spec.duration`` seconds (or until ``stop``); returns the log path."""
    run_id = uuid.uuid4().hex[:8]
    dns = lab.config.dns
    resolver = CachingResolver(lab.estate.route53, dns.zone_id, dns.record, dns.type)
    spec.out.parent.mkdir(parents=True, exist_ok=True)
    writer = _Writer(spec.out)
    session = requests.Session()
    interval = 1.0 / spec.rate
    total = int(spec.rate * spec.duration)
    started = time.monotonic()

    def write(seq: int) -> None:
        writer.write(_one_write(lab, resolver, session, f"{run_id}-{seq}", seq))

    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            halt = stop or threading.Event()
            for seq in range(total):
                if halt.wait(max(0.0, started + seq * interval - time.monotonic())):
                    break
                pool.submit(write, seq)
    finally:
        writer.close()
    return spec.out


def verify(lab: Lab, log: Path) -> GroundTruth:
    """Compare the write log with the orders held by the current writable primary."""
    return analyse(read_log(log), held(lab, log))


def held(lab: Lab, log: Path) -> set[str]:
    """The client_refs of the writes in ``log`` that the current writable primary holds."""
    logged = {record.client_ref for record in read_log(log)}
    for site in lab.state.sites:
        db = lab.admin(site)
        if db.ping() and not db.state().read_only:
            return logged & {row["client_ref"] for row in db.query("SELECT client_ref FROM shop.orders")}
    raise OperationFailed("no writable primary answers: cannot tell which acknowledged writes survived")
