"""`drorch serve` ships binlogs as the lease holder and exports the backup tier's RPO."""

from __future__ import annotations

import math
import threading
import time

import requests

from drorch.backup.status import backup_rpo_seconds
from drorch.serve.daemon import Round, serve
from tests.backup.conftest import Corner
from tests.helpers import wait_for


def _metric(listen: str, name: str) -> float | None:
    for line in requests.get(f"http://{listen}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_the_leading_serve_ships_a_write_and_exports_the_backup_rpo(corner: Corner) -> None:
    corner.make_table()
    written = corner.write("shipped-by-serve")
    rounds: list[Round] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(corner.config, stop, rounds.append), daemon=True)
    thread.start()
    try:
        wait_for(lambda: any(r.leader for r in rounds), timeout=30)
        # the store holds the primary's binlog from after our write: a restore would not lose it
        def shipped_past_the_write() -> bool:
            rpo = backup_rpo_seconds(corner.config, corner.store)
            return rpo is not None and time.time() - rpo > written

        wait_for(shipped_past_the_write, timeout=60, interval=0.5)

        def exported() -> list[float] | None:
            value = _metric(corner.config.metrics.listen, "drorch_backup_rpo_seconds")
            return [value] if value is not None and not math.isnan(value) else None

        assert 0 <= wait_for(exported, timeout=30, interval=0.5)[0] < 30
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
