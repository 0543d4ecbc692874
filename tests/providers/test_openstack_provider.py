"""OpenStack provider against the lab's NHN cloud, through its clouds.yaml and the unmodified openstacksdk.

The lab is shared by every test of the worker: whatever a test stops or scales is
put back in a ``finally`` block. The waiting paths (power changes and scaling that
take time) run against a private lab OpenStack API started with a transition delay.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack.connection
import pytest
import yaml

from drorch.config.schema import Config, OpenStackCompute
from drorch.errors import InvalidInput, OperationFailed
from drorch.lab.control import Lab
from drorch.lab.ports import free_port, wait_listening
from drorch.providers.openstack import compute, loadbalancer, nks
from drorch.providers.openstack.connection import connect, open_cloud
from tests.helpers import stop_process

SERVER = "nhn-app-1"
LB = "nhn-app-lb"
CLUSTER, NODEGROUP = "nks-prod", "default-worker"


@pytest.fixture(scope="module")
def conn(lab: Lab) -> Iterator[openstack.connection.Connection]:
    connection = connect(lab.config, "nhn")
    try:
        yield connection
    finally:
        connection.close()


def _with_provider(config: Config, site: str, **changes: Any) -> Config:
    """A copy of ``config`` whose ``site`` provider has ``changes`` applied."""
    entry = config.sites[site]
    provider = entry.provider.model_copy(update=changes)
    sites = {**config.sites, site: entry.model_copy(update={"provider": provider})}
    return config.model_copy(update={"sites": sites})


def _members(status: loadbalancer.LoadBalancerStatus) -> dict[str, str]:
    return dict(status.members)


def test_connect_and_list_the_configured_servers(lab: Lab, conn: openstack.connection.Connection) -> None:
    configured = lab.config.sites["nhn"].compute
    assert isinstance(configured, OpenStackCompute)
    found = compute.servers(conn, configured.servers)
    assert [s.name for s in found] == configured.servers == ["nhn-app-1", "nhn-app-2"]
    assert [(s.status, s.power_state) for s in found] == [("ACTIVE", 1), ("SHUTOFF", 4)]
    assert all(s.id and s.task_state is None for s in found)


def test_unknown_server_is_named(conn: openstack.connection.Connection) -> None:
    with pytest.raises(OperationFailed, match=r"not found in cloud nhn-lab: nhn-app-9$"):
        compute.servers(conn, ["nhn-app-1", "nhn-app-9"])


def test_stop_and_start_are_idempotent_and_show_in_the_load_balancer(conn: openstack.connection.Connection) -> None:
    before = loadbalancer.status(conn, LB)
    assert before.online and _members(before) == {"nhn-app-1": "ONLINE", "nhn-app-2": "OFFLINE"}
    try:
        assert compute.stop(conn, SERVER) is True
        assert compute.stop(conn, SERVER) is False
        assert compute.servers(conn, [SERVER])[0].status == "SHUTOFF"
        down = loadbalancer.status(conn, LB)
        assert _members(down)[SERVER] == "OFFLINE"
        assert (down.provisioning_status, down.operating_status, down.online) == ("ACTIVE", "ERROR", False)

        assert compute.start(conn, SERVER) is True
        assert compute.start(conn, SERVER) is False  # Nova would answer 409 to a second start
        up = loadbalancer.wait_online(conn, LB, timeout=30)
        assert _members(up)[SERVER] == "ONLINE" and up.operating_status == "ONLINE"
        assert up.id == before.id
    finally:
        compute.start(conn, SERVER)


def test_wait_online_returns_at_once_when_online(conn: openstack.connection.Connection) -> None:
    status = loadbalancer.wait_online(conn, LB, timeout=5)
    assert status.online and status.name == LB


def test_unknown_load_balancer(conn: openstack.connection.Connection) -> None:
    with pytest.raises(OperationFailed, match="load balancer nhn-missing-lb not found"):
        loadbalancer.status(conn, "nhn-missing-lb")


def test_nks_scale_up_and_back_is_idempotent(lab: Lab, conn: openstack.connection.Connection) -> None:
    configured = lab.config.sites["nhn"].compute
    assert isinstance(configured, OpenStackCompute) and configured.nks_active_count == 3
    start = nks.nodegroup(conn, CLUSTER, NODEGROUP)
    assert (start.node_count, start.min_node_count, start.max_node_count) == (1, 1, 5)
    try:
        scaled = nks.scale(conn, CLUSTER, NODEGROUP, 3, timeout=30)
        assert (scaled.node_count, scaled.status) == (3, "UPDATE_COMPLETE")
        assert nks.scale(conn, CLUSTER, NODEGROUP, 3, timeout=30) == scaled
        assert nks.nodegroup(conn, CLUSTER, NODEGROUP).node_count == 3
        back = nks.scale(conn, CLUSTER, NODEGROUP, 1, timeout=30)
        assert (back.node_count, back.status) == (1, "UPDATE_COMPLETE")
        assert nks.scale(conn, CLUSTER, NODEGROUP, 1, timeout=30) == back
    finally:
        nks.scale(conn, CLUSTER, NODEGROUP, start.node_count, timeout=30)


@pytest.mark.parametrize("count", [0, 6])
def test_nks_count_outside_limits_fails_before_sending(conn: openstack.connection.Connection, count: int) -> None:
    with pytest.raises(OperationFailed, match=rf"cannot scale to {count} nodes.*min_node_count 1, max_node_count 5"):
        nks.scale(conn, CLUSTER, NODEGROUP, count, timeout=5)
    assert nks.nodegroup(conn, CLUSTER, NODEGROUP).node_count == 1


def test_unknown_cluster_or_nodegroup(conn: openstack.connection.Connection) -> None:
    with pytest.raises(OperationFailed, match="Cluster nks-nope could not be found"):
        nks.nodegroup(conn, "nks-nope", NODEGROUP)
    with pytest.raises(OperationFailed, match="Nodegroup gpu-worker could not be found"):
        nks.nodegroup(conn, CLUSTER, "gpu-worker")


def test_bad_password_fails_without_printing_it(lab: Lab, tmp_path: Path) -> None:
    clouds = yaml.safe_load(lab.layout.clouds_file.read_text())
    real = clouds["clouds"]["nhn-lab"]["auth"]["password"]
    clouds["clouds"]["nhn-lab"]["auth"]["password"] = "wrong-Pa55word-never-print"
    bad = tmp_path / "clouds.yaml"
    bad.write_text(yaml.safe_dump(clouds))
    with pytest.raises(OperationFailed) as caught:
        connect(_with_provider(lab.config, "nhn", clouds_file=bad), "nhn")
    message = str(caught.value)
    assert message == (
        f"OpenStack authentication failed for cloud nhn-lab (check the username/password/project in {bad})"
    )
    assert "wrong-Pa55word" not in message and real not in message


def test_unknown_cloud_lists_the_defined_ones(lab: Lab) -> None:
    expected = r"sites\.nhn\.provider\.cloud: no cloud 'nhn-prod' in .*clouds\.yaml; it defines nhn-lab$"
    with pytest.raises(InvalidInput, match=expected):
        connect(_with_provider(lab.config, "nhn", cloud="nhn-prod"), "nhn")


def test_missing_or_broken_clouds_file(lab: Lab, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"sites\.nhn\.provider\.clouds_file: .*nowhere\.yaml does not exist"):
        connect(_with_provider(lab.config, "nhn", clouds_file=tmp_path / "nowhere.yaml"), "nhn")
    broken = tmp_path / "broken.yaml"
    broken.write_text("clouds:\n  nhn-lab: {auth: {password: s3cret-value\n")
    with pytest.raises(InvalidInput, match=r"is not valid YAML \(line") as caught:
        connect(_with_provider(lab.config, "nhn", clouds_file=broken), "nhn")
    assert "s3cret-value" not in str(caught.value)


def test_wrong_region_is_invalid_input(lab: Lab) -> None:
    with pytest.raises(InvalidInput, match=r"sites\.nhn\.provider\.region: .*KR9"):
        connect(_with_provider(lab.config, "nhn", region="KR9"), "nhn")


def test_site_not_on_openstack(lab: Lab) -> None:
    with pytest.raises(InvalidInput, match=r"sites\.seoul\.provider: site 'seoul' is on aws, not OpenStack"):
        connect(lab.config, "seoul")


# ---------------------------------------------------------------- waiting, on a private slow cloud

PASSWORD = "slow-Pa55word"


@pytest.fixture
def slow_cloud(tmp_path: Path) -> Iterator[openstack.connection.Connection]:
    """A private lab OpenStack API whose power changes and scaling take 0.5 s, connected through clouds.yaml."""
    (tmp_path / "password").write_text(PASSWORD)
    port = free_port()
    with (tmp_path / "api.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "drorch.lab.openstack_api", "--port", str(port), "--user", "slow",
             "--password-file", str(tmp_path / "password"), "--project", "slow-project", "--region", "KR1",
             "--transition-seconds", "0.5"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        assert wait_listening("127.0.0.1", port, timeout=15, still_starting=lambda: proc.poll() is None)
        auth = {
            "auth_url": f"http://127.0.0.1:{port}/v3",
            "username": "slow",
            "password": PASSWORD,
            "project_name": "slow-project",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        }
        clouds = tmp_path / "clouds.yaml"
        clouds.write_text(yaml.safe_dump({"clouds": {"slow": {"auth": auth, "region_name": "KR1"}}}))
        connection = _wait_for_api(clouds)
        try:
            yield connection
        finally:
            connection.close()
    finally:
        stop_process(proc, timeout=5)


def _wait_for_api(clouds: Path) -> openstack.connection.Connection:
    """The port listens a moment before the app is installed (it answers 503 meanwhile)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return open_cloud(clouds, "slow", "KR1")
        except OperationFailed:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_power_changes_wait_for_the_target_state(slow_cloud: openstack.connection.Connection) -> None:
    assert compute.stop(slow_cloud, SERVER, timeout=10) is True
    assert compute.servers(slow_cloud, [SERVER])[0].status == "SHUTOFF"
    assert loadbalancer.status(slow_cloud, LB).operating_status == "ERROR"
    with pytest.raises(OperationFailed, match=r"nhn-app-1 is still SHUTOFF \(powering-on\) after 0 s"):
        compute.start(slow_cloud, SERVER, timeout=0)
    assert compute.start(slow_cloud, SERVER, timeout=10) is True  # picks up the start already under way
    assert compute.servers(slow_cloud, [SERVER])[0].status == "ACTIVE"
    assert loadbalancer.wait_online(slow_cloud, LB, timeout=10).online


def test_scaling_waits_for_update_complete(slow_cloud: openstack.connection.Connection) -> None:
    with pytest.raises(OperationFailed, match="default-worker still UPDATE_IN_PROGRESS after 0 s"):
        nks.scale(slow_cloud, CLUSTER, NODEGROUP, 2, timeout=0)
    assert nks.nodegroup(slow_cloud, CLUSTER, NODEGROUP).status == "UPDATE_IN_PROGRESS"
    scaled = nks.scale(slow_cloud, CLUSTER, NODEGROUP, 4, timeout=10)  # waits out the running update first
    assert (scaled.node_count, scaled.status) == (4, "UPDATE_COMPLETE")
