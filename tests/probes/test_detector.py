"""Detector and readiness logic on synthetic probe rounds: thresholds, hysteresis, holistic verdicts."""

from __future__ import annotations

import pytest

from drorch.config.schema import Config
from drorch.probes.detector import Detector
from drorch.probes.readiness import assess
from drorch.probes.result import ProbeResult, Snapshot
from tests.synthetic import SITES, app, db, synthetic_config


@pytest.fixture()
def config() -> Config:
    return synthetic_config()


def round_(at: float, seoul_up: bool = True, replicas_io: bool = True) -> Snapshot:
    return Snapshot(at, (
        app("seoul", seoul_up), db("seoul", ok=seoul_up, writable=True),
        app("tokyo"), db("tokyo", io=replicas_io), app("nhn"), db("nhn", io=replicas_io),
    ))


def test_site_is_down_only_after_threshold_consecutive_failures(config: Config) -> None:
    detector = Detector(config)
    assert detector.observe(round_(1)).sites["seoul"].up
    assert detector.observe(round_(2, seoul_up=False)).sites["seoul"].up
    assert detector.observe(round_(3, seoul_up=False)).sites["seoul"].up
    verdict = detector.observe(round_(4, seoul_up=False)).sites["seoul"]
    assert not verdict.up and verdict.since == 4


def test_one_good_round_resets_the_count_and_recovery_needs_the_threshold_too(config: Config) -> None:
    detector = Detector(config)
    for at in (1, 2):
        detector.observe(round_(at, seoul_up=False))
    detector.observe(round_(3))  # one lost probe never flips a verdict, and a success resets the streak
    for at in (4, 5):
        assert detector.observe(round_(at, seoul_up=False)).sites["seoul"].up
    assert not detector.observe(round_(6, seoul_up=False)).sites["seoul"].up
    assert not detector.observe(round_(7)).sites["seoul"].up
    assert not detector.observe(round_(8)).sites["seoul"].up
    assert detector.observe(round_(9)).sites["seoul"].up


def test_primary_dead_only_when_the_replicas_agree(config: Config) -> None:
    detector = Detector(config)
    detector.observe(round_(1))
    verdicts = [detector.observe(round_(at, seoul_up=False, replicas_io=False)) for at in (2, 3, 4)]
    assert [v.primary_database_dead for v in verdicts] == [False, False, True]
    assert verdicts[-1].primary == "seoul"


def test_partition_is_not_a_dead_primary(config: Config) -> None:
    detector = Detector(config)
    detector.observe(round_(1))
    for at in (2, 3, 4, 5):
        verdict = detector.observe(round_(at, seoul_up=False, replicas_io=True))
    assert not verdict.primary_database_dead
    assert "partition" in verdict.reason


def test_readiness_lists_every_reason(config: Config) -> None:
    snapshot = Snapshot(1, (
        app("seoul"), db("seoul", writable=True, gtid="0-1-10"),
        app("tokyo"), db("tokyo", lag=2.5),
        app("nhn", ok=False), db("nhn", io=False, lag=None, gtid="0-1-10,1-3-2", source="10.0.0.1:3302"),
    ))
    ready = assess(config, snapshot, "seoul")
    assert set(ready) == {"tokyo", "nhn"}
    assert not ready["tokyo"].ready
    assert ready["tokyo"].reasons == ("replication lag 2.50 s exceeds the RPO objective 1 s",)
    reasons = " | ".join(ready["nhn"].reasons)
    for expected in ("replication is not running", "replicates from 10.0.0.1:3302", "no heartbeat",
                     "errant GTIDs not on the primary: 1-3-2", "application unhealthy"):
        assert expected in reasons


def test_a_replica_ahead_of_an_older_primary_reading_is_not_errant(config: Config) -> None:
    """Probes read the primary and the replica a moment apart; the primary's own newer write is not errant."""
    def reasons(replica_gtid: str) -> tuple[str, ...]:
        snapshot = Snapshot(1, (app("seoul"), db("seoul", writable=True, gtid="0-1-10"),
                                app("tokyo"), db("tokyo", lag=0.2, gtid=replica_gtid)))
        return assess(config, snapshot, "seoul")["tokyo"].reasons

    assert reasons("0-1-11") == ()
    assert reasons("0-2-11") == ("errant GTIDs not on the primary: 0-2-11",)


def test_a_healthy_caught_up_standby_is_ready(config: Config) -> None:
    snapshot = Snapshot(1, (app("seoul"), db("seoul", writable=True), app("tokyo"), db("tokyo", lag=0.2)))
    assert assess(config, snapshot, "seoul")["tokyo"].ready


def test_a_round_where_nothing_answered_counts_neither_way(config: Config) -> None:
    detector = Detector(config)
    detector.observe(round_(1, seoul_up=False))
    detector.observe(round_(2, seoul_up=False))
    blind = Snapshot(3, tuple(ProbeResult(s, p, False, None, 0.0, {}, "timed out")
                            for s in SITES for p in ("app", "database")))
    verdict = detector.observe(blind)
    assert verdict.sites["seoul"].up and not verdict.primary_database_dead and "inconclusive" in verdict.reason
    assert not detector.observe(round_(4, seoul_up=False, replicas_io=False)).sites["seoul"].up  # the streak goes on
