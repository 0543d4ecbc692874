"""Two controllers racing `drorch failover --to tokyo` at the same moment: exactly one acts, the other exits 4."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from drorch.lab.control import Lab
from drorch.state.backends import open_journal
from tests.helpers import paused_playbook, restore_home, stop_process, writable_sites

FAILOVER_TO_TOKYO = Path(__file__).resolve().parents[2] / "playbooks" / "failover-to-tokyo.yaml"


@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_two_controllers_racing_a_failover_exactly_one_acts(home: Lab, tmp_path: Path, backend: str,
                                                            request: pytest.FixtureRequest) -> None:
    document = yaml.safe_load(home.layout.config.read_text())
    if backend == "etcd":
        document["state"]["lease"] = {"backend": "etcd", "etcd_endpoints": [request.getfixturevalue("etcd")],
                                      "key": f"/drorch-race/{uuid.uuid4().hex}"}
    config = home.layout.root / f"drorch-race-{backend}.yaml"  # beside the lab's: its relative paths hold
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    # the winner holds the lease 3 s before its first change, so the loser surely finds it held
    book = paused_playbook(FAILOVER_TO_TOKYO, "fence the current primary", tmp_path, "race", seconds=3)
    env = {**os.environ, "DRORCH_CONFIG": str(config)}
    argv = [sys.executable, "-m", "drorch.cli", "failover", "--to", "tokyo", "--yes", "--output", "json",
            "--playbook", str(book)]
    started = time.time()
    racers = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL) for _ in range(2)]
    try:
        outputs = [racer.communicate(timeout=180) for racer in racers]
        codes = sorted(racer.returncode for racer in racers)
        assert codes == [0, 4], outputs
        loser = next(out for racer, out in zip(racers, outputs, strict=True) if racer.returncode == 4)
        assert "held by" in json.loads(loser[0])["error"], loser
        runs = [r for r in open_journal(home.config).runs(50)
                if r.operation == "failover" and r.started_at >= started]
        assert [r.status for r in runs] == ["succeeded"]  # one acted; the other left no run at all
        assert writable_sites(home) == ["tokyo"]
    finally:
        for racer in racers:
            stop_process(racer)
        config.unlink()
        restore_home(home)
