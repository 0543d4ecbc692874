"""A real Prometheus (Debian's) scrapes `drorch serve` on the lab with drorch's alert rules loaded.

Every dashboard query must be accepted and, where the lab produces the metric, return data; lab
chaos must make the matching alerts pending, then firing, in Prometheus's own /api/v1/alerts; a
healthy lab, even after a failover round trip, must fire nothing. The rules are loaded as a copy
whose `for:` is shortened to FOR, so the test need not wait minutes.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from drorch.drill.switchover import drill
from drorch.lab import chaos
from drorch.lab.control import Lab
from drorch.serve.daemon import Round, serve
from drorch.state.backends import open_journal
from tests.helpers import restore_home, wait_for
from tests.observability.tools import (
    PROMETHEUS_EXAMPLE,
    RULES,
    committed_dashboards,
    panel_queries,
    require,
    substitute,
    variable_queries,
)

FOR = "2s"
INTERVAL = "1s"


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: Any) -> Any:
        assert self.process.poll() is None, f"prometheus exited; see {self.log}:\n{self.log.read_text()[-2000:]}"
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [data["result"]]
        return result

    def alerts(self, name: str | None = None, **labels: str) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"]
                if (name is None or a["labels"]["alertname"] == name)
                and all(a["labels"].get(k) == v for k, v in labels.items())]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rules_with_short_for(path: Path) -> None:
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["for"] = FOR
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _config(path: Path, rules: Path, target: str) -> None:
    """The shipped example config, pointed at the lab's `drorch serve`, with 1 s scrapes and evaluations."""
    doc = yaml.safe_load(PROMETHEUS_EXAMPLE.read_text())
    doc["global"] = {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL, "scrape_timeout": INTERVAL}
    doc["rule_files"] = [str(rules)]
    (job,) = doc["scrape_configs"]
    assert job["job_name"] == "drorch"
    job["static_configs"] = [{"targets": [target], "labels": {"env": "lab"}}]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def observed(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """`drorch serve` on the lab in a thread, scraped by a real Prometheus with the rules loaded."""
    binary = require("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    rules, config, log = work / "drorch.rules.yaml", work / "prometheus.yml", work / "prometheus.log"
    _rules_with_short_for(rules)
    _config(config, rules, lab.config.metrics.listen)
    restore_home(lab)
    rounds: list[Round] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(lab.config, stop, rounds.append), daemon=True)
    thread.start()
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                   stdout=out, stderr=subprocess.STDOUT)
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log)
    try:
        def ready() -> bool:
            assert process.poll() is None, f"prometheus exited at start:\n{log.read_text()[-2000:]}"
            try:
                return requests.get(f"{prometheus.url}/-/ready", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, timeout=30, interval=0.2)
        wait_for(lambda: len(rounds) >= 2, timeout=20)
        # the rules loaded as written, and a few scrapes of serve arrived
        loaded = {r["name"] for g in prometheus.api("rules")["groups"] for r in g["rules"]}
        assert "DrorchPrimaryDown" in loaded
        wait_for(lambda: prometheus.query('count_over_time(drorch_site_up{job="drorch",site="seoul"}[1m]) >= 3'),
                 timeout=20, interval=0.5)
        yield prometheus
    finally:
        process.terminate()  # by its PID
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "serve did not stop on its stop event"
        restore_home(lab)


def _firing(prometheus: Prometheus) -> set[str]:
    return {a["labels"]["alertname"] for a in prometheus.alerts() if a["state"] == "firing"}


def test_every_dashboard_query_is_valid_and_has_data_after_a_drill(observed: Prometheus, lab: Lab) -> None:
    # a real drill (a journaled switchover there and back under load), so failover and drill panels have data
    result = drill(lab.estate, "tokyo", 10.0, open_journal(lab.config))
    assert result.status == "succeeded", result
    restore_home(lab)
    wait_for(lambda: observed.query('drorch_failover_total{to="tokyo",result="succeeded"}'), timeout=15)
    checked = 0
    for name, board in committed_dashboards().items():
        for where, expr in panel_queries(board):
            query = substitute(expr)
            observed.query(query)  # accepted by Prometheus, or the assertion in api() says why
            checked += 1
            if where.startswith("annotation"):
                continue
            wait_for(partial(observed.query, query), timeout=10, interval=0.5)
        for var, definition in variable_queries(board):
            metric_and_label = definition.removeprefix("label_values(").removesuffix(")")
            selector, label = (part.strip() for part in metric_and_label.rsplit(",", 1))
            values = observed.api(f"label/{label}/values", **{"match[]": substitute(selector)})
            assert values, f"{name}: variable {var} ({definition}) has no values on the lab"
    assert checked >= 30


def test_a_healthy_lab_fires_nothing_even_after_a_failover_round_trip(observed: Prometheus) -> None:
    # gauges keep the label sets of the old topology (tokyo's replication series from when it was a
    # replica, and so on): the rules must not mistake them for problems
    wait_for(lambda: not observed.alerts(), timeout=30, interval=0.5)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert not _firing(observed), observed.alerts()
        time.sleep(0.5)


def test_killing_the_primary_database_fires_drorch_primary_down_alone(observed: Prometheus, lab: Lab) -> None:
    states: list[str] = []

    def primary_down_firing() -> dict[str, Any] | None:
        found = observed.alerts("DrorchPrimaryDown", site="seoul")
        states.extend(a["state"] for a in found)
        return next((a for a in found if a["state"] == "firing"), None)

    chaos.kill_db(lab, "seoul")
    try:
        alert = wait_for(primary_down_firing, timeout=40, interval=0.25)
        assert "pending" in states, "the alert must be pending for `for:` before it fires"
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["runbook_url"] == "runbooks/alert-drorch-primary-down.md"
        assert "seoul" in alert["annotations"]["summary"]
        # replication stopped, standbys not ready, lag growing: all true, all one cause. No storm.
        assert _firing(observed) == {"DrorchPrimaryDown"}, observed.alerts()
    finally:
        restore_home(lab)
    wait_for(lambda: not observed.alerts("DrorchPrimaryDown"), timeout=30, interval=0.5)


def test_a_replica_delayed_beyond_the_rpo_fires_the_lag_alert(observed: Prometheus, lab: Lab) -> None:
    rpo = lab.config.objectives.rpo_seconds
    chaos.delay_replica(lab, "tokyo", 3)
    try:
        alert = wait_for(lambda: next((a for a in observed.alerts("DrorchReplicationLagAboveObjective",
                                                                    replica="tokyo", store="mysql")
                                       if a["state"] == "firing"), None), timeout=40, interval=0.25)
        assert alert["labels"]["source"] == "seoul" and alert["labels"]["severity"] == "warning"
        assert float(alert["value"]) > rpo
        assert alert["annotations"]["runbook_url"] == "runbooks/alert-drorch-replication-lag-above-objective.md"
        # the lag makes tokyo unready too (readiness wants lag within the RPO); nhn still is
        wait_for(lambda: observed.alerts("DrorchStandbyNotReady", site="tokyo"), timeout=20, interval=0.25)
        assert not observed.alerts("DrorchNoStandbyReady")
        assert not observed.alerts("DrorchReplicationLagAboveObjective", replica="nhn")
    finally:
        chaos.delay_replica(lab, "tokyo", 0)
    wait_for(lambda: not observed.alerts("DrorchReplicationLagAboveObjective"), timeout=30, interval=0.5)
