"""Faults from the clouds and the databases, injected by the lab's fault proxies (real moto, real MariaDB, the lab's
OpenStack API).

First: what each proxy injects is exactly what botocore, openstacksdk and PyMySQL see
from a misbehaving service, and drorch's retry policy classifies it as transient (and,
for OpenStack, is the only one retrying: openstacksdk's and keystoneauth's own retries
are off, so one attempt is one request). Then failovers through the proxies (to tokyo
with AWS and tokyo's database faulty, to nhn with the OpenStack API faulty): each either
finishes, or stops with the journal saying which step failed, and `drorch resume` (or,
after a rollback, a new run) finishes it; the invariants hold either way.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions
import pymysql
import pytest
import yaml

from drorch.config.schema import AwsProvider, OpenStackCompute
from drorch.engine.actions import dns
from drorch.errors import OperationFailed
from drorch.lab.control import Lab
from drorch.lab.faults import NO_FAULTS, FaultPlan, HttpFaultProxy, OpenStackFaultProxy, TcpFaultProxy
from drorch.lab.files import write_private
from drorch.providers import retry
from drorch.providers.aws import session
from drorch.providers.openstack import compute, loadbalancer, nks
from drorch.providers.openstack.connection import open_cloud
from drorch.state.journal import RunRecord
from drorch.state.sqlite import SQLiteJournal
from tests.helpers import (
    drorch_cli,
    drorch_controller,
    paused_playbook,
    restore_home,
    running_run,
    split_brain_watch,
    wait_for,
    writable_sites,
)

PLAYBOOK_TOKYO = Path(__file__).resolve().parents[2] / "playbooks" / "failover-to-tokyo.yaml"

CALLS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "dynamodb (json)": ("dynamodb", lambda c: c.list_tables()),
    "route53 (rest-xml)": ("route53", lambda c: c.list_hosted_zones()),
    "ec2 (ec2 query)": ("ec2", lambda c: c.describe_vpn_connections()),
    "ecs (json)": ("ecs", lambda c: c.list_clusters()),
    "eks (rest-json)": ("eks", lambda c: c.list_clusters()),
    "cloudwatch (rpc-v2-cbor)": ("cloudwatch", lambda c: c.list_metrics()),
}


@pytest.fixture()
def aws_proxy(lab: Lab) -> Iterator[HttpFaultProxy]:
    proxy = HttpFaultProxy(lab.state.aws_endpoint).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def client_through(lab: Lab, proxy: HttpFaultProxy, service: str) -> Any:
    provider = AwsProvider(kind="aws", region="ap-northeast-2", endpoint_url=proxy.url,
                           credentials_file=lab.layout.aws_credentials)
    return session.client(provider, service)


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("fault", ["error", "throttle", "drop"])
def test_aws_faults_reach_botocore_as_aws_would_send_them(lab: Lab, aws_proxy: HttpFaultProxy, call: str,
                                                          fault: str) -> None:
    service, request = CALLS[call]
    client = client_through(lab, aws_proxy, service)
    aws_proxy.plan = {"error": FaultPlan(error_rate=1.0), "throttle": FaultPlan(throttle_rate=1.0),
                      "drop": FaultPlan(drop_rate=1.0)}[fault]
    with pytest.raises(Exception) as raised:
        request(client)
    if fault == "drop":
        assert isinstance(raised.value, botocore.exceptions.ConnectionClosedError | botocore.exceptions.
                          EndpointConnectionError)
    else:
        assert isinstance(raised.value, botocore.exceptions.ClientError)
        error = raised.value.response["Error"]["Code"]
        assert ("Throttl" in error or "LimitExceeded" in error) if fault == "throttle" else error, error
    assert retry.is_transient(raised.value)  # so the one retry policy retries it
    aws_proxy.plan = NO_FAULTS
    request(client)  # the same client works again once the service does
    assert aws_proxy.injected[fault] == 1 and aws_proxy.injected["forwarded"] == 1, aws_proxy.injected


def test_a_held_request_times_out_in_the_client(lab: Lab, aws_proxy: HttpFaultProxy) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client("dynamodb", region_name="ap-northeast-2", endpoint_url=aws_proxy.url,
                          aws_access_key_id="lab", aws_secret_access_key="lab",
                          config=Config(read_timeout=1, retries={"max_attempts": 1}))
    aws_proxy.plan = FaultPlan(timeout_rate=1.0, hold_seconds=5)
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ReadTimeoutError) as raised:
        client.list_tables()
    assert time.monotonic() - started < 4 and retry.is_transient(raised.value)


def test_database_faults_are_transient_and_latency_is_added(lab: Lab) -> None:
    site = lab.state.sites["tokyo"]
    proxy = TcpFaultProxy(site.ip, site.mysql_port, FaultPlan(drop_rate=1.0)).start()
    password = (lab.layout.secret("admin")).read_text().strip()
    try:
        host, port = proxy.address

        def query() -> float:
            started = time.monotonic()
            with pymysql.connect(host=host, port=port, user="lab_admin", password=password, connect_timeout=3,
                                 read_timeout=3) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
            return time.monotonic() - started

        with pytest.raises(pymysql.err.OperationalError) as raised:
            query()
        assert retry.is_transient(raised.value)
        proxy.plan = FaultPlan(latency_seconds=0.05)
        assert query() >= 0.2  # handshake, auth and the query: each chunk waits 50 ms
        assert proxy.injected["drop"] == 1 and proxy.injected["forwarded"] == 1
    finally:
        proxy.stop()


def test_failover_through_faulty_clouds_finishes_or_resumes(home: Lab) -> None:
    """Throttling, 5xx, dropped connections and latency on AWS and on the target's database, during a failover.

    Only tokyo's database is proxied: a replica names its source by address, so a proxied seoul would no
    longer be the source tokyo replicates from, and the readiness guard would (rightly) refuse.
    """
    flaky = FaultPlan(error_rate=0.1, throttle_rate=0.15, drop_rate=0.05, latency_seconds=0.02)
    aws = HttpFaultProxy(home.state.aws_endpoint, flaky, seed=7).start()
    databases = {site: TcpFaultProxy(home.state.sites[site].ip, home.state.sites[site].mysql_port,
                                     FaultPlan(drop_rate=0.1, latency_seconds=0.002), seed=11).start()
                 for site in ("tokyo",)}
    proxies: list[HttpFaultProxy | TcpFaultProxy] = [aws, *databases.values()]
    config = home.layout.root / "drorch-faults.yaml"  # beside the lab's config: its relative paths still hold
    try:
        config.write_text(yaml.safe_dump(_through_proxies(home, aws, databases)))
        _finishes_or_resumes(home, config, "tokyo", proxies)
        assert sum(aws.injected[f] for f in ("error", "throttle", "drop")) > 0  # faults were really injected
        assert writable_sites(home) == ["tokyo"]
        assert dns.active_sites(home.estate)["PRIMARY"] == "tokyo"
    finally:
        for proxy in proxies:
            proxy.plan = NO_FAULTS
        if config.exists() and writable_sites(home) == ["tokyo"]:  # back through the proxies: seoul follows one
            back = drorch_cli(config, "failover", "--to", "seoul", "--yes")
            assert back.returncode == 0, back.stderr
        config.unlink(missing_ok=True)
        for proxy in proxies:
            proxy.stop()
        restore_home(home)


def test_route53_down_mid_failover_stops_cleanly_then_resumes(home: Lab) -> None:
    """Every Route 53 call fails: the run stops at the DNS step with one writable database, and resumes."""
    aws = HttpFaultProxy(home.state.aws_endpoint, FaultPlan(error_rate=1.0, services=frozenset({"route53"}))).start()
    config = home.layout.root / "drorch-route53-down.yaml"
    try:
        config.write_text(yaml.safe_dump(_through_proxies(home, aws, {})))
        done = drorch_cli(config, "failover", "--to", "tokyo", "--yes", "--output", "json")
        assert done.returncode == 1, done.stderr
        result = json.loads(done.stdout)
        record = SQLiteJournal(home.layout.root / "state" / "drorch.db").run(result["run_id"])
        assert record is not None and record.status == "failed"
        assert _statuses(record)["point DNS at tokyo"] == "failed" and _statuses(record)["promote tokyo"] == "succeeded"
        assert "verify tokyo serves through DNS" not in _statuses(record)  # nothing ran past the failure
        assert writable_sites(home) == ["tokyo"]  # one writable database: never two, even when stuck
        assert aws.injected["error"] >= 3  # the step's retries, each through the one retry policy
        aws.plan = NO_FAULTS
        resumed = drorch_cli(config, "resume", result["run_id"], "--yes", "--output", "json")
        assert resumed.returncode == 0, resumed.stderr
        assert dns.active_sites(home.estate)["PRIMARY"] == "tokyo" and writable_sites(home) == ["tokyo"]
    finally:
        config.unlink(missing_ok=True)
        aws.stop()
        restore_home(home)


def _statuses(record: RunRecord) -> dict[str, str]:
    return {step.name: step.status for step in record.steps}


def _finishes_or_resumes(lab: Lab, config: Path, to: str, proxies: list[Any]) -> None:
    """Fail over to ``to`` through ``config`` (faults on); when the run does not succeed, the journal says which
    step failed, a rollback put everything back, and once the faults stop, `drorch resume` (a failed run) or a
    new failover (a rolled-back one: resume is for failed runs) finishes the move."""
    done = drorch_cli(config, "failover", "--to", to, "--yes", "--output", "json")
    assert done.returncode in (0, 1), done.stderr
    result = json.loads(done.stdout)
    if result["status"] == "succeeded":
        return
    record = SQLiteJournal(lab.layout.root / "state" / "drorch.db").run(result["run_id"])
    assert record is not None and record.status in ("failed", "rolled_back")
    assert any(step.status == "failed" for step in record.steps), record
    if record.status == "rolled_back":  # a step before promotion gave up: everything was put back
        assert writable_sites(lab) == ["seoul"] and dns.active_sites(lab.estate)["PRIMARY"] == "seoul"
    for proxy in proxies:
        proxy.plan = NO_FAULTS
    # resume is for failed runs that rolled nothing back (a partial rollback undid steps the journal calls done)
    rolled = any(name.startswith("rollback: ") and status == "succeeded" for name, status in _statuses(record).items())
    again = ("resume", result["run_id"]) if record.status == "failed" and not rolled else ("failover", "--to", to)
    finished = drorch_cli(config, *again, "--yes", "--output", "json")
    assert finished.returncode == 0, finished.stderr


# ------------------------------------------------------------------------------------------------ OpenStack


@pytest.fixture()
def openstack_proxy(lab: Lab) -> Iterator[tuple[OpenStackFaultProxy, Path]]:
    """A fault proxy in front of the lab's OpenStack API, and a clouds.yaml (0600: it holds the password) whose
    auth_url names the proxy; the catalog the proxy hands out keeps every later request on it."""
    proxy = OpenStackFaultProxy(lab.state.openstack_auth_url).start()
    clouds = lab.layout.root / f"clouds-proxied-{proxy.url.rsplit(':', 1)[1]}.yaml"
    try:
        write_private(clouds, yaml.safe_dump(_clouds_through(lab, proxy)))
        yield proxy, clouds
    finally:
        clouds.unlink(missing_ok=True)
        proxy.stop()


def _clouds_through(lab: Lab, proxy: OpenStackFaultProxy, **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(lab.layout.clouds_file.read_text())
    for cloud in document["clouds"].values():
        cloud["auth"]["auth_url"] = proxy.url + urlsplit(cloud["auth"]["auth_url"]).path
        cloud.update(extra)
    return document


def _nhn(lab: Lab) -> tuple[str, OpenStackCompute]:
    provider, found = lab.config.sites["nhn"].provider, lab.config.sites["nhn"].compute
    assert isinstance(found, OpenStackCompute) and provider.kind == "openstack"
    return provider.cloud, found


ALWAYS = {"error": FaultPlan(error_rate=1.0), "throttle": FaultPlan(throttle_rate=1.0),
          "drop": FaultPlan(drop_rate=1.0)}
OPENSTACK_CALLS: dict[str, Callable[[Any, OpenStackCompute], object]] = {
    "nova servers": lambda conn, c: compute.servers(conn, c.servers),
    "nova server start": lambda conn, c: compute.start(conn, c.servers[0], timeout=5),
    "nks node group (raw session)": lambda conn, c: nks.nodegroup(conn, str(c.nks_cluster), str(c.nks_nodegroup)),
    "lbaas status": lambda conn, c: loadbalancer.status(conn, str(c.load_balancer)),
}


@pytest.mark.parametrize("call", sorted(OPENSTACK_CALLS))
@pytest.mark.parametrize("fault", ["error", "throttle", "drop"])
def test_openstack_faults_are_retried_by_drorch_alone(lab: Lab, openstack_proxy: tuple[OpenStackFaultProxy, Path],
                                                      call: str, fault: str) -> None:
    """Every request failing: drorch's policy makes exactly its 4 attempts (openstacksdk adds none), then
    re-raises what openstacksdk raised, which the policy calls transient; the same connection works after."""
    proxy, clouds = openstack_proxy
    cloud, nhn = _nhn(lab)
    conn = open_cloud(clouds, cloud, "KR1")
    try:
        request = OPENSTACK_CALLS[call]
        request(conn, nhn)  # version discovery and the catalog are behind us: what follows is the call alone
        assert str(conn.endpoint_for("compute")).startswith(proxy.url)  # the catalog names the proxy
        proxy.injected.clear()
        proxy.plan = ALWAYS[fault]
        with pytest.raises(Exception) as raised:
            request(conn, nhn)
        assert retry.is_transient(raised.value), repr(raised.value)
        assert proxy.injected[fault] == 4 and not proxy.injected["forwarded"], proxy.injected
        if fault != "drop":
            assert getattr(raised.value, "status_code", None) == (503 if fault == "error" else 429)
        proxy.plan = NO_FAULTS
        request(conn, nhn)
    finally:
        conn.close()


@pytest.mark.parametrize("fault", ["error", "throttle", "drop"])
def test_keystone_faults_are_retried_then_reported(lab: Lab, openstack_proxy: tuple[OpenStackFaultProxy, Path],
                                                   fault: str) -> None:
    """Keystone failing at login: 4 attempts, then OperationFailed naming the auth URL (and no password)."""
    proxy, clouds = openstack_proxy
    cloud, _ = _nhn(lab)
    proxy.plan = replace(ALWAYS[fault], services=frozenset({"v3"}))  # Keystone only
    with pytest.raises(OperationFailed, match=re.escape(f"cannot authenticate at {proxy.url}/v3")) as raised:
        open_cloud(clouds, cloud, "KR1")
    assert lab.layout.secret("openstack").read_text().strip() not in str(raised.value)
    # the policy's 4 token requests, and keystoneauth's version discovery first (whose failure it survives)
    assert proxy.injected[fault] == 5, proxy.injected
    proxy.plan = NO_FAULTS
    open_cloud(clouds, cloud, "KR1").close()


def test_a_held_openstack_request_times_out_in_the_client(lab: Lab,
                                                          openstack_proxy: tuple[OpenStackFaultProxy, Path]) -> None:
    """clouds.yaml's api_timeout bounds every request: a held one gives up in time, as a transient error."""
    proxy, _ = openstack_proxy
    cloud, _ = _nhn(lab)
    clouds = lab.layout.root / "clouds-proxied-timeout.yaml"
    write_private(clouds, yaml.safe_dump(_clouds_through(lab, proxy, api_timeout=1)))
    conn = open_cloud(clouds, cloud, "KR1")
    try:
        list(conn.compute.servers())
        proxy.plan = FaultPlan(timeout_rate=1.0, hold_seconds=5)
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            list(conn.compute.servers())  # one request, without the retry policy
        assert time.monotonic() - started < 4 and retry.is_transient(raised.value), repr(raised.value)
    finally:
        conn.close()
        clouds.unlink(missing_ok=True)


def _nhn_capacity(lab: Lab) -> tuple[dict[str, str], int]:
    """nhn's servers' statuses and NKS node count, read straight from the lab's API (no proxy)."""
    _, nhn = _nhn(lab)
    conn = lab.estate.openstack("nhn")
    group = nks.nodegroup(conn, str(nhn.nks_cluster), str(nhn.nks_nodegroup))
    return {s.name: s.status for s in compute.servers(conn, nhn.servers)}, group.node_count


def _set_nhn_capacity(lab: Lab, servers: dict[str, str], nodes: int) -> None:
    _, nhn = _nhn(lab)
    conn = lab.estate.openstack("nhn")
    for name, status in servers.items():
        (compute.start if status == "ACTIVE" else compute.stop)(conn, name, 60)
    nks.scale(conn, str(nhn.nks_cluster), str(nhn.nks_nodegroup), nodes, timeout=60)


def test_failover_to_nhn_through_a_faulty_openstack_api_finishes_or_resumes(
        home: Lab, openstack_proxy: tuple[OpenStackFaultProxy, Path]) -> None:
    """5xx, throttling, dropped connections and latency on the OpenStack API while a failover to NHN starts its
    servers, scales NKS and waits for the load balancer: it finishes or stops cleanly, and then finishes.

    nhn starts warm (a server off, NKS at its minimum) so that the failover has to change both; its capacity
    is put back as it was afterwards.
    """
    proxy, clouds = openstack_proxy
    _, nhn = _nhn(home)
    before = _nhn_capacity(home)
    config = home.layout.root / "drorch-openstack-faults.yaml"
    try:
        _set_nhn_capacity(home, {**before[0], nhn.servers[-1]: "SHUTOFF"}, 1)
        document: dict[str, Any] = yaml.safe_load(home.layout.config.read_text())
        document["sites"]["nhn"]["provider"]["clouds_file"] = clouds.name  # beside the config, like the lab's
        config.write_text(yaml.safe_dump(document))
        proxy.plan = FaultPlan(error_rate=0.1, throttle_rate=0.1, drop_rate=0.05, latency_seconds=0.02)
        _finishes_or_resumes(home, config, "nhn", [proxy])
        assert sum(proxy.injected[f] for f in ("error", "throttle", "drop")) > 0  # faults were really injected
        assert writable_sites(home) == ["nhn"] and dns.active_sites(home.estate)["PRIMARY"] == "nhn"
        servers, nodes = _nhn_capacity(home)
        assert set(servers.values()) == {"ACTIVE"} and nodes == nhn.nks_active_count
    finally:
        proxy.plan = NO_FAULTS
        config.unlink(missing_ok=True)
        restore_home(home)
        _set_nhn_capacity(home, *before)


def _through_proxies(lab: Lab, aws: HttpFaultProxy, databases: dict[str, TcpFaultProxy]) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(lab.layout.config.read_text())
    for site in document["sites"].values():
        if site["provider"]["kind"] == "aws":
            site["provider"]["endpoint_url"] = aws.url
    document["dns"]["provider"]["endpoint_url"] = aws.url
    for name, proxy in databases.items():
        document["sites"][name]["mysql"]["host"], document["sites"][name]["mysql"]["port"] = proxy.address
    return document




def test_a_partly_rolled_back_failover_is_not_resumed_past_its_undone_fence(home: Lab, tmp_path: Path) -> None:
    """DynamoDB and ECS fail right after the fence: the rollback unfences seoul but cannot return the Fargate
    service to warm, so the run ends failed, not rolled back. Resuming it would skip the fence (done, then
    undone by the rollback) and promote tokyo beside a writable seoul: it is refused, and a new run, which
    fences again, finishes the move. Never two writable databases."""
    aws = HttpFaultProxy(home.state.aws_endpoint).start()
    config = home.layout.root / "drorch-rollback-faults.yaml"
    book = paused_playbook(PLAYBOOK_TOKYO, "carry the last DynamoDB changes into tokyo", tmp_path,
                           "failover-partly-rolled-back", seconds=2, pause="clouds fail now")
    journal = SQLiteJournal(home.layout.root / "state" / "drorch.db")
    try:
        config.write_text(yaml.safe_dump(_through_proxies(home, aws, {})))
        with split_brain_watch(home) as split:
            with drorch_controller(config, "failover", "--to", "tokyo", "--yes", "--playbook", str(book)) as run:
                run_id = wait_for(lambda: running_run(journal, "failover-partly-rolled-back",
                                                      lambda steps: steps.get("clouds fail now") == "running"),
                                  timeout=60)
                aws.plan = FaultPlan(error_rate=1.0, services=frozenset({"dynamodb", "ecs"}))
                assert run.wait(timeout=120) == 1
            record = journal.run(run_id)
            assert record is not None and record.status == "failed", record
            steps = _statuses(record)
            assert steps["fence the current primary"] == "succeeded"
            assert steps["rollback: unfence the old primary"] == "succeeded"
            assert steps["rollback: return the Fargate service to warm"] == "failed"
            assert writable_sites(home) == ["seoul"]
            aws.plan = NO_FAULTS
            resumed = drorch_cli(config, "resume", run_id, "--yes")
            assert resumed.returncode == 3 and "rolled back in part" in resumed.stderr, resumed.stderr
            assert writable_sites(home) == ["seoul"]
            again = drorch_cli(config, "failover", "--to", "tokyo", "--yes", "--playbook", str(book))
            assert again.returncode == 0, again.stderr
        assert not split, f"two writable databases: {split}"
        assert writable_sites(home) == ["tokyo"] and dns.active_sites(home.estate)["PRIMARY"] == "tokyo"
    finally:
        aws.plan = NO_FAULTS
        config.unlink(missing_ok=True)
        aws.stop()
        restore_home(home)
