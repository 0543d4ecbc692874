"""Partitions drorch must not turn into a failover (the other direction is in test_failover.py).

Here the replicas lose seoul while the controller still reaches it: their IO threads
are stopped, as they would be when the link between the sites breaks. Holistic
detection must not declare the primary dead, and the automatic controller must not
act, however many rounds it watches.
"""

from __future__ import annotations

import threading

import yaml

from drorch.config import load_config
from drorch.lab.control import Lab
from drorch.serve.daemon import Round, serve
from tests.helpers import wait_for, writable_sites


def test_replicas_cut_off_from_a_live_primary_cause_no_failover(home: Lab) -> None:
    document = yaml.safe_load(home.layout.config.read_text())
    document["automation"] = {"auto_failover": True, "block_seconds": 0}
    document["metrics"] = {"listen": "127.0.0.1:0"}
    path = home.layout.root / "drorch-partition.yaml"  # beside the lab's config: its relative paths still hold
    path.write_text(yaml.safe_dump(document))
    rounds: list[Round] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(load_config(path), stop, rounds.append), daemon=True)
    try:
        for site in ("tokyo", "nhn"):
            home.admin(site).execute("STOP SLAVE IO_THREAD")
        thread.start()
        wait_for(lambda: len(rounds) >= 6, timeout=40)  # twice the failure threshold
        watched = list(rounds)
        assert all(r.leader for r in watched[1:])  # it could have acted: it held the lease
        assert not any(r.verdicts.primary_database_dead for r in watched)
        assert not any(r.decision.acted for r in watched)
        last = watched[-1].snapshot
        for site in ("tokyo", "nhn"):  # the replicas' own view: not receiving from seoul
            database = last.get(site, "database")
            assert database is not None
            assert not database.detail["io_running"], database.detail
        assert writable_sites(home) == ["seoul"]
    finally:
        stop.set()
        thread.join(timeout=15)
        path.unlink(missing_ok=True)
        for site in ("tokyo", "nhn"):
            home.admin(site).execute("START SLAVE IO_THREAD")
    assert not thread.is_alive()
