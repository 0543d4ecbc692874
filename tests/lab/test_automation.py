"""`serve` with automatic failover: it acts once when the primary dies, then blocks (anti-flapping).

This test breaks its lab beyond what the shared lab can be restored from (two primaries die), so it
starts its own lab and throws it away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drorch.config import load_config
from drorch.engine.actions import dns
from drorch.lab import chaos
from drorch.lab.control import Lab
from drorch.providers.estate import Estate
from drorch.serve.daemon import Round, serve
from drorch.state.backends import open_journal
from tests.helpers import running_lab, wait_for, writable_sites


@pytest.fixture(scope="module")
def own_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("autolab")) as started:
        yield started


def _with_automation(lab: Lab, name: str, automation: dict[str, Any]) -> Path:
    """The lab's config with an ``automation`` section, beside it so relative secret paths still work."""
    document = yaml.safe_load(lab.layout.config.read_text())
    document["automation"] = automation
    path = lab.layout.root / f"drorch-{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_no_automatic_failover_when_the_primary_answers_at_the_last_check(own_lab: Lab) -> None:
    from drorch.probes.detector import SiteVerdict, Verdicts
    from drorch.probes.result import Snapshot
    from drorch.serve.automation import consider

    config = load_config(_with_automation(own_lab, "recheck", {"auto_failover": True, "block_seconds": 0}))
    estate = Estate(config)
    primary = writable_sites(own_lab)[0]
    stale = Verdicts(time.time(), {s: SiteVerdict(s, s != primary, 0, 0.0) for s in config.sites}, primary, True,
                     "a controller that lost its own network for three rounds")
    decision = consider(estate, open_journal(config), Snapshot(time.time(), ()), stale)
    assert not decision.acted and "answers again" in decision.reason
    assert writable_sites(own_lab) == [primary]


def test_automatic_failover_once_then_blocked(own_lab: Lab) -> None:
    config = load_config(_with_automation(own_lab, "auto", {"auto_failover": True, "block_seconds": 3600}))
    rounds: list[Round] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(config, stop, rounds.append), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(rounds) >= 2, timeout=20)
        killed_at = time.time()
        chaos.kill_db(own_lab, "seoul")
        chaos.stop_app(own_lab, "seoul")
        acted = wait_for(lambda: next((r for r in list(rounds) if r.decision.acted), None), timeout=40)
        assert acted.decision.result is not None and acted.decision.result.status == "succeeded"
        assert acted.decision.result.to_site == "tokyo"
        assert acted.snapshot.at - killed_at < 10  # 3 rounds at 1 s, plus the replicas noticing
        assert writable_sites(own_lab) == ["tokyo"]
        assert dns.active_sites(own_lab.estate)["PRIMARY"] == "tokyo"
        automatic = [r for r in open_journal(config).runs() if r.summary.get("trigger") == "automatic"]
        assert len(automatic) == 1 and "no replica receives" in automatic[0].summary["reason"]
        summary = automatic[0].summary
        # serve knew seoul's last acknowledged heartbeat; semi-sync means tokyo had it: nothing lost
        assert summary["kind"] == "failover" and summary["rpo_seconds"] == 0.0
        assert summary["incident_at"] == acted.verdicts.at and summary["rto_seconds"] > summary["elapsed_seconds"]
        wait_for(lambda: _metric(config.metrics.listen, 'drorch_failover_total{result="succeeded",to="tokyo"}')
                 == 1.0, timeout=10)
        rto = _metric(config.metrics.listen, "drorch_last_failover_rto_seconds")
        assert rto is not None and 0 < rto < 30

        after = time.time()
        chaos.kill_db(own_lab, "tokyo")  # the new primary dies too: inside the block period, no second failover
        blocked = wait_for(lambda: next((r for r in list(rounds) if r.snapshot.at > after
                                         and "blocked" in r.decision.reason), None), timeout=40)
        assert not blocked.decision.acted
        time.sleep(2)
        assert not any(r.decision.acted for r in list(rounds) if r.snapshot.at > after)
        assert len([r for r in open_journal(config).runs() if r.summary.get("trigger") == "automatic"]) == 1
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()


def test_unknown_candidate_is_a_config_error(own_lab: Lab) -> None:
    from drorch.errors import InvalidInput

    path = _with_automation(own_lab, "bad", {"auto_failover": True, "candidates": ["osaka"]})
    with pytest.raises(InvalidInput, match=r"automation\.candidates\.0: unknown site 'osaka'"):
        load_config(path)


def _metric(listen: str, sample: str) -> float | None:
    import requests

    for line in requests.get(f"http://{listen}/metrics", timeout=5).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return None

