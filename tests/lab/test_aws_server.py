"""The lab AWS server, end to end: a real process, real HTTP, plain boto3.

Nothing is mocked: each test talks to ``python -m drorch.lab.aws_server`` the
way the orchestrator will, so a moto behaviour the lab relies on breaking shows
up here. Tests that change the estate put it back, so order does not matter.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from drorch.lab.ports import free_port
from tests.helpers import stop_process

ACCOUNT = "210987654321"
SEED: dict[str, Any] = {
    "account_id": ACCOUNT,
    "zone": "lab.drorch.example.",
    "record": "app.lab.drorch.example.",
    "ttl": 5,
    "sites": {
        "seoul": {"region": "ap-northeast-2", "ip": "127.0.1.1", "app_port": 18080, "failover": "PRIMARY"},
        "tokyo": {"region": "ap-northeast-1", "ip": "127.0.2.1", "app_port": 18080, "failover": "SECONDARY"},
        "nhn": {"region": None, "ip": "127.0.3.1", "app_port": 18080, "failover": None},
    },
}
SEOUL, TOKYO = "ap-northeast-2", "ap-northeast-1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3


@dataclass
class Lab:
    """A running server process, its READY.json contents and where it logs."""

    proc: subprocess.Popen[bytes]
    ready: dict[str, Any]
    ready_file: Path
    log: Path

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=self.ready["endpoint"],
            aws_access_key_id="lab",
            aws_secret_access_key="lab",
        )


def _launch(workdir: Path, seed: dict[str, Any]) -> Lab:
    """Start the server and wait for READY.json; retry on a lost free-port race."""
    seed_file = workdir / "seed.json"
    seed_file.write_text(json.dumps(seed))
    ready_file, log = workdir / "ready.json", workdir / "aws_server.log"
    for _ in range(START_ATTEMPTS):
        cmd = [sys.executable, "-m", "drorch.lab.aws_server", "--host", "127.0.0.1"]
        cmd += ["--port", str(free_port()), "--seed", str(seed_file), "--ready-file", str(ready_file)]
        with log.open("wb") as sink:
            proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        if _wait_ready(proc, ready_file):
            return Lab(proc, json.loads(ready_file.read_text()), ready_file, log)
        _stop(proc)
    pytest.fail(f"aws_server never became ready; log:\n{log.read_text()}")


def _wait_ready(proc: subprocess.Popen[bytes], ready_file: Path) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready_file.exists():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop by PID: SIGTERM, bounded wait, then SIGKILL."""
    stop_process(proc, STOP_TIMEOUT_S)
    return proc.returncode


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    running = _launch(tmp_path_factory.mktemp("aws_server"), SEED)
    yield running
    code = _stop(running.proc)
    assert code == 0, f"aws_server exited {code}; log:\n{running.log.read_text()}"


def _failover_records(lab: Lab) -> dict[str, dict[str, Any]]:
    r53 = lab.client("route53")
    records = r53.list_resource_record_sets(HostedZoneId=lab.ready["zone_id"])["ResourceRecordSets"]
    return {r["SetIdentifier"]: r for r in records if r["Type"] == "A" and r["Name"] == SEED["record"]}


def _control(lab: Lab, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        lab.ready["control_endpoint"] + "/_drorch/vpn-tunnel",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _telemetry(lab: Lab) -> dict[str, dict[str, Any]]:
    ec2 = lab.client("ec2", SEOUL)
    (conn,) = ec2.describe_vpn_connections(VpnConnectionIds=[lab.ready["vpn_connection_id"]])["VpnConnections"]
    return {t["OutsideIpAddress"]: t for t in conn["VgwTelemetry"]}


# ---------------------------------------------------------------- Route 53


def test_failover_pair_points_at_sites_with_their_health_checks(lab: Lab) -> None:
    records = _failover_records(lab)
    checks = lab.ready["health_checks"]
    assert set(records) == {"seoul", "tokyo"}
    for site, role in (("seoul", "PRIMARY"), ("tokyo", "SECONDARY")):
        record = records[site]
        assert record["Failover"] == role
        assert record["HealthCheckId"] == checks[site]
        assert record["TTL"] == SEED["ttl"]
        assert record["ResourceRecords"] == [{"Value": SEED["sites"][site]["ip"]}]


def test_health_checks_probe_each_site_healthz(lab: Lab) -> None:
    r53 = lab.client("route53")
    assert set(lab.ready["health_checks"]) == {"seoul", "tokyo", "nhn"}
    for site, check_id in lab.ready["health_checks"].items():
        check = r53.get_health_check(HealthCheckId=check_id)["HealthCheck"]
        config = check["HealthCheckConfig"]
        assert check["CallerReference"] == f"drorch-lab-{site}"
        assert (config["Type"], config["IPAddress"], config["Port"]) == ("HTTP", SEED["sites"][site]["ip"], 18080)
        assert (config["ResourcePath"], config["RequestInterval"], config["FailureThreshold"]) == ("/healthz", 10, 3)
        tags = r53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=check_id)
        assert {"Key": "drorch:site", "Value": site} in tags["ResourceTagSet"]["Tags"]


def _swap_batch(lab: Lab, primary: str, secondary: str) -> str:
    """UPSERT both failover records in one batch; returns the change id."""
    r53 = lab.client("route53")
    changes = []
    for site, role in ((primary, "PRIMARY"), (secondary, "SECONDARY")):
        record = {
            "Name": SEED["record"],
            "Type": "A",
            "TTL": SEED["ttl"],
            "SetIdentifier": site,
            "Failover": role,
            "HealthCheckId": lab.ready["health_checks"][site],
            "ResourceRecords": [{"Value": SEED["sites"][site]["ip"]}],
        }
        changes.append({"Action": "UPSERT", "ResourceRecordSet": record})
    batch = {"Comment": f"fail over to {primary}", "Changes": changes}
    response = r53.change_resource_record_sets(HostedZoneId=lab.ready["zone_id"], ChangeBatch=batch)
    change_id: str = response["ChangeInfo"]["Id"]
    return change_id


def test_one_batch_swaps_failover_roles_and_change_is_insync(lab: Lab) -> None:
    try:
        change_id = _swap_batch(lab, primary="tokyo", secondary="seoul")
        records = _failover_records(lab)
        assert len(records) == 2, "UPSERT must replace by SetIdentifier, not add"
        assert records["tokyo"]["Failover"] == "PRIMARY"
        assert records["seoul"]["Failover"] == "SECONDARY"
        assert records["tokyo"]["ResourceRecords"] == [{"Value": "127.0.2.1"}]
        status = lab.client("route53").get_change(Id=change_id)["ChangeInfo"]["Status"]
        assert status == "INSYNC"
    finally:
        _swap_batch(lab, primary="seoul", secondary="tokyo")
    assert _failover_records(lab)["seoul"]["Failover"] == "PRIMARY"


# ---------------------------------------------------------------- compute


def test_eks_nodegroups_and_scaling(lab: Lab) -> None:
    eks = lab.client("eks", SEOUL)
    assert sorted(eks.list_nodegroups(clusterName="eks-prod")["nodegroups"]) == ["app-nodes", "spring-x86"]
    app = eks.describe_nodegroup(clusterName="eks-prod", nodegroupName="app-nodes")["nodegroup"]
    assert app["scalingConfig"] == {"minSize": 2, "maxSize": 10, "desiredSize": 2}
    assert app["amiType"] == "AL2023_ARM_64_STANDARD"
    spring = eks.describe_nodegroup(clusterName="eks-prod", nodegroupName="spring-x86")["nodegroup"]
    assert spring["scalingConfig"] == {"minSize": 1, "maxSize": 4, "desiredSize": 1}
    try:
        eks.update_nodegroup_config(clusterName="eks-prod", nodegroupName="app-nodes", scalingConfig={"desiredSize": 6})
        app = eks.describe_nodegroup(clusterName="eks-prod", nodegroupName="app-nodes")["nodegroup"]
        assert app["scalingConfig"] == {"minSize": 2, "maxSize": 10, "desiredSize": 6}
    finally:
        eks.update_nodegroup_config(clusterName="eks-prod", nodegroupName="app-nodes", scalingConfig={"desiredSize": 2})


def _ecs_counts(lab: Lab) -> tuple[int, int, int]:
    ecs = lab.client("ecs", TOKYO)
    (svc,) = ecs.describe_services(cluster="dr-ecs-cluster", services=["dr-fargate-service"])["services"]
    return svc["desiredCount"], svc["runningCount"], svc["pendingCount"]


def test_ecs_service_starts_warm_and_running_follows_desired(lab: Lab) -> None:
    assert lab.ready["ecs"]["region"] == TOKYO
    assert _ecs_counts(lab) == (1, 1, 0)
    ecs = lab.client("ecs", TOKYO)
    try:
        ecs.update_service(cluster="dr-ecs-cluster", service="dr-fargate-service", desiredCount=4)
        assert _ecs_counts(lab) == (4, 4, 0)
    finally:
        ecs.update_service(cluster="dr-ecs-cluster", service="dr-fargate-service", desiredCount=1)


# ---------------------------------------------------------------- DynamoDB


@pytest.mark.parametrize(
    ("region", "present", "absent"),
    [
        (SEOUL, {"orders", "products-table", "dr-rpo-probe"}, {"dr-orders-table"}),
        (TOKYO, {"dr-orders-table", "dr-products-table", "dr-rpo-probe"}, {"orders"}),
    ],
)
def test_tables_have_streams_in_the_right_region(lab: Lab, region: str, present: set[str], absent: set[str]) -> None:
    db = lab.client("dynamodb", region)
    names = set(db.list_tables()["TableNames"])
    assert present <= names and not absent & names
    for name in present:
        table = db.describe_table(TableName=name)["Table"]
        assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert f":{region}:{ACCOUNT}:" in table["TableArn"]


def test_stream_returns_a_put_item(lab: Lab) -> None:
    order_id = f"lab-{uuid.uuid4()}"
    lab.client("dynamodb", SEOUL).put_item(TableName="orders", Item={"order_id": {"S": order_id}, "total": {"N": "42"}})
    streams = lab.client("dynamodbstreams", SEOUL)
    (stream,) = streams.list_streams(TableName="orders")["Streams"]
    assert stream["StreamArn"] == lab.ready["dynamodb"]["primary"]["streams"]["orders"]
    description = streams.describe_stream(StreamArn=stream["StreamArn"])["StreamDescription"]
    shard_id = description["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream["StreamArn"], ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    images = [r["dynamodb"]["NewImage"] for r in records if r["eventName"] == "INSERT"]
    assert {"order_id": {"S": order_id}, "total": {"N": "42"}} in images


def test_rpo_probe_table_keys(lab: Lab) -> None:
    for region in (SEOUL, TOKYO):
        table = lab.client("dynamodb", region).describe_table(TableName="dr-rpo-probe")["Table"]
        assert table["KeySchema"] == [
            {"AttributeName": "region", "KeyType": "HASH"},
            {"AttributeName": "seq", "KeyType": "RANGE"},
        ]


# ---------------------------------------------------------------- VPN


def test_vpn_has_two_tunnels_up(lab: Lab) -> None:
    tunnels = _telemetry(lab)
    assert sorted(tunnels) == sorted(lab.ready["tunnels"]) and len(tunnels) == 2
    for tunnel in tunnels.values():
        assert tunnel["Status"] == "UP"
        assert tunnel["AcceptedRouteCount"] == 1
        assert "LastStatusChange" in tunnel and "StatusMessage" in tunnel
    ec2 = lab.client("ec2", SEOUL)
    (conn,) = ec2.describe_vpn_connections(VpnConnectionIds=[lab.ready["vpn_connection_id"]])["VpnConnections"]
    assert conn["Type"] == "ipsec.1" and conn["Options"]["StaticRoutesOnly"] is True
    (cgw,) = ec2.describe_customer_gateways(CustomerGatewayIds=[conn["CustomerGatewayId"]])["CustomerGateways"]
    assert (cgw["IpAddress"], cgw["BgpAsn"]) == ("203.0.113.10", "65000")


def test_control_hook_flips_one_tunnel(lab: Lab) -> None:
    vpn_id = lab.ready["vpn_connection_id"]
    down_ip, other_ip = lab.ready["tunnels"]
    try:
        code, body = _control(lab, {"vpn_connection_id": vpn_id, "outside_ip": down_ip, "status": "DOWN"})
        assert (code, body["Status"]) == (200, "DOWN")
        tunnels = _telemetry(lab)
        assert tunnels[down_ip]["Status"] == "DOWN" and tunnels[down_ip]["AcceptedRouteCount"] == 0
        assert tunnels[other_ip]["Status"] == "UP"
    finally:
        code, _ = _control(lab, {"vpn_connection_id": vpn_id, "outside_ip": down_ip, "status": "UP"})
    assert code == 200 and _telemetry(lab)[down_ip]["Status"] == "UP"


def test_control_hook_rejects_bad_requests(lab: Lab) -> None:
    vpn_id = lab.ready["vpn_connection_id"]
    assert _control(lab, {"vpn_connection_id": vpn_id, "outside_ip": "192.0.2.1", "status": "DOWN"})[0] == 404
    assert _control(lab, {"vpn_connection_id": vpn_id, "outside_ip": "198.51.100.10", "status": "SIDEWAYS"})[0] == 400


# ---------------------------------------------------------------- process lifecycle


def test_sigterm_exits_zero_and_withdraws_ready_file(tmp_path: Path) -> None:
    own = _launch(tmp_path, SEED)
    own.proc.send_signal(signal.SIGTERM)
    assert own.proc.wait(timeout=STOP_TIMEOUT_S) == 0
    assert not own.ready_file.exists()


def test_bad_seed_exits_nonzero_without_ready_file(tmp_path: Path) -> None:
    seed_file, ready_file = tmp_path / "seed.json", tmp_path / "ready.json"
    seed_file.write_text(json.dumps({**SEED, "account_id": "not-an-account"}))
    cmd = [sys.executable, "-m", "drorch.lab.aws_server", "--port", str(free_port())]
    result = subprocess.run(
        [*cmd, "--seed", str(seed_file), "--ready-file", str(ready_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "account_id" in result.stderr
    assert not ready_file.exists()
