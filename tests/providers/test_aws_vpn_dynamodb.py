"""VPN tunnels and DynamoDB tables and probes, against the lab's moto server through the estate's boto3 clients.

The lab is shared: a tunnel forced DOWN is brought back UP, and probe items and
markers written here are removed (or put back as they were) in ``finally`` blocks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from drorch.errors import OperationFailed
from drorch.lab.aws_seed import TUNNEL_OUTSIDE_IPS
from drorch.lab.control import Lab
from drorch.providers.aws import dynamodb, vpn
from drorch.providers.aws.dynamodb import LATEST_PARTITION, Probe
from tests.helpers import set_vpn_tunnel, vpn_connection_id

REGION = "ap-northeast-2"


def test_both_tunnels_are_up(lab: Lab) -> None:
    found = vpn.tunnels(lab.estate.aws("seoul", "ec2"), vpn_connection_id(lab))
    assert sorted(t.outside_ip for t in found) == sorted(TUNNEL_OUTSIDE_IPS)
    assert all(t.up and t.accepted_routes == 1 and t.status_message == "" for t in found)
    assert all(isinstance(t.last_status_change, datetime) and t.last_status_change.tzinfo for t in found)


def test_a_tunnel_forced_down_is_seen_then_restored(lab: Lab) -> None:
    ec2 = lab.estate.aws("seoul", "ec2")
    down_ip, other_ip = TUNNEL_OUTSIDE_IPS
    before = {t.outside_ip: t for t in vpn.tunnels(ec2, vpn_connection_id(lab))}
    try:
        set_vpn_tunnel(lab, down_ip, "DOWN")
        after = {t.outside_ip: t for t in vpn.tunnels(ec2, vpn_connection_id(lab))}
        assert not after[down_ip].up and after[down_ip].accepted_routes == 0
        assert after[down_ip].status_message == "lab: tunnel forced down"
        changed, previous = after[down_ip].last_status_change, before[down_ip].last_status_change
        assert changed is not None and previous is not None and changed >= previous
        assert after[other_ip] == before[other_ip]
    finally:
        set_vpn_tunnel(lab, down_ip, "UP")
    assert all(t.up for t in vpn.tunnels(ec2, vpn_connection_id(lab)))


def test_unknown_vpn_connection(lab: Lab) -> None:
    with pytest.raises(OperationFailed, match="VPN connection vpn-0123456789abcdef0 not found in ap-northeast-2"):
        vpn.tunnels(lab.estate.aws("seoul", "ec2"), "vpn-0123456789abcdef0")


@pytest.mark.parametrize(
    ("site", "table", "side"), [("seoul", "orders", "primary"), ("tokyo", "dr-orders-table", "standby")]
)
def test_table_status_with_stream(lab: Lab, site: str, table: str, side: str) -> None:
    configured = lab.config.sites[site].dynamodb
    assert configured is not None and table in configured.tables
    status = dynamodb.table_status(lab.estate.aws(site, "dynamodb"), table)
    assert (status.name, status.status, status.stream_enabled) == (table, "ACTIVE", True)
    assert status.stream_arn == lab.state.aws_ready["dynamodb"][side]["streams"][table]
    assert status.item_count >= 0


def test_unknown_table(lab: Lab) -> None:
    with pytest.raises(OperationFailed, match="DynamoDB table no-such-table not found in ap-northeast-1"):
        dynamodb.table_status(lab.estate.aws("tokyo", "dynamodb"), "no-such-table")


@pytest.fixture
def probe_table(lab: Lab) -> Iterator[tuple[Any, str]]:
    """Seoul's probe table; afterwards the probes written here are deleted and REGION's marker is put back."""
    ddb = lab.estate.aws("seoul", "dynamodb")
    configured = lab.config.sites["seoul"].dynamodb
    assert configured is not None and configured.probe_table
    table = configured.probe_table
    marker = {"region": {"S": LATEST_PARTITION}, "seq": {"N": str(dynamodb.marker_key(REGION))}}
    saved = ddb.get_item(TableName=table, Key=marker, ConsistentRead=True).get("Item")
    before = dynamodb.latest_probes(ddb, table).get(REGION)
    base = before.seq if before else 0
    try:
        yield ddb, table
    finally:
        for seq in range(base + 1, base + 4):
            ddb.delete_item(TableName=table, Key={"region": {"S": REGION}, "seq": {"N": str(seq)}})
        if saved is None:
            ddb.delete_item(TableName=table, Key=marker)
        else:
            ddb.put_item(TableName=table, Item=saved)


def test_probes_and_the_latest_marker(probe_table: tuple[Any, str]) -> None:
    ddb, table = probe_table
    before = dynamodb.latest_probes(ddb, table).get(REGION)
    base = before.seq if before else 0  # 0 on a fresh lab: the probes are seq 1..3
    written = {}
    for seq in range(base + 1, base + 4):
        written[seq] = time.time()
        dynamodb.write_probe(ddb, table, REGION, seq, written[seq])
    latest = dynamodb.latest_probes(ddb, table)
    assert latest[REGION] == Probe(REGION, base + 3, written[base + 3])  # the float comes back exactly

    dynamodb.write_probe(ddb, table, REGION, base + 1, written[base + 1])  # a replayed older probe
    assert dynamodb.latest_probes(ddb, table)[REGION].seq == base + 3  # the marker never moves back in time
    history = ddb.query(
        TableName=table,
        KeyConditionExpression="#r = :r",
        ExpressionAttributeNames={"#r": "region"},
        ExpressionAttributeValues={":r": {"S": REGION}},
    )["Items"]
    assert {int(item["seq"]["N"]) for item in history} >= set(written)

    restarted = time.time()  # a writer whose counter restarted: lower seq, newer time
    dynamodb.write_probe(ddb, table, REGION, base + 1, restarted)
    assert dynamodb.latest_probes(ddb, table)[REGION] == Probe(REGION, base + 1, restarted)


def test_invalid_probe_is_refused(probe_table: tuple[Any, str]) -> None:
    ddb, table = probe_table
    with pytest.raises(ValueError, match="invalid probe"):
        dynamodb.write_probe(ddb, table, LATEST_PARTITION, 1, time.time())
    with pytest.raises(ValueError, match="invalid probe"):
        dynamodb.write_probe(ddb, table, REGION, 1, float("nan"))


def test_dynamodb_probe_reports_cloudwatch_replication_latency(lab: Lab) -> None:
    from drorch.probes import dynamodb as dynamodb_probe

    watch = lab.estate.aws("tokyo", "cloudwatch")
    watch.put_metric_data(Namespace="AWS/DynamoDB", MetricData=[{
        "MetricName": "ReplicationLatency", "Value": 850.0, "Unit": "Milliseconds",
        "Dimensions": [{"Name": "TableName", "Value": "dr-orders-table"},
                       {"Name": "ReceivingRegion", "Value": "ap-northeast-1"}]}])
    result = dynamodb_probe.probe(lab.estate, "tokyo")
    assert result is not None and result.ok, result
    assert result.detail["aws_replication_latency"] == {"dr-orders-table": 0.85}
    assert result.detail["tables"]["dr-orders-table"] == "ACTIVE"
    stream = result.detail["streams"]["dr-orders-table"]
    assert stream["status"] == "ENABLED" and stream["open_shards"] >= 1
