"""Service actions (ECS, EKS, OpenStack servers, NKS, Route 53 health checks, DynamoDB, VPN) on the lab.

Each action runs for real through the estate's clients; its effect is read back
through the providers, ``plan`` is checked to list the change before and nothing
after, and a second run proves idempotency. The lab is shared by every test of the
worker, so whatever a test changes is put back in a ``finally`` block or fixture.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from drorch.config.schema import Config
from drorch.engine.actions import dns
from drorch.engine.catalogue import ActionContext, catalogue
from drorch.errors import InvalidInput, OperationFailed
from drorch.lab.aws_seed import TUNNEL_OUTSIDE_IPS
from drorch.lab.control import Lab, resolve_now
from drorch.providers.aws import dynamodb, ecs, eks, route53
from drorch.providers.aws.dynamodb import LATEST_PARTITION
from drorch.providers.estate import Estate
from drorch.providers.openstack import compute, nks
from tests.helpers import set_vpn_tunnel

CLUSTER, SERVICE = "dr-ecs-cluster", "dr-fargate-service"
EKS_CLUSTER = "eks-prod"
NKS_CLUSTER, NKS_GROUP = "nks-prod", "default-worker"


def run(estate: Estate, name: str, **params: Any) -> dict[str, Any]:
    """Validate ``params`` as the executor does and run the action."""
    spec = catalogue()[name]
    return spec.run(ActionContext(estate, {}), spec.params.model_validate(params))


def plan(estate: Estate, name: str, **params: Any) -> list[str]:
    spec = catalogue()[name]
    assert spec.plan is not None, f"{name} has no plan"
    return spec.plan(ActionContext(estate, {}), spec.params.model_validate(params))


def test_new_actions_are_registered_with_their_kind() -> None:
    actions = catalogue()
    mutating = {"ecs.scale", "eks.scale_nodegroup", "openstack.server_start", "openstack.server_stop",
                "nks.scale_nodegroup", "route53.health_check"}
    checks = {"dynamodb.verify_replication", "vpn.assert_up", "notify.webhook"}
    for name in mutating:
        assert actions[name].mutating and actions[name].plan is not None, name
    for name in checks:
        assert not actions[name].mutating, name


@pytest.mark.parametrize("params", [{"site": "tokyo"}, {"site": "tokyo", "size": "warm", "count": 2},
                                    {"site": "tokyo", "size": "cold"}, {"site": "tokyo", "count": -1}])
def test_scale_params_need_exactly_one_valid_size_or_count(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        catalogue()["ecs.scale"].params.model_validate(params)


# ------------------------------------------------------------------------------------------------ ECS


def test_ecs_scale_active_count_and_back(lab: Lab) -> None:
    estate, client = lab.estate, lab.estate.aws("tokyo", "ecs")
    original = ecs.capacity(client, CLUSTER, SERVICE).desired
    label = f"tokyo ECS {CLUSTER}/{SERVICE}"
    try:
        ecs.scale(client, CLUSTER, SERVICE, 1, timeout=30)  # start from the warm count
        assert plan(estate, "ecs.scale", site="tokyo", size="warm") == []
        assert plan(estate, "ecs.scale", site="tokyo", size="active") == [f"{label}: desired 1 -> 4"]
        assert ecs.capacity(client, CLUSTER, SERVICE).desired == 1  # planning changed nothing

        first = run(estate, "ecs.scale", site="tokyo", size="active", timeout=30)
        assert first["changed"] and first["previous"] == 1 and first["desired"] == 4 and first["running"] >= 4
        assert ecs.capacity(client, CLUSTER, SERVICE) == ecs.ServiceCapacity(desired=4, running=4)
        assert plan(estate, "ecs.scale", site="tokyo", size="active") == []
        again = run(estate, "ecs.scale", site="tokyo", size="active", timeout=30)
        assert not again["changed"] and again["desired"] == 4

        assert plan(estate, "ecs.scale", site="tokyo", count=2) == [f"{label}: desired 4 -> 2"]
        run(estate, "ecs.scale", site="tokyo", count=2, timeout=30)
        assert ecs.capacity(client, CLUSTER, SERVICE).desired == 2
        run(estate, "ecs.scale", site="tokyo", size="warm", timeout=30)
        assert ecs.capacity(client, CLUSTER, SERVICE).desired == 1
    finally:
        ecs.scale(client, CLUSTER, SERVICE, original, timeout=30)
    assert ecs.capacity(client, CLUSTER, SERVICE).desired == original


def test_scaling_a_site_that_runs_something_else_is_invalid(lab: Lab) -> None:
    with pytest.raises(InvalidInput, match=r"sites\.seoul\.compute: seoul runs eks, not ecs"):
        run(lab.estate, "ecs.scale", site="seoul", size="active")
    with pytest.raises(InvalidInput, match=r"sites\.tokyo\.compute: tokyo runs ecs, not eks"):
        plan(lab.estate, "eks.scale_nodegroup", site="tokyo", size="active")
    with pytest.raises(InvalidInput, match="unknown site 'osaka'"):
        run(lab.estate, "nks.scale_nodegroup", site="osaka", size="active")


# ------------------------------------------------------------------------------------------------ EKS


@pytest.fixture()
def eks_sizes(lab: Lab) -> Iterator[Any]:
    """Seoul's EKS client; every node group is put back to its size (and limits) afterwards."""
    client = lab.estate.aws("seoul", "eks")
    names = ("app-nodes", "spring-x86")
    saved = {name: eks.nodegroup_size(client, EKS_CLUSTER, name) for name in names}
    try:
        yield client
    finally:
        for name, size in saved.items():
            client.update_nodegroup_config(clusterName=EKS_CLUSTER, nodegroupName=name, scalingConfig={
                "minSize": size.minimum, "maxSize": size.maximum, "desiredSize": size.desired})
            assert eks.nodegroup_size(client, EKS_CLUSTER, name) == size


def test_eks_scale_configured_nodegroups_to_active_and_warm(lab: Lab, eks_sizes: Any) -> None:
    estate, client = lab.estate, eks_sizes
    assert eks.nodegroup_size(client, EKS_CLUSTER, "app-nodes").minimum == 2  # the warm size (its minSize)
    run(estate, "eks.scale_nodegroup", site="seoul", size="warm")
    label = f"seoul EKS {EKS_CLUSTER}/app-nodes"
    assert plan(estate, "eks.scale_nodegroup", site="seoul", size="active") == [f"{label}: desired 2 -> 4"]
    assert eks.nodegroup_size(client, EKS_CLUSTER, "app-nodes").desired == 2

    first = run(estate, "eks.scale_nodegroup", site="seoul", size="active", timeout=30)
    assert first == {"nodegroups": {"app-nodes": {"previous": 2, "desired": 4}}, "changed": True}
    now = eks.nodegroup_size(client, EKS_CLUSTER, "app-nodes")
    assert (now.desired, now.minimum, now.status) == (4, 2, "ACTIVE")
    assert plan(estate, "eks.scale_nodegroup", site="seoul", size="active") == []
    assert not run(estate, "eks.scale_nodegroup", site="seoul", size="active", timeout=30)["changed"]

    assert plan(estate, "eks.scale_nodegroup", site="seoul", size="warm") == [f"{label}: desired 4 -> 2"]
    run(estate, "eks.scale_nodegroup", site="seoul", size="warm", timeout=30)
    assert eks.nodegroup_size(client, EKS_CLUSTER, "app-nodes").desired == 2


def test_eks_one_named_nodegroup_by_count(lab: Lab, eks_sizes: Any) -> None:
    estate, client = lab.estate, eks_sizes
    before = eks.nodegroup_size(client, EKS_CLUSTER, "spring-x86").desired
    others = eks.nodegroup_size(client, EKS_CLUSTER, "app-nodes")
    assert plan(estate, "eks.scale_nodegroup", site="seoul", nodegroup="spring-x86", count=3) == [
        f"seoul EKS {EKS_CLUSTER}/spring-x86: desired {before} -> 3"]
    run(estate, "eks.scale_nodegroup", site="seoul", nodegroup="spring-x86", count=3, timeout=30)
    assert eks.nodegroup_size(client, EKS_CLUSTER, "spring-x86").desired == 3
    assert eks.nodegroup_size(client, EKS_CLUSTER, "app-nodes") == others  # the others untouched
    assert plan(estate, "eks.scale_nodegroup", site="seoul", nodegroup="spring-x86", count=3) == []
    with pytest.raises(InvalidInput, match="spring-x86: no active size is configured; give 'count' instead"):
        run(estate, "eks.scale_nodegroup", site="seoul", nodegroup="spring-x86", size="active")
    with pytest.raises(OperationFailed, match="EKS node group eks-prod/no-such-group not found"):
        run(estate, "eks.scale_nodegroup", site="seoul", nodegroup="no-such-group", count=1)


# ----------------------------------------------------------------------------------- OpenStack servers


@pytest.fixture()
def servers(lab: Lab) -> Iterator[Any]:
    """The NHN connection; each configured server is powered back to its state before the test."""
    conn = lab.estate.openstack("nhn")
    saved = {s.name: s.status for s in compute.servers(conn, ["nhn-app-1", "nhn-app-2"])}
    try:
        yield conn
    finally:
        for name, status in saved.items():
            (compute.start if status == "ACTIVE" else compute.stop)(conn, name, 60)
        assert {s.name: s.status for s in compute.servers(conn, list(saved))} == saved


def test_openstack_servers_start_and_stop(lab: Lab, servers: Any) -> None:
    estate, conn = lab.estate, servers
    compute.start(conn, "nhn-app-1", 60)
    compute.stop(conn, "nhn-app-2", 60)  # the lab's warm standby: one server on, one off

    def status() -> dict[str, str]:
        return {s.name: s.status for s in compute.servers(conn, ["nhn-app-1", "nhn-app-2"])}

    assert plan(estate, "openstack.server_start", site="nhn") == ["nhn server nhn-app-2: SHUTOFF -> ACTIVE"]
    assert status() == {"nhn-app-1": "ACTIVE", "nhn-app-2": "SHUTOFF"}
    first = run(estate, "openstack.server_start", site="nhn", timeout=60)
    assert first == {"servers": {"nhn-app-1": "ACTIVE", "nhn-app-2": "ACTIVE"}, "changed": ["nhn-app-2"]}
    assert status() == {"nhn-app-1": "ACTIVE", "nhn-app-2": "ACTIVE"}
    assert plan(estate, "openstack.server_start", site="nhn") == []
    assert run(estate, "openstack.server_start", site="nhn", timeout=60)["changed"] == []

    only = {"site": "nhn", "servers": ["nhn-app-2"]}
    assert plan(estate, "openstack.server_stop", **only) == ["nhn server nhn-app-2: ACTIVE -> SHUTOFF"]
    assert run(estate, "openstack.server_stop", **only, timeout=60)["changed"] == ["nhn-app-2"]
    assert status() == {"nhn-app-1": "ACTIVE", "nhn-app-2": "SHUTOFF"}
    assert plan(estate, "openstack.server_stop", **only) == []
    assert run(estate, "openstack.server_stop", **only, timeout=60)["changed"] == []
    with pytest.raises(OperationFailed, match=r"server\(s\) not found .*: nhn-app-9"):
        run(estate, "openstack.server_stop", site="nhn", servers=["nhn-app-9"])


# ------------------------------------------------------------------------------------------------ NKS


def test_nks_scale_to_active_and_warm(lab: Lab) -> None:
    estate, conn = lab.estate, lab.estate.openstack("nhn")
    original = nks.nodegroup(conn, NKS_CLUSTER, NKS_GROUP).node_count
    label = f"nhn NKS {NKS_CLUSTER}/{NKS_GROUP}"
    try:
        nks.scale(conn, NKS_CLUSTER, NKS_GROUP, 1, timeout=60)  # the group's min_node_count: warm
        assert plan(estate, "nks.scale_nodegroup", site="nhn", size="warm") == []
        assert plan(estate, "nks.scale_nodegroup", site="nhn", size="active") == [f"{label}: desired 1 -> 3"]
        first = run(estate, "nks.scale_nodegroup", site="nhn", size="active", timeout=60)
        assert (first["previous"], first["node_count"], first["status"], first["changed"]) == (
            1, 3, "UPDATE_COMPLETE", True)
        assert nks.nodegroup(conn, NKS_CLUSTER, NKS_GROUP).node_count == 3
        assert plan(estate, "nks.scale_nodegroup", site="nhn", size="active") == []
        assert not run(estate, "nks.scale_nodegroup", site="nhn", size="active", timeout=60)["changed"]
        with pytest.raises(OperationFailed, match="cannot scale to 9 nodes, outside its limits"):
            run(estate, "nks.scale_nodegroup", site="nhn", count=9, timeout=60)
        run(estate, "nks.scale_nodegroup", site="nhn", size="warm", timeout=60)
        assert nks.nodegroup(conn, NKS_CLUSTER, NKS_GROUP).node_count == 1
    finally:
        nks.scale(conn, NKS_CLUSTER, NKS_GROUP, original, timeout=60)


# ------------------------------------------------------------------------------------ Route 53 health


@pytest.fixture()
def primary_check(lab: Lab) -> Iterator[tuple[str, str]]:
    """(site, health check id) of the published PRIMARY; the check's flags are put back afterwards."""
    pair = dns.active_sites(lab.estate)
    assert "PRIMARY" in pair and "SECONDARY" in pair, f"the lab publishes a failover pair, not {pair}"
    site = pair["PRIMARY"]
    check_id = lab.config.dns.sites[site].health_check_id
    assert check_id is not None
    saved = route53.health_check(lab.estate.route53, check_id)
    try:
        yield site, check_id
    finally:
        route53.update_health_check(lab.estate.route53, check_id, inverted=saved.inverted, disabled=saved.disabled)
        assert route53.health_check(lab.estate.route53, check_id) == saved


def test_route53_health_check_inversion_moves_traffic(lab: Lab, primary_check: tuple[str, str]) -> None:
    estate, (site, check_id) = lab.estate, primary_check
    route53.update_health_check(estate.route53, check_id, inverted=False, disabled=False)
    secondary = estate.config.dns.sites[dns.active_sites(estate)["SECONDARY"]].value
    assert resolve_now(lab.layout.root).set_identifier == site
    label = f"{site} Route 53 health check {check_id}"

    assert plan(estate, "route53.health_check", site=site, inverted=True) == [f"{label}: inverted false -> true"]
    first = run(estate, "route53.health_check", site=site, inverted=True)
    assert first == {"health_check_id": check_id, "inverted": True, "disabled": False, "changed": ["inverted"]}
    assert route53.health_check(estate.route53, check_id).inverted
    assert resolve_now(lab.layout.root).value == secondary  # Route 53's own failover answers the SECONDARY
    assert plan(estate, "route53.health_check", site=site, inverted=True) == []
    assert run(estate, "route53.health_check", site=site, inverted=True)["changed"] == []

    both = {"site": site, "inverted": False, "disabled": True}
    assert plan(estate, "route53.health_check", **both) == [f"{label}: inverted true -> false",
                                                            f"{label}: disabled false -> true"]
    assert run(estate, "route53.health_check", **both)["changed"] == ["disabled", "inverted"]
    check = route53.health_check(estate.route53, check_id)
    assert (check.inverted, check.disabled) == (False, True)
    run(estate, "route53.health_check", site=site, disabled=False)
    assert resolve_now(lab.layout.root).set_identifier == site


def test_route53_health_check_needs_a_flag(lab: Lab) -> None:
    with pytest.raises(ValidationError, match="give 'inverted' and/or 'disabled'"):
        catalogue()["route53.health_check"].params.model_validate({"site": "seoul"})
    with pytest.raises(InvalidInput, match="no Route 53 health check configured for osaka"):
        run(lab.estate, "route53.health_check", site="osaka", inverted=True)


# ------------------------------------------------------------------------------------------- DynamoDB

OTHER_REGION = "ap-northeast-2"  # seoul's region, writing probes that tokyo's table receives


@pytest.fixture()
def tokyo_probes(lab: Lab) -> Iterator[tuple[Any, str, list[int]]]:
    """Tokyo's probe table with no marker in it; probes the test writes (seqs appended to the list) are
    deleted afterwards and the markers that were there are put back."""
    ddb = lab.estate.aws("tokyo", "dynamodb")
    configured = lab.config.sites["tokyo"].dynamodb
    assert configured is not None and configured.probe_table
    table = configured.probe_table
    markers = ddb.query(TableName=table, KeyConditionExpression="#r = :m", ExpressionAttributeNames={"#r": "region"},
                        ExpressionAttributeValues={":m": {"S": LATEST_PARTITION}}, ConsistentRead=True)["Items"]
    written: list[int] = []
    for item in markers:
        ddb.delete_item(TableName=table, Key={"region": item["region"], "seq": item["seq"]})
    try:
        yield ddb, table, written
    finally:
        ddb.delete_item(TableName=table, Key={"region": {"S": LATEST_PARTITION},
                                              "seq": {"N": str(dynamodb.marker_key(OTHER_REGION))}})
        for seq in written:
            ddb.delete_item(TableName=table, Key={"region": {"S": OTHER_REGION}, "seq": {"N": str(seq)}})
        for item in markers:
            ddb.put_item(TableName=table, Item=item)


def test_dynamodb_unknown_lag_fails_unless_allowed(lab: Lab, tokyo_probes: tuple[Any, str, list[int]]) -> None:
    with pytest.raises(OperationFailed, match=r"replication lag unknown: no probe item from another region has "
                                              r"arrived in dr-rpo-probe .*allow_unknown: true"):
        run(lab.estate, "dynamodb.verify_replication", site="tokyo", max_lag_seconds=5)
    result = run(lab.estate, "dynamodb.verify_replication", site="tokyo", max_lag_seconds=5, allow_unknown=True)
    assert result["lag_known"] is False
    assert result["tables"] == {"dr-orders-table": "ACTIVE", "dr-products-table": "ACTIVE"}


def test_dynamodb_lag_within_and_beyond_the_bound(lab: Lab, tokyo_probes: tuple[Any, str, list[int]]) -> None:
    """Lag is how much older seoul's newest probe is in tokyo's copy than in seoul's own table."""
    ddb, table, written = tokyo_probes
    seoul = lab.estate.aws("seoul", "dynamodb")
    marker = {"region": {"S": LATEST_PARTITION}, "seq": {"N": str(dynamodb.marker_key(OTHER_REGION))}}
    saved = seoul.get_item(TableName=table, Key=marker, ConsistentRead=True).get("Item")
    now = time.time()
    try:
        dynamodb.write_probe(seoul, table, OTHER_REGION, 3, now + 1)  # seoul's own newest probe
        written.append(1)
        dynamodb.write_probe(ddb, table, OTHER_REGION, 1, now - 59)  # tokyo holds one a minute older
        with pytest.raises(OperationFailed, match=r"lag from ap-northeast-2 is 60\.\d s \(bound 5 s\)"):
            run(lab.estate, "dynamodb.verify_replication", site="tokyo", max_lag_seconds=5)
        written.append(3)
        dynamodb.write_probe(ddb, table, OTHER_REGION, 3, now + 1)  # it arrived: nothing pending
        result = run(lab.estate, "dynamodb.verify_replication", site="tokyo", max_lag_seconds=5)
        assert result["lag_known"] and result["lag_seconds"][OTHER_REGION] == 0.0
    finally:
        seoul.delete_item(TableName=table, Key={"region": {"S": OTHER_REGION}, "seq": {"N": "3"}})
        if saved is not None:
            seoul.put_item(TableName=table, Item=saved)
        else:
            seoul.delete_item(TableName=table, Key=marker)


def _with_dynamodb_tables(config: Config, site: str, tables: list[str]) -> Config:
    entry = config.sites[site]
    assert entry.dynamodb is not None
    changed = entry.model_copy(update={"dynamodb": entry.dynamodb.model_copy(update={"tables": tables})})
    return config.model_copy(update={"sites": {**config.sites, site: changed}})


def test_dynamodb_missing_table_or_none_configured(lab: Lab) -> None:
    estate = Estate(_with_dynamodb_tables(lab.config, "tokyo", ["dr-orders-table", "no-such-table"]))
    with pytest.raises(OperationFailed, match=r"cannot read the tables: .*DynamoDB table no-such-table not found"):
        run(estate, "dynamodb.verify_replication", site="tokyo", allow_unknown=True)
    with pytest.raises(InvalidInput, match="no DynamoDB tables configured for nhn"):
        run(lab.estate, "dynamodb.verify_replication", site="nhn")


# ------------------------------------------------------------------------------------- VPN (AWS side)


def test_vpn_assert_up_from_aws_telemetry(lab: Lab) -> None:
    first, second = TUNNEL_OUTSIDE_IPS
    result = run(lab.estate, "vpn.assert_up", site="nhn")
    assert result == {"up": 2, "tunnels": {first: "UP", second: "UP"}, "down": []}
    try:
        set_vpn_tunnel(lab, first, "DOWN")
        with pytest.raises(OperationFailed, match=f"nhn VPN: 1 of 2 tunnels up, 2 needed; down: {first}$"):
            run(lab.estate, "vpn.assert_up", site="nhn")
        assert run(lab.estate, "vpn.assert_up", site="nhn", min_tunnels=1)["down"] == [first]
        set_vpn_tunnel(lab, second, "DOWN")
        with pytest.raises(OperationFailed, match=f"0 of 2 tunnels up, 1 needed; down: {first}, {second}"):
            run(lab.estate, "vpn.assert_up", site="nhn", min_tunnels=1)
    finally:
        set_vpn_tunnel(lab, first, "UP")
        set_vpn_tunnel(lab, second, "UP")
    assert run(lab.estate, "vpn.assert_up", site="nhn")["up"] == 2
    with pytest.raises(OperationFailed, match="3 tunnels must be up but it has only 2"):
        run(lab.estate, "vpn.assert_up", site="nhn", min_tunnels=3)
    with pytest.raises(InvalidInput, match="no VPN configured for tokyo"):
        run(lab.estate, "vpn.assert_up", site="tokyo")
