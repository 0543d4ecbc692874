"""Helpers for tests on the lab: waiting with a bound, reading roles, restoring the home topology."""

from __future__ import annotations

import subprocess
import threading
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


@contextmanager
def drorch_controller(config: Path, *args: str, stderr: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``drorch ARGS`` started in the background as on-call would (a fresh process, no terminal), for a test to
    kill at a moment it picks; always stopped and reaped by its PID when the block ends."""
    import os
    import sys

    with open(stderr or os.devnull, "wb") as errors:
        process = subprocess.Popen([sys.executable, "-m", "drorch.cli", *args], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=errors,
                                   env={**os.environ, "DRORCH_CONFIG": str(config)})
        try:
            yield process
        finally:
            stop_process(process)


Moment = Callable[[dict[str, str]], bool]


def crash_controller(config: Path, args: list[str], journal: Any, playbook: str, moment: Moment, stderr: Path,
                     prepare: tuple[Moment, Callable[[], None]] | None = None, timeout: float = 90.0) -> str:
    """Run ``drorch ARGS`` and SIGKILL it once its run of ``playbook`` reaches ``moment`` (given the steps'
    statuses by name); returns the killed run's id. Fails at once, with its stderr, if the controller ends first.

    ``prepare`` (an earlier moment, an action): done once on the way, e.g. slowing a database just before
    the steps that should be caught in flight, so the steps before them run at full speed.
    """
    pending = [prepare] if prepare is not None else []
    with drorch_controller(config, *args, stderr=stderr) as controller:
        def reached() -> str | None:
            if controller.poll() is not None:
                raise AssertionError(f"the controller exited ({controller.returncode}) before the moment to kill "
                                     f"it: {stderr.read_text()[-2000:]}")
            if pending:
                earlier, action = pending[0]
                if running_run(journal, playbook, earlier) is not None:
                    action()
                    pending.clear()
                return None
            return running_run(journal, playbook, moment)

        run_id = wait_for(reached, timeout=timeout)
        sigkill(controller)
    return run_id


def sigkill(process: subprocess.Popen[Any]) -> None:
    """Kill a controller the way a crash does: no signal handler, no finally block, no journal update."""
    import signal

    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def running_run(journal: Any, playbook: str, moment: Callable[[dict[str, str]], bool]) -> str | None:
    """The id of the running run of ``playbook`` whose steps (name -> status) satisfy ``moment``, if any."""
    for run in journal.runs(5):
        if run.status == "running" and run.summary.get("playbook") == playbook and moment(
                {step.name: step.status for step in run.steps}):
            return str(run.run_id)
    return None


def follows(lab: Lab, site: str, source: str) -> bool:
    """``site``'s database is a read-only replica receiving from ``source``'s database."""
    state = lab.admin(site).state()
    return (state.read_only and state.replica is not None and state.replica.io_running
            and state.replica.source_port == lab.state.sites[source].mysql_port)


def assert_resumed(journal: Any, old_id: str, new_id: str) -> None:
    """The journal of a crashed run and the run that resumed it tells one consistent story.

    The old run is marked resumed by the new one, which names it; every step the old run had finished
    is skipped by the new one (nothing done twice), every step it left running is run again, every
    step of the playbook is accounted for, and the resumer held a newer controller lease.
    """
    from drorch.engine.playbook.loader import load_playbook

    old, new = journal.run(old_id), journal.run(new_id)
    assert old is not None and new is not None
    assert old.status == "resumed" and old.summary["resumed_by"] == new_id, old
    assert new.status == "succeeded" and new.summary["resumed_from"] == old_id, new
    before = {step.name: step.status for step in old.steps}
    after = {step.name: step for step in new.steps}
    for name, status in before.items():
        if status in ("succeeded", "skipped"):
            assert after[name].status == "skipped", f"{name!r}, done before the crash, ran again: {after[name]}"
        elif status == "running":  # the crash interrupted it: run again, from the start
            assert after[name].status == "succeeded", f"{name!r}, interrupted by the crash: {after[name]}"
    playbook = load_playbook(Path(old.summary["source"]))
    recorded_only = {step.name for _, step in playbook.all_steps() if step.on_error == "continue"}
    assert all(step.status in ("succeeded", "skipped") or (step.status == "failed" and step.name in recorded_only)
               for step in new.steps), new.steps  # a check the playbook only records may fail, nothing else
    missing = {step.name for path, step in playbook.all_steps() if path[0] == "steps"} - set(after)
    assert not missing, f"steps neither done before the crash nor after it: {missing}"
    if old.summary.get("fencing_token") is not None:
        assert new.summary["fencing_token"] > old.summary["fencing_token"], (old.summary, new.summary)


@contextmanager
def split_brain_watch(lab: Lab, interval: float = 0.25) -> Iterator[list[list[str]]]:
    """Sample the writable databases through the block; yields the samples that found two or more.

    One sample reads the sites one after another, so a switchover could in principle straddle it
    (the old primary read before its fence, the new one after its promotion): a sample counts only
    when a second one right after it agrees, as a real split-brain persists until someone fences.
    """
    found: list[list[str]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            try:
                first = writable_sites(lab)
                if len(first) > 1 and len(again := writable_sites(lab)) > 1:
                    found.append(again)
            except Exception:  # a database restarting under a test: the next sample reads it
                continue

    watcher = threading.Thread(target=watch, name="split-brain-watch", daemon=True)
    watcher.start()
    try:
        yield found
    finally:
        stop.set()
        watcher.join(timeout=10)


@contextmanager
def writing_load(lab: Lab, log: Path, rate: float = 10.0, limit: float = 300.0) -> Iterator[Path]:
    """Orders written through the service name at ``rate`` per second during the block (at most ``limit`` s),
    logged to ``log`` so that ``drorch.lab.load.verify`` can tell whether an acknowledged write was lost."""
    from drorch.lab import load

    stop = threading.Event()
    writer = threading.Thread(target=load.run, args=(lab, load.LoadSpec(rate, limit, log), stop),
                              name="lab-load", daemon=True)
    writer.start()
    try:
        wait_for(lambda: log.exists() and log.stat().st_size > 0, timeout=10)
        yield log
    finally:
        stop.set()
        writer.join(timeout=30)
        assert not writer.is_alive(), "the load writer did not stop"


CRASH_PAUSE = "crash here"  # the step a crash test's playbook copy pauses in, for the controller to be killed there


def crash_then_resume(lab: Lab, tmp_path: Path, book: Path, command: list[str], primary: str, moment: Moment,
                      config: Path | None = None, prepare: tuple[Moment, Callable[[], None]] | None = None,
                      after_kill: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Start ``drorch COMMAND --yes --playbook BOOK``, SIGKILL it at ``moment``, `drorch resume` it, and check
    the invariants: never two writable databases (at the kill, or in any sample through the crash and
    the resume), then exactly one, ``primary``, with DNS on it and the others replicating from it; no
    acknowledged write lost (orders are written through the service name all along); the journal of
    the two runs consistent (``assert_resumed``).

    ``config`` (default: the lab's) is the crashed controller's; the resume uses the lab's own, as an
    operator would after the crash. ``after_kill`` runs right after the kill (e.g. stops a proxy).
    Returns the resumed run's result.
    """
    import json

    import yaml

    from drorch.lab import load
    from drorch.state.backends import open_journal

    journal = open_journal(lab.config)
    name = str(yaml.safe_load(book.read_text())["name"])
    with split_brain_watch(lab) as split, writing_load(lab, tmp_path / "load.jsonl") as log:
        run_id = crash_controller(config or lab.layout.config, [*command, "--yes", "--playbook", str(book)],
                                  journal, name, moment, tmp_path / "controller.err", prepare)
        after_kill()
        assert len(writable_sites(lab)) <= 1  # whatever the moment of the crash: never two writable primaries
        book.write_text(book.read_text().replace("seconds: 60", "seconds: 0"))  # the pause is over now
        resumed = drorch_cli(lab.layout.config, "resume", run_id, "--yes", "--output", "json", timeout=180)
    # the reason first: pytest shows only the first lines of a long assertion message
    assert resumed.returncode == 0, " | ".join(resumed.stderr.strip().splitlines()[-3:])
    result: dict[str, Any] = json.loads(resumed.stdout)
    assert result["status"] == "succeeded", result
    assert not split, f"two writable databases seen during the crash or the resume: {split}"
    assert writable_sites(lab) == [primary] and dns.active_sites(lab.estate)["PRIMARY"] == primary
    others = [site for site in lab.state.sites if site != primary]
    wait_for(lambda: all(follows(lab, site, primary) for site in others), timeout=20)
    truth = load.verify(lab, log)
    assert truth.acknowledged > 0 and truth.lost_refs == (), f"acknowledged writes lost: {truth.lost_refs[:5]}"
    assert_resumed(journal, run_id, result["run_id"])
    return result


def paused_in_group(source: Path, group: str, directory: Path, name: str) -> Path:
    """A copy of playbook ``source`` whose parallel group ``group`` has a third member, ``CRASH_PAUSE``, sleeping
    60 s beside the others: the group stays unfinished after its real branches are done."""
    import yaml

    document = yaml.safe_load(source.read_text())
    document["name"] = name
    members = next(item for item in document["steps"] if item["name"] == group)["parallel"]
    members.append({"name": CRASH_PAUSE, "action": "control.sleep", "with": {"seconds": 60}})
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@contextmanager
def proxied_database(lab: Lab, site: str) -> Iterator[tuple[Any, Path]]:
    """A fault proxy (no faults yet) in front of ``site``'s database, and a copy of the lab's config reaching
    that database through it (beside the lab's config, so its relative paths, the journal's too, hold).

    A run through that config may leave a replica following the proxy (a reprotect follows the
    configured address); whatever does is pointed at the database itself before the proxy stops,
    so the next test finds a lab without it.
    """
    import yaml

    from drorch.lab.faults import TcpFaultProxy
    from drorch.replication.roles import follow, semi_sync_partner

    address = lab.state.sites[site]
    proxy = TcpFaultProxy(address.ip, address.mysql_port).start()
    host, port = proxy.address
    config = lab.layout.root / f"drorch-proxied-{site}.yaml"
    document = yaml.safe_load(lab.layout.config.read_text())
    document["sites"][site]["mysql"]["host"], document["sites"][site]["mysql"]["port"] = host, port
    config.write_text(yaml.safe_dump(document))
    try:
        yield proxy, config
    finally:
        config.unlink(missing_ok=True)
        for other in lab.state.sites:
            replica = lab.admin(other).state().replica
            if replica is not None and (replica.source_host, replica.source_port) == (host, port):
                follow(lab.admin(other), address.ip, address.mysql_port, lab.config.data.mysql.replication_user,
                       lab.estate.replication_password(),
                       semi_sync=semi_sync_partner(lab.estate, site) == other)
        proxy.stop()

