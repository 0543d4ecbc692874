"""The controller lease on the lab: a second controller is refused (exit 4), a run that loses the lease stops
between steps, every journaled step carries the fencing token, and only one `serve` leads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from drorch.config import load_config
from drorch.engine.actions import dns
from drorch.engine.executor import Options, execute
from drorch.engine.playbook.loader import load_playbook
from drorch.lab.control import Lab
from drorch.lab.ports import free_port
from drorch.serve.daemon import Round, serve
from drorch.state.backends import holding_lease, open_journal, open_lease
from drorch.state.lease import Keeper
from tests.helpers import estate_state, paused_playbook, wait_for, writable_sites

SWITCHOVER = Path(__file__).resolve().parents[2] / "playbooks" / "switchover.yaml"


def drorch(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRORCH_CONFIG": str(lab.layout.config)}
    return subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=180, check=False)


def test_a_second_controller_is_refused_then_the_holder_token_is_journaled(home: Lab) -> None:
    before = estate_state(home)
    with holding_lease(home.config, holder="other-controller:4242"):
        refused = drorch(home, "failover", "--to", "tokyo", "--yes", "--output", "json")
        assert refused.returncode == 4, refused.stderr
        assert "held by other-controller:4242" in json.loads(refused.stdout)["error"]
        assert drorch(home, "failback", "--yes").returncode == 4
    assert estate_state(home) == before  # refused before anything changed
    done = drorch(home, "failover", "--to", "tokyo", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    record = open_journal(home.config).run(json.loads(done.stdout)["run_id"])
    assert record is not None
    token = record.summary["fencing_token"]
    assert isinstance(token, int) and token > 0
    assert {step.detail.get("fencing_token") for step in record.steps} == {token}
    assert open_lease(home.config).current() is None  # released when the command ended


def test_a_run_that_loses_its_lease_stops_at_the_next_step(home: Lab, tmp_path: Path) -> None:
    book = paused_playbook(SWITCHOVER, "fence the current primary", tmp_path, "slow-switchover", seconds=3)
    store = open_lease(home.config)
    keeper = Keeper(store, "this-controller", 30)
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["result"] = execute(load_playbook(book), home.estate, {"to": "tokyo"},
                                    Options(approvals=frozenset({"*"}), lease=keeper), open_journal(home.config))

    worker = threading.Thread(target=run)
    worker.start()
    try:
        journal = open_journal(home.config)
        wait_for(lambda: any(s.name == "a long step" and s.status == "running"
                             for r in journal.runs(3) for s in r.steps), timeout=30)
        store.release(keeper.grant)  # as if it expired while this controller was stuck ...
        stolen = store.acquire("usurper", 30)  # ... and another controller took over
        worker.join(timeout=60)
    finally:
        keeper.close()
    result = outcome["result"]
    assert result.status == "failed" and result.exit_code == 4 and "lost the lease" in str(result.error)
    assert [s.name for s in result.steps if s.status == "succeeded"][-1] == "a long step"
    assert writable_sites(home) == ["seoul"] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"  # no fence
    store.release(stolen)


def _serve_config(lab: Lab, name: str) -> Path:
    """The lab's config with its own metrics port and a short lease, beside it so relative paths still work."""
    document = yaml.safe_load(lab.layout.config.read_text())
    document["metrics"]["listen"] = f"127.0.0.1:{free_port()}"
    document["state"]["lease"] = {"ttl_seconds": 3}
    path = lab.layout.root / f"drorch-{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_only_one_serve_leads_and_another_takes_over(home: Lab) -> None:
    rounds: dict[str, list[Round]] = {"a": [], "b": []}
    stops = {name: threading.Event() for name in rounds}
    threads = {name: threading.Thread(target=serve, args=(load_config(_serve_config(home, name)), stops[name],
                                                          rounds[name].append), daemon=True) for name in rounds}
    for thread in threads.values():
        thread.start()
    try:
        wait_for(lambda: all(len(r) >= 3 for r in rounds.values()), timeout=30)
        leaders = [name for name, seen in rounds.items() if seen[-1].leader]
        assert len(leaders) == 1
        follower = "b" if leaders == ["a"] else "a"
        assert "standing by: the controller lease is held by" in rounds[follower][-1].decision.reason
        stops[leaders[0]].set()
        threads[leaders[0]].join(timeout=15)
        wait_for(lambda: rounds[follower][-1].leader, timeout=15)  # released on stop: taken at the next round
    finally:
        for name, stop in stops.items():
            stop.set()
            threads[name].join(timeout=15)
    assert not any(thread.is_alive() for thread in threads.values())


def test_a_manual_failover_while_serve_leads_takes_the_lease_over_and_serve_leads_again(home: Lab) -> None:
    """On-call's `drorch failover` while `serve` holds the lease: serve hands it over, then takes it back."""
    rounds: list[Round] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(load_config(_serve_config(home, "leader")), stop, rounds.append),
                              daemon=True)
    thread.start()
    try:
        wait_for(lambda: rounds and rounds[-1].leader, timeout=30)
        started = time.time()
        done = drorch(home, "failover", "--to", "tokyo", "--yes", "--output", "json")
        assert done.returncode == 0, done.stderr  # not exit 4: serve handed the lease over
        assert writable_sites(home) == ["tokyo"]
        handed = [r for r in list(rounds) if r.snapshot.at > started and not r.leader]
        assert handed and "handed the lease over to a manual run" in handed[0].decision.reason
        wait_for(lambda: rounds[-1].leader and rounds[-1].snapshot.at > time.time() - 5, timeout=30)  # leads again
        run = open_journal(home.config).run(json.loads(done.stdout)["run_id"])
        assert run is not None and run.status == "succeeded"
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
