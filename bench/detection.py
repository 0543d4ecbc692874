"""Failure detection: time to detect a killed primary, and false verdicts under lossy probes.

Run: .venv/bin/python bench/detection.py [--kills 5] [--minutes 10] [--other-minutes 3] [--p 0.3]
Writes bench/results/detection.json and prints Markdown tables (medians).

(a) ``serve`` runs on the lab in a thread (interval I = 1 s, threshold N = 3: the lab defaults). seoul's
    MariaDB is SIGKILLed at a random phase of the probe cycle; measured: time from the kill to the first
    round whose verdict says seoul is down, and to ``primary_database_dead``. Target: <= I x N + 0.5 s.
    Between kills the lab is restored as tests/helpers.py ``restore_home`` does (heal, then
    ``failover(estate, "seoul")``, which makes the restarted, read-only seoul writable again).
    Baseline (same run): the detector's own floor, (N - 1) x I plus one probe round, and the measured
    duration of the probe rounds during the outage.

(b) ``serve`` runs on the healthy lab with a fault injector; every verdict of a site down or of the primary
    dead is false. The Collector asks the injector once per probe *attempt* (it tries a failed probe up to
    ``detection.probe_attempts`` times within a round). "30 % of probe rounds randomly failing" is read as
    (the primary reading):
      per_attempt      - every probe attempt is lost independently with probability p: random transport
                         loss, the lost pings a detector is meant to absorb;
    and also measured (shorter live runs) under the other readings, where the loss lasts a whole round:
      per_probe_round  - each probe of each site is lost for the whole round (all attempts) with probability p;
      per_site_round   - each site's whole probe round (all probes, all attempts) is lost with probability p;
      all_probes_round - every probe of the estate is lost for the whole round with probability p.
    Each reading is also replayed for many rounds through drorch's real ``Collector`` (its probe calls
    replaced by instant calls returning a real healthy round from the same lab, retry pause set to 0) and
    real ``Detector``, which gives the expected false-verdict rate with a small statistical error.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench_common import code_version

from drorch.config.schema import Config
from drorch.engine.failover import failover
from drorch.lab import chaos, lifecycle
from drorch.lab.control import Lab, open_lab
from drorch.probes import collect
from drorch.probes.collect import Collector
from drorch.probes.detector import Detector, Verdicts
from drorch.probes.result import ProbeResult, Snapshot
from drorch.providers.estate import Estate
from drorch.serve.daemon import Round, serve

RESULTS = Path(__file__).parent / "results" / "detection.json"
VICTIM = "seoul"
INJECTED = "injected fault: probe lost"  # the error text Collector gives a dropped probe
READINGS = ("per_attempt", "per_probe_round", "per_site_round", "all_probes_round")
PRIMARY_READING = "per_attempt"


@dataclass
class Seen:
    """A round as the benchmark saw it: when its verdict was known, and what it said."""

    known_at: float
    snapshot: Snapshot
    verdicts: Verdicts


class Watcher:
    """Runs ``serve`` in a thread and records every round (bounded by the run's length)."""

    def __init__(self, config: Config, fault: LossyProbes | None = None) -> None:
        self.rounds: list[Seen] = []
        self._fault = fault
        self._stop = threading.Event()
        self._thread = threading.Thread(target=serve, args=(config, self._stop, self._on_round, fault),
                                        name="bench-serve", daemon=True)

    def _on_round(self, item: Round) -> None:
        self.rounds.append(Seen(time.time(), item.snapshot, item.verdicts))
        if self._fault is not None:
            self._fault.next_round()  # serve calls on_round between one probe round and the next

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def wait(self, check: Callable[[Seen], bool], after: float, timeout: float) -> Seen | None:
        """The first round known after ``after`` that passes ``check``; None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        index = 0
        while time.monotonic() < deadline:
            while index < len(self.rounds):
                seen = self.rounds[index]
                index += 1
                if seen.known_at > after and check(seen):
                    return seen
            time.sleep(0.02)
        return None


def healthy_home(seen: Seen) -> bool:
    """seoul up and writable, every site up, and both replicas receiving from seoul."""
    v, snap = seen.verdicts, seen.snapshot
    if v.primary_database_dead or v.primary != VICTIM or not all(s.up for s in v.sites.values()):
        return False
    seoul = snap.get(VICTIM, "database")
    if seoul is None or not seoul.ok or not seoul.detail.get("writable"):
        return False
    replicas = [snap.get(site, "database") for site in v.sites if site != VICTIM]
    return all(r is not None and r.ok and r.detail.get("io_running") for r in replicas)


def restore(lab: Lab) -> None:
    """tests/helpers.py ``restore_home`` for the case of a killed seoul: restart, make writable, re-replicate."""
    chaos.heal(lab)
    result = failover(lab.estate, VICTIM)
    if result.status != "succeeded":
        raise SystemExit(f"could not restore {VICTIM} as primary: {result.to_json()}")
    for site in lab.state.sites:
        if site != VICTIM:
            lab.admin(site).execute("START SLAVE")


def detection_only(config: Config) -> Config:
    """The lab's config with automatic failover off: this measures detection, not what serve then does."""
    automation = getattr(config, "automation", None)
    if automation is None or not getattr(automation, "auto_failover", False):
        return config
    return config.model_copy(update={"automation": automation.model_copy(update={"auto_failover": False})})


def kill_runs(lab: Lab, config: Config, kills: int, rng: random.Random) -> list[dict[str, Any]]:
    interval = config.detection.interval_seconds
    out: list[dict[str, Any]] = []
    with Watcher(config) as watcher:
        if watcher.wait(healthy_home, 0.0, 60) is None:
            raise SystemExit("the lab never looked healthy to serve")
        for run in range(kills):
            time.sleep(rng.uniform(0, interval))  # the kill lands at a random phase of the probe cycle
            killed_at = time.time()
            chaos.kill_db(lab, VICTIM)
            down = watcher.wait(lambda s: not s.verdicts.sites[VICTIM].up, killed_at, 30)
            dead = watcher.wait(lambda s: s.verdicts.primary_database_dead, killed_at, 30)
            after = [s for s in watcher.rounds if s.snapshot.at >= killed_at and
                     (dead is None or s.known_at <= dead.known_at)]
            durations = [s.known_at - s.snapshot.at for s in after]
            row = {
                "run": run,
                "down_seconds": None if down is None else round(down.known_at - killed_at, 3),
                "dead_seconds": None if dead is None else round(dead.known_at - killed_at, 3),
                "down_round_started_after_kill": None if down is None else round(down.snapshot.at - killed_at, 3),
                "first_round_after_kill_started": round(after[0].snapshot.at - killed_at, 3) if after else None,
                "rounds_until_dead": len(after),
                "round_seconds_median": round(statistics.median(durations), 3) if durations else None,
                "dead_reason": None if dead is None else dead.verdicts.reason,
            }
            out.append(row)
            print(json.dumps(row), flush=True)
            restored_at = time.time()
            restore(lab)
            if watcher.wait(healthy_home, restored_at, 60) is None:
                raise SystemExit("serve did not see the restored lab as healthy within 60 s")
    return out


class LossyProbes:
    """A fault injector that loses probe attempts under one reading of "30 % of probe rounds fail".

    The Collector calls it once per probe attempt, from its pool threads; ``next_round`` marks the start of
    the next round (the Watcher calls it from serve's on_round, which runs between two rounds).
    """

    def __init__(self, reading: str, p: float, seed: int) -> None:
        if reading not in READINGS:
            raise ValueError(f"unknown reading {reading}")
        self.reading, self.p = reading, p
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._draws: dict[str, bool] = {}
        self.attempts = 0
        self.lost = 0

    def next_round(self) -> None:
        with self._lock:
            self._draws.clear()

    def __call__(self, site: str, probe: str) -> bool:
        with self._lock:
            self.attempts += 1
            if self.reading == "per_attempt":
                lost = self._rng.random() < self.p
            else:
                key = {"per_probe_round": f"{site}/{probe}", "per_site_round": site,
                       "all_probes_round": "*"}[self.reading]
                if key not in self._draws:
                    self._draws[key] = self._rng.random() < self.p
                lost = self._draws[key]
            self.lost += lost
            return lost


@dataclass
class FalseVerdicts:
    rounds: int = 0
    rounds_any_site_down: int = 0
    down_transitions: dict[str, int] = field(default_factory=dict)
    rounds_primary_dead: int = 0
    dead_transitions: int = 0
    partition_reason_rounds: int = 0
    site_rounds_lost: dict[str, int] = field(default_factory=dict)
    real_probe_failures: int = 0
    probe_attempts_seen: int = 0
    probe_attempts_lost: int = 0
    real_failure_examples: list[str] = field(default_factory=list)

    def count(self, snapshot: Snapshot, verdicts: Verdicts, previous: Verdicts | None) -> None:
        self.rounds += 1
        if any(not s.up for s in verdicts.sites.values()):
            self.rounds_any_site_down += 1
        for name, site in verdicts.sites.items():
            was_up = previous.sites[name].up if previous is not None else True
            if was_up and not site.up:
                self.down_transitions[name] = self.down_transitions.get(name, 0) + 1
            if any(r.error == INJECTED for r in snapshot.for_site(name)):
                self.site_rounds_lost[name] = self.site_rounds_lost.get(name, 0) + 1
        if verdicts.primary_database_dead:
            self.rounds_primary_dead += 1
            if previous is None or not previous.primary_database_dead:
                self.dead_transitions += 1
        if "partition" in verdicts.reason:
            self.partition_reason_rounds += 1
        for result in snapshot.results:
            if not result.ok and result.error != INJECTED:
                self.real_probe_failures += 1
                if len(self.real_failure_examples) < 5:
                    self.real_failure_examples.append(f"{result.site}/{result.probe}: {result.error}")

    def to_json(self, per: int) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.__dict__)
        transitions = sum(self.down_transitions.values())
        doc["false_verdicts"] = transitions + self.dead_transitions
        doc[f"down_transitions_per_{per}_rounds"] = round(transitions * per / max(1, self.rounds), 2)
        doc[f"dead_transitions_per_{per}_rounds"] = round(self.dead_transitions * per / max(1, self.rounds), 2)
        return doc


def live_faults(config: Config, reading: str, p: float, minutes: float,
                seed: int) -> tuple[FalseVerdicts, Snapshot | None]:
    """serve on the healthy lab with lossy probes for ``minutes``; every down/dead verdict is false."""
    injector = LossyProbes(reading, p, seed)
    counts = FalseVerdicts()
    healthy: Snapshot | None = None
    with Watcher(config, injector) as watcher:
        deadline = time.monotonic() + minutes * 60
        index, previous = 0, None
        while time.monotonic() < deadline:
            time.sleep(0.5)
            while index < len(watcher.rounds):
                seen = watcher.rounds[index]
                index += 1
                counts.count(seen.snapshot, seen.verdicts, previous)
                previous = seen.verdicts
                if healthy is None and all(r.ok for r in seen.snapshot.results):
                    healthy = seen.snapshot
    counts.probe_attempts_seen, counts.probe_attempts_lost = injector.attempts, injector.lost
    print(json.dumps({"reading": reading, "live_minutes": minutes, **counts.to_json(600)}), flush=True)
    return counts, healthy


def replay(config: Config, healthy: Snapshot, reading: str, p: float, rounds: int, seed: int) -> FalseVerdicts:
    """``rounds`` rounds through the real Collector and Detector, every probe answering like a real healthy round.

    Only the probe calls are replaced (by instant calls returning the recorded healthy results) and the retry
    pause is set to 0, so attempts, retries, fault injection and refresh caching are the library's own.
    """
    injector = LossyProbes(reading, p, seed)
    collector = Collector(Estate(config), fault=injector)
    collector._calls = [(r.site, r.probe, partial(_same, r)) for r in healthy.results]
    detector = Detector(config)
    counts = FalseVerdicts()
    previous = None
    pause, collect.RETRY_PAUSE = collect.RETRY_PAUSE, 0.0
    try:
        for _ in range(rounds):
            snapshot = collector.round()
            injector.next_round()
            verdicts = detector.observe(snapshot)
            counts.count(snapshot, verdicts, previous)
            previous = verdicts
    finally:
        collect.RETRY_PAUSE = pause
        collector.close()
    counts.probe_attempts_seen, counts.probe_attempts_lost = injector.attempts, injector.lost
    return counts


def _same(result: ProbeResult) -> ProbeResult:
    return result


def expected_site_loss(reading: str, p: float, attempts: int) -> float:
    """Probability that one site looks unhealthy in a round (it needs both its app and database probes)."""
    probe_lost = {"per_attempt": p ** attempts, "per_probe_round": p}.get(reading)
    return p if probe_lost is None else 1 - (1 - probe_lost) ** 2


def median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5, help="kill/detect/restore repetitions for (a)")
    parser.add_argument("--minutes", type=float, default=10.0, help=f"live run of (b), reading {PRIMARY_READING}")
    parser.add_argument("--other-minutes", type=float, default=3.0, help="live runs of the other readings")
    parser.add_argument("--p", type=float, default=0.3, help="probability that a probe round is lost")
    parser.add_argument("--replay-rounds", type=int, default=60_000, help="rounds replayed per reading")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--skip-kills", action="store_true", help="only (b)")
    args = parser.parse_args()
    code = code_version()  # before the run: HEAD may move while it runs
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="drorch-bench-detect-") as tmp:
        root = Path(tmp) / "lab"
        lifecycle.up(root)
        try:
            lab = open_lab(root)
            config = detection_only(lab.config)
            kills = [] if args.skip_kills else kill_runs(lab, config, args.kills, rng)
            live: dict[str, FalseVerdicts] = {}
            healthy: Snapshot | None = None
            for reading in (PRIMARY_READING, *(r for r in READINGS if r != PRIMARY_READING)):
                minutes = args.minutes if reading == PRIMARY_READING else args.other_minutes
                if minutes > 0:
                    live[reading], found = live_faults(config, reading, args.p, minutes, rng.randrange(1 << 30))
                    healthy = healthy or found
        finally:
            lifecycle.down(root)
    if healthy is None:
        raise SystemExit("no fully healthy round was seen to replay")
    replays = {r: replay(config, healthy, r, args.p, args.replay_rounds, args.seed) for r in READINGS}
    interval, threshold = config.detection.interval_seconds, config.detection.failure_threshold
    attempts = config.detection.probe_attempts
    target = interval * threshold + 0.5
    floor = (threshold - 1) * interval
    down = [k["down_seconds"] for k in kills]
    dead = [k["dead_seconds"] for k in kills]
    round_med = median_or_none([k["round_seconds_median"] for k in kills])
    summary: dict[str, Any] = {
        "kill": {
            "repetitions": len(kills), "interval_seconds": interval, "threshold": threshold,
            "target_seconds": target,
            "down_median_seconds": median_or_none(down), "down_max_seconds": max(filter(None, down), default=None),
            "dead_median_seconds": median_or_none(dead), "dead_max_seconds": max(filter(None, dead), default=None),
            "all_within_target": bool(kills) and all(v is not None and v <= target for v in down + dead),
            "baseline_floor_seconds": floor,
            "baseline_note": "(N-1) x I: the earliest a verdict can come after the first failed round starts; "
                             "add the kill's phase in the cycle (0..I) and one probe round",
            "probe_round_median_seconds": round_med,
            "dead_median_vs_I_x_N": None if median_or_none(dead) is None else round(
                (median_or_none(dead) or 0) / (interval * threshold), 2),
        },
        "false_verdicts": {
            "p": args.p, "primary_reading": PRIMARY_READING,
            "probe_attempts": attempts,
            "readings": {
                "per_attempt": "every probe attempt is lost independently with probability p (random transport "
                               "loss; chosen: the Collector's fault hook is per attempt, and lost pings are what a "
                               "detector must absorb; a probe fails only if all its attempts in the round are lost)",
                "per_probe_round": "each probe of each site is lost for the whole round (every attempt) with "
                                   "probability p; a site needs app and database, so 1-(1-p)^2 of its rounds fail",
                "per_site_round": "each site's whole probe round is lost with probability p (its network path "
                                  "is down for that round)",
                "all_probes_round": "every probe of the estate is lost for the whole round with probability p "
                                    "(the controller's own network is down for that round)",
            },
            "site_round_loss_probability": {r: round(expected_site_loss(r, args.p, attempts), 4) for r in READINGS},
            "approx_down_runs_per_600_rounds_per_site": {
                r: round(600 * (1 - (q := expected_site_loss(r, args.p, attempts))) * q ** threshold, 3)
                for r in READINGS},
            "live": {r: {"minutes": args.minutes if r == PRIMARY_READING else args.other_minutes,
                         **c.to_json(600)} for r, c in live.items()},
            "replay": {r: c.to_json(600) for r, c in replays.items()},
            "replay_rounds": args.replay_rounds,
            "target": "zero false verdicts (site down or primary dead) over 10 minutes",
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"summary": summary, "kills": kills, "parameters": vars(args),
                                   "code": code}, indent=2) + "\n")
    k = summary["kill"]
    print("\n| (a) kill seoul's database | median | max | target |\n|---|---|---|---|")
    print(f"| to `seoul` down | {k['down_median_seconds']} s | {k['down_max_seconds']} s | <= {target:g} s |")
    print(f"| to `primary_database_dead` | {k['dead_median_seconds']} s | {k['dead_max_seconds']} s "
          f"| <= {target:g} s |")
    print(f"| baseline: (N-1) x I floor / probe round | {floor:g} s / {round_med} s | | |")
    print("\n| (b) reading | live rounds | false down (site) transitions | false dead transitions "
          "| replay: down / dead per 600 rounds |\n|---|---|---|---|---|")
    for reading in READINGS:
        live_row = live[reading].to_json(600) if reading in live else None
        rep = replays[reading].to_json(600)
        live_text = ("-", "-", "-") if live_row is None else (
            live_row["rounds"], sum(live_row["down_transitions"].values()), live_row["dead_transitions"])
        print(f"| {reading}{' (primary)' if reading == PRIMARY_READING else ''} | {live_text[0]} | {live_text[1]} | "
              f"{live_text[2]} | {rep['down_transitions_per_600_rounds']} / {rep['dead_transitions_per_600_rounds']} |")


if __name__ == "__main__":
    main()
