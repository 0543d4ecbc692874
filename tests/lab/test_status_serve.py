"""`drorch status` and `drorch serve` against the real lab: verdicts, lag, metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from drorch.lab import chaos
from drorch.lab.control import Lab
from drorch.probes.report import status
from drorch.serve.daemon import Round, serve
from drorch.state.backends import open_journal
from tests.helpers import restore_home, wait_for

METRICS = (
    "drorch_site_up", "drorch_probe_success", "drorch_probe_duration_seconds", "drorch_replication_lag_seconds",
    "drorch_replication_running", "drorch_semi_sync_active", "drorch_vpn_tunnel_up", "drorch_dns_active_site",
    "drorch_standby_ready", "drorch_objective_seconds",
)


@dataclass
class Serving:
    lab: Lab
    rounds: list[Round] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://{self.lab.config.metrics.listen}/metrics"

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = requests.get(self.url, timeout=5).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, tuple(sorted(labels.items()))))

    def rounds_since(self, at: float) -> list[Round]:
        return [r for r in list(self.rounds) if r.snapshot.at >= at]


@pytest.fixture()
def serving(lab: Lab) -> Iterator[Serving]:
    restore_home(lab)
    state = Serving(lab)
    thread = threading.Thread(target=serve, args=(lab.config, state.stop, state.rounds.append), daemon=True)
    thread.start()
    wait_for(lambda: len(state.rounds) >= 2, timeout=20)
    try:
        yield state
    finally:
        state.stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "serve did not stop on its stop event"
        restore_home(lab)


def test_status_reports_three_sites_with_roles_and_readiness(lab: Lab) -> None:
    restore_home(lab)
    doc = status(lab.estate).to_json(lab.estate)
    assert doc["primary"] == "seoul" and doc["writable"] == ["seoul"]
    assert doc["dns"]["primary"] == "seoul"
    assert set(doc["sites"]) == {"seoul", "tokyo", "nhn"}
    seoul, tokyo = doc["sites"]["seoul"], doc["sites"]["tokyo"]
    assert seoul["probes"]["database"]["detail"]["writable"] is True
    assert seoul["probes"]["database"]["detail"]["semi_sync_source_active"] is True
    assert tokyo["probes"]["database"]["detail"]["io_running"] is True
    assert tokyo["readiness"] == {"ready": True, "reasons": []}, tokyo["readiness"]
    assert 0 <= tokyo["probes"]["database"]["value"] < 1.0
    assert seoul["readiness"] is None  # the primary is not a standby


def test_status_cli_json_and_text_and_bad_config(lab: Lab, tmp_path: Path) -> None:
    def drorch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True,
                              timeout=60, check=False)

    result = drorch("status", "--config", str(lab.layout.config), "--output", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["primary"] == "seoul"
    assert json.loads(result.stdout)["observer"]["by"] == "status"  # no serve is running: probed now
    text = drorch("status", "--config", str(lab.layout.config))
    assert text.returncode == 0 and "seoul" in text.stdout and "replica" in text.stdout
    broken = tmp_path / "drorch.yaml"
    broken.write_text(lab.layout.config.read_text().replace("failure_threshold: 3", "failure_treshold: 3"))
    bad = drorch("status", "--config", str(broken))
    assert bad.returncode == 2
    assert f"{broken}:" in bad.stderr and "detection.failure_treshold" in bad.stderr and "unknown key" in bad.stderr


def test_status_shows_the_view_of_a_running_serve_unless_fresh(serving: Serving) -> None:
    def drorch_status(*extra: str) -> dict[str, Any]:
        result = subprocess.run([sys.executable, "-m", "drorch.cli", "status", "--config",
                                 str(serving.lab.layout.config), "--output", "json", *extra],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    served = drorch_status()
    assert served["observer"]["by"] == "serve" and 0 <= served["observer"]["age_seconds"] < 3.0
    assert f":{os.getpid()}/serve-" in served["lease"]["holder"]  # the serve running in this test process leads
    assert served["primary"] == "seoul" and served["sites"]["tokyo"]["readiness"] is not None
    fresh = drorch_status("--fresh")
    assert fresh["observer"] == {"by": "status", "age_seconds": 0.0} and fresh["primary"] == "seoul"


def test_serve_exports_every_metric_with_sensible_values(serving: Serving) -> None:
    wait_for(lambda: serving.value("drorch_replication_lag_seconds", store="mysql", source="seoul", replica="tokyo")
             is not None, timeout=15)
    names = {name for name, _ in serving.samples()}
    for metric in METRICS:
        assert any(n == metric or n.startswith(metric + "_") for n in names), metric
    assert serving.value("drorch_site_up", site="seoul") == 1
    assert serving.value("drorch_semi_sync_active", site="seoul") == 1
    assert serving.value("drorch_replication_running", replica="tokyo") == 1
    assert serving.value("drorch_dns_active_site", record=serving.lab.config.dns.record, site="seoul") == 1
    assert serving.value("drorch_dns_active_site", record=serving.lab.config.dns.record, site="tokyo") == 0
    assert serving.value("drorch_objective_seconds", objective="rpo") == serving.lab.config.objectives.rpo_seconds
    def lag() -> float | None:
        return serving.value("drorch_replication_lag_seconds", store="mysql", source="seoul", replica="tokyo")

    wait_for(lambda: (value := lag()) is not None and value < 1.0, timeout=10)  # heartbeats every 250 ms
    # a scrape may fall between the lag and the readiness update of one round: wait for a consistent one
    wait_for(lambda: serving.value("drorch_standby_ready", site="tokyo") == 1, timeout=10)
    tunnels = [v for (n, labels), v in serving.samples().items() if n == "drorch_vpn_tunnel_up"]
    assert tunnels == [1.0, 1.0]


def test_killed_primary_is_down_after_the_threshold_and_not_before(serving: Serving) -> None:
    threshold = serving.lab.config.detection.failure_threshold
    killed_at = time.time()
    chaos.kill_db(serving.lab, "seoul")
    dead = wait_for(lambda: next((r for r in serving.rounds_since(killed_at) if r.verdicts.primary_database_dead),
                                 None), timeout=30)
    rounds = serving.rounds_since(killed_at)
    first_down = next(i for i, r in enumerate(rounds) if not r.verdicts.sites["seoul"].up)
    assert first_down >= threshold - 1  # the round of the kill may already fail: it counts as the first
    assert all(r.verdicts.sites["seoul"].up for r in rounds[: threshold - 1])
    assert "no replica receives" in dead.verdicts.reason
    for replica in ("tokyo", "nhn"):
        result = dead.snapshot.get(replica, "database")
        assert result is not None and result.ok and result.detail["io_running"] is False
    wait_for(lambda: serving.value("drorch_site_up", site="seoul") == 0, timeout=10)


def test_delayed_replica_shows_growing_lag_that_clears(serving: Serving) -> None:
    chaos.delay_replica(serving.lab, "tokyo", 3)
    try:
        def lag() -> float:
            value = serving.value("drorch_replication_lag_seconds", store="mysql", source="seoul", replica="tokyo")
            return value or 0.0

        assert wait_for(lambda: lag() >= 2.5, timeout=20) and lag() < 4.5
        wait_for(lambda: serving.value("drorch_standby_ready", site="tokyo") == 0, timeout=10)
    finally:
        chaos.delay_replica(serving.lab, "tokyo", 0)
    wait_for(lambda: lag() < 1.0, timeout=20)


def test_stopped_replication_lag_keeps_growing(serving: Serving) -> None:
    nhn = serving.lab.admin("nhn")
    nhn.execute("STOP SLAVE")
    try:
        wait_for(lambda: serving.value("drorch_replication_running", replica="nhn") == 0, timeout=10)
        first = serving.value("drorch_replication_lag_seconds", store="mysql", source="seoul", replica="nhn") or 0.0
        time.sleep(2.5)
        later = serving.value("drorch_replication_lag_seconds", store="mysql", source="seoul", replica="nhn") or 0.0
        assert later >= first + 1.5
    finally:
        nhn.execute("START SLAVE")
    wait_for(lambda: serving.value("drorch_replication_running", replica="nhn") == 1, timeout=10)


def test_serve_cli_stops_gracefully_on_sigterm(lab: Lab) -> None:
    import signal

    restore_home(lab)
    proc = subprocess.Popen([sys.executable, "-m", "drorch.cli", "serve", "--config", str(lab.layout.config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://{lab.config.metrics.listen}/metrics"

        def scraped() -> bool:
            try:
                return "drorch_site_up" in requests.get(url, timeout=1).text
            except requests.RequestException:
                return False

        wait_for(scraped, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert open_journal(lab.config).latest_status() is None  # nobody keeps it current any more
        _, stderr = proc.communicate(timeout=5)
        assert "drorch serve: stopped" in stderr
        with pytest.raises(requests.RequestException):
            requests.get(url, timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
