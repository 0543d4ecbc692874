"""Probe rounds on the real lab with faults injected in the probe transport."""

from __future__ import annotations

import random
from collections import Counter

from drorch.lab.control import Lab
from drorch.probes.collect import Collector
from drorch.probes.detector import Detector
from tests.helpers import restore_home


def test_a_probe_lost_twice_in_a_round_is_retried_and_one_lost_every_time_fails(lab: Lab) -> None:
    restore_home(lab)
    attempts: Counter[tuple[str, str]] = Counter()

    def lose_first_two(site: str, probe: str) -> bool:
        attempts[(site, probe)] += 1
        return attempts[(site, probe)] <= 2 or (site == "nhn" and probe == "app")

    collector = Collector(lab.estate, fault=lose_first_two)
    try:
        snapshot = collector.round()
    finally:
        collector.close()
    seoul_db = snapshot.get("seoul", "database")
    assert seoul_db is not None and seoul_db.ok and attempts[("seoul", "database")] == 3
    nhn_app = snapshot.get("nhn", "app")
    assert nhn_app is not None and not nhn_app.ok and nhn_app.error == "injected fault: probe lost"


def test_random_loss_of_30_percent_gives_no_false_verdict(lab: Lab) -> None:
    restore_home(lab)
    draw = random.Random(20261122)
    lost = Counter[str]()

    def lossy(site: str, probe: str) -> bool:
        if draw.random() < 0.3:
            lost[probe] += 1
            return True
        return False

    collector = Collector(lab.estate, fault=lossy)
    detector = Detector(lab.config)
    try:
        verdicts = [detector.observe(collector.round()) for _ in range(40)]
    finally:
        collector.close()
    assert sum(lost.values()) > 100  # the transport really lost probes
    assert all(v.sites[s].up for v in verdicts for s in v.sites)
    assert not any(v.primary_database_dead for v in verdicts)
