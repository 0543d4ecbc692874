"""Helpers for tests on the lab: waiting with a bound, reading roles, restoring the home topology."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests

from drorch.engine.actions import dns
from drorch.engine.failover import failover
from drorch.lab import chaos, lifecycle, processes
from drorch.lab.control import Lab, open_lab
from drorch.lab.layout import LabLayout

T = TypeVar("T")


@contextmanager
def running_lab(root: Path, vpn: bool = False) -> Iterator[Lab]:
    """A lab started in ``root`` (``vpn``: ``lab up --vpn``), always stopped (every process by its PID) afterwards."""
    lifecycle.up(root, with_vpn=vpn)
    try:
        yield open_lab(root)
    finally:
        lifecycle.down(root)
        leftover = [t for t in processes.tracked_all(LabLayout(root.resolve()).run) if processes.is_alive(t)]
        assert not leftover, f"lab processes still running after lab down: {leftover}"


def wait_for(check: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


def writable_sites(lab: Lab) -> list[str]:
    """Sites whose database answers and accepts writes."""
    found = []
    for site in lab.state.sites:
        db = lab.admin(site)
        if db.ping() and not db.state().read_only:
            found.append(site)
    return found


def restore_home(lab: Lab) -> None:
    """Bring the lab back to seoul primary with tokyo and nhn replicating from it."""
    chaos.heal(lab)
    estate = lab.estate
    primaries = writable_sites(lab)
    assert len(primaries) <= 1, f"split-brain in the lab: {primaries}"
    if primaries and primaries[0] != "seoul":
        current = estate.config.site(primaries[0]).mysql
        seoul = lab.admin("seoul")
        if seoul.state().replica is None:
            from drorch.replication.roles import follow

            follow(seoul, current.host, current.port, "repl", estate.replication_password(), semi_sync=True)
    result = failover(estate, "seoul")
    assert result.status == "succeeded", result
    for site in ("tokyo", "nhn"):
        lab.admin(site).execute("START SLAVE")  # a test may have stopped it; a no-op when running
    assert writable_sites(lab) == ["seoul"]


def estate_state(lab: Lab) -> dict[str, Any]:
    """What a run may change: database roles, sources and data, DNS records, ECS capacity.

    drorch's own heartbeat rows are not compared: monitoring writes them all the time.
    """
    roles = {}
    for site in lab.state.sites:
        db = lab.admin(site)
        state = db.state()
        checksum = db.query("CHECKSUM TABLE shop.orders")[0]["Checksum"]
        roles[site] = (state.read_only, state.replica.source_port if state.replica else None, checksum)
    ecs = lab.estate.aws("tokyo", "ecs").describe_services(cluster="dr-ecs-cluster",
                                                            services=["dr-fargate-service"])["services"][0]
    return {"roles": roles, "dns": dns.active_sites(lab.estate), "ecs_desired": ecs["desiredCount"]}


def vpn_connection_id(lab: Lab) -> str:
    site_vpn = lab.config.sites["nhn"].vpn
    assert site_vpn is not None and site_vpn.aws_site == "seoul" and site_vpn.aws_connection_id
    return site_vpn.aws_connection_id


def set_vpn_tunnel(lab: Lab, outside_ip: str, status: str) -> None:
    """Flip a tunnel through the lab's control hook (AWS has no API for this)."""
    response = requests.post(
        f"{lab.state.aws_ready['control_endpoint']}/_drorch/vpn-tunnel",
        json={"vpn_connection_id": vpn_connection_id(lab), "outside_ip": outside_ip, "status": status},
        timeout=5,
    )
    assert response.status_code == 200, response.text


def paused_playbook(source: Path, before: str, directory: Path, name: str, seconds: float = 60.0,
                    pause: str = "a long step") -> Path:
    """A copy of playbook ``source`` named ``name`` that sleeps (step ``pause``) right before its step ``before``:
    a moment for a test to crash the controller, or steal its lease."""
    import yaml

    document = yaml.safe_load(source.read_text())
    document["name"] = name
    names = [step["name"] for step in document["steps"]]
    document["steps"].insert(names.index(before), {"name": pause, "action": "control.sleep",
                                                   "with": {"seconds": seconds}})
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a process a test started: SIGTERM, then SIGKILL if it lingers; always reaped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def drorch_cli(config: Path, *args: str, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    """The ``drorch`` command as on-call runs it: a fresh process, this config, no terminal to ask on."""
    import os
    import sys

    return subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "DRORCH_CONFIG": str(config)}, stdin=subprocess.DEVNULL,
                          timeout=timeout, check=False)


def one_round_metrics(lab: Lab) -> Any:
    """The metrics of one probe round, as `drorch serve` exports them (a prometheus registry's Metrics)."""
    from drorch.metrics import registry
    from drorch.probes.collect import Collector
    from drorch.probes.detector import Detector
    from drorch.probes.readiness import assess

    collector = Collector(lab.estate)
    try:
        snapshot = collector.round()
    finally:
        collector.close()
    verdicts = Detector(lab.config).observe(snapshot)
    metrics = registry.create(lab.config)
    registry.update(metrics, lab.config, snapshot, verdicts, assess(lab.config, snapshot, verdicts.primary))
    return metrics
