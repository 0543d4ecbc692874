"""Faults from the clouds and the databases, injected by the lab's fault proxies (real moto, real MariaDB).

First: what each proxy injects is exactly what botocore and PyMySQL see from a
misbehaving service, and drorch's retry policy classifies it as transient. Then a
failover through the proxies: it either finishes, or stops with the journal saying
which step failed, and `drorch resume` finishes it; the invariants hold either way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import pymysql
import pytest
import yaml

from drorch.config.schema import AwsProvider
from drorch.engine.actions import dns
from drorch.lab.control import Lab
from drorch.lab.faults import NO_FAULTS, FaultPlan, HttpFaultProxy, TcpFaultProxy
from drorch.providers import retry
from drorch.providers.aws import session
from drorch.state.journal import RunRecord
from drorch.state.sqlite import SQLiteJournal
from tests.helpers import drorch_cli, restore_home, writable_sites

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
        done = drorch_cli(config, "failover", "--to", "tokyo", "--yes", "--output", "json")
        assert done.returncode in (0, 1), done.stderr
        result = json.loads(done.stdout)
        if result["status"] != "succeeded":
            record = SQLiteJournal(home.layout.root / "state" / "drorch.db").run(result["run_id"])
            assert record is not None and record.status in ("failed", "rolled_back")
            assert any(step.status == "failed" for step in record.steps), record
            if record.status == "rolled_back":  # a step before promotion gave up: everything was put back
                assert writable_sites(home) == ["seoul"] and dns.active_sites(home.estate)["PRIMARY"] == "seoul"
            for proxy in proxies:
                proxy.plan = NO_FAULTS
            again = (("resume", result["run_id"]) if record.status == "failed" else ("failover", "--to", "tokyo"))
            finished = drorch_cli(config, *again, "--yes", "--output", "json")
            assert finished.returncode == 0, finished.stderr
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


def _through_proxies(lab: Lab, aws: HttpFaultProxy, databases: dict[str, TcpFaultProxy]) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(lab.layout.config.read_text())
    for site in document["sites"].values():
        if site["provider"]["kind"] == "aws":
            site["provider"]["endpoint_url"] = aws.url
    document["dns"]["provider"]["endpoint_url"] = aws.url
    for name, proxy in databases.items():
        document["sites"][name]["mysql"]["host"], document["sites"][name]["mysql"]["port"] = proxy.address
    return document


