"""Secrets canary: the lab's database passwords appear in no output, journal, state file, report or metric."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import requests

from drorch.lab.control import Lab
from drorch.serve.daemon import Round, serve
from tests.helpers import wait_for


def test_no_secret_leaves_through_any_channel(home: Lab) -> None:
    secrets = {path.name: path.read_text().strip() for path in home.layout.secrets.iterdir()}
    assert secrets and all(len(value) >= 12 for value in secrets.values())  # recognisable, not a common word
    env = {**os.environ, "DRORCH_CONFIG": str(home.layout.config)}

    def drorch(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True, env=env,
                              timeout=240, check=False, stdin=subprocess.DEVNULL)
        seen.append(done.stderr)
        return done.stdout

    seen: list[str] = []
    seen += [drorch("status", "--fresh", "--output", "json"), drorch("plan", "--to", "tokyo"),
            drorch("failover", "--to", "tokyo", "--yes", "--output", "json"),
            drorch("failback", "--yes", "--output", "json"), drorch("runs", "list", "--output", "json")]
    drill = drorch("drill", "--to", "tokyo", "--load", "10", "--yes", "--output", "json")
    seen += [drill, drorch("report", json.loads(drill)["run_id"])]
    seen.append(drorch("failover", "--to", "osaka", "--yes"))  # an error message
    rounds: list[Round] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(home.config, stop, rounds.append), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(rounds) >= 2, timeout=30)
        seen.append(requests.get(f"http://{home.config.metrics.listen}/metrics", timeout=5).text)
    finally:
        stop.set()
        thread.join(timeout=15)
    state_dir = home.config.resolve_path(home.config.state.path).parent
    for path in state_dir.rglob("*"):
        if path.is_file():
            seen.append(path.read_bytes().decode("utf-8", "replace"))
    assert len(seen) > 15  # nine commands (stdout and stderr), the metrics, the state files
    for name, value in secrets.items():
        leaks = [index for index, text in enumerate(seen) if value in text]
        assert not leaks, f"secret {name} leaked through channels {leaks}"
