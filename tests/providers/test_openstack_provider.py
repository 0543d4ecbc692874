"""OpenStack provider against the lab's NHN cloud, through its clouds.yaml and the unmodified openstacksdk.

The lab is shared by every test of the worker: whatever a test stops, scales or resizes
is put back in a ``finally`` block. The waiting paths (power changes, resizes and scaling
that take time) run against a private lab OpenStack API started with a transition delay.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from unittest import mock

import openstack.connection
import openstack.exceptions
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
STANDBY = "nhn-app-2"  # SHUTOFF in the seed
LB = "nhn-app-lb"
SMALL, MEDIUM, LARGE = "t2.c1m1", "m2.c2m4", "m2.c4m8"
MEDIUM_ID = "f1a70000-0000-4000-8000-000000000002"
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
    assert [s.flavor for s in found] == [MEDIUM, MEDIUM]


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


# ---------------------------------------------------------------- resize


def _server(conn: openstack.connection.Connection, name: str) -> compute.ServerStatus:
    return compute.servers(conn, [name])[0]


def _until_status(conn: openstack.connection.Connection, name: str, status: str, timeout: float = 10) -> None:
    """Poll until ``name`` is ``status`` with no task, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (current := _server(conn, name)).status != status or not current.settled:
        assert time.monotonic() < deadline, f"{name} still {current.status} ({current.task_state})"
        time.sleep(0.05)


def test_resize_up_and_back_is_idempotent(conn: openstack.connection.Connection) -> None:
    original = _server(conn, SERVER)
    assert (original.status, original.flavor) == ("ACTIVE", MEDIUM)
    try:
        assert compute.resize(conn, SERVER, LARGE, timeout=30) is True
        assert compute.resize(conn, SERVER, LARGE, timeout=30) is False  # nothing sent: Nova would answer 400
        resized = _server(conn, SERVER)
        assert (resized.status, resized.flavor, resized.power_state, resized.task_state) == ("ACTIVE", LARGE, 1, None)
        assert loadbalancer.wait_online(conn, LB, timeout=10).online
        assert compute.resize(conn, SERVER, MEDIUM_ID, timeout=30) is True  # a flavor id works as well as a name
        assert compute.resize(conn, SERVER, MEDIUM, timeout=30) is False
        assert (_server(conn, SERVER).status, _server(conn, SERVER).flavor) == ("ACTIVE", MEDIUM)
    finally:
        compute.resize(conn, SERVER, original.flavor or MEDIUM, timeout=30)


def test_resizing_a_shutoff_server_keeps_it_off(conn: openstack.connection.Connection) -> None:
    original = _server(conn, STANDBY)
    assert (original.status, original.flavor) == ("SHUTOFF", MEDIUM)
    try:
        assert compute.resize(conn, STANDBY, SMALL, timeout=30) is True
        resized = _server(conn, STANDBY)
        assert (resized.status, resized.flavor, resized.power_state) == ("SHUTOFF", SMALL, 4)
        assert _members(loadbalancer.status(conn, LB))[STANDBY] == "OFFLINE"
    finally:
        compute.resize(conn, STANDBY, original.flavor or MEDIUM, timeout=30)
    assert (_server(conn, STANDBY).status, _server(conn, STANDBY).flavor) == ("SHUTOFF", MEDIUM)


def test_unknown_flavor_names_the_existing_ones(conn: openstack.connection.Connection) -> None:
    expected = rf"flavor m9\.huge not found in cloud nhn-lab; it has {MEDIUM}, {LARGE}, {SMALL}$"
    with pytest.raises(OperationFailed, match=expected):
        compute.resize(conn, SERVER, "m9.huge", timeout=5)
    assert _server(conn, SERVER).flavor == MEDIUM


def test_lab_nova_refuses_resizes_like_nova(conn: openstack.connection.Connection) -> None:
    server_id = _server(conn, SERVER).id
    with pytest.raises(openstack.exceptions.BadRequestException, match="Resize requires a flavor change"):
        conn.compute.resize_server(server_id, MEDIUM_ID)
    with pytest.raises(openstack.exceptions.BadRequestException, match="Unable to locate requested flavor"):
        conn.compute.resize_server(server_id, "no-such-flavor")
    with pytest.raises(openstack.exceptions.ConflictException, match=r"confirmResize.*in vm_state active"):
        conn.compute.confirm_server_resize(server_id)
    with pytest.raises(openstack.exceptions.ConflictException, match=r"revertResize.*in vm_state active"):
        conn.compute.revert_server_resize(server_id)
    assert _server(conn, SERVER).flavor == MEDIUM


def test_lab_revert_resize_restores_the_old_flavor(conn: openstack.connection.Connection) -> None:
    large = compute.find_flavor(conn, LARGE)
    server_id = _server(conn, SERVER).id
    try:
        conn.compute.resize_server(server_id, large.id)
        _until_status(conn, SERVER, "VERIFY_RESIZE")
        waiting = conn.compute.get_server(server_id)
        assert (waiting.flavor.name, waiting.vm_state, waiting.power_state) == (LARGE, "resized", 1)
        with pytest.raises(openstack.exceptions.ConflictException, match=r"resize.*in vm_state resized"):
            conn.compute.resize_server(server_id, compute.find_flavor(conn, SMALL).id)
        conn.compute.revert_server_resize(server_id)
        _until_status(conn, SERVER, "ACTIVE")
        assert _server(conn, SERVER).flavor == MEDIUM
        with pytest.raises(openstack.exceptions.ConflictException, match="revertResize"):
            conn.compute.revert_server_resize(server_id)  # nothing left to revert
    finally:
        if _server(conn, SERVER).status == "VERIFY_RESIZE":
            conn.compute.revert_server_resize(server_id)
            _until_status(conn, SERVER, "ACTIVE")
        compute.resize(conn, SERVER, MEDIUM, timeout=30)


def test_resize_into_error_gives_novas_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab never fails a resize, so a stubbed SDK stands in for a cloud that does (no valid host)."""
    monkeypatch.setattr(compute, "POLL_SECONDS", 0.01)

    def server(status: str, task: str | None) -> SimpleNamespace:
        return SimpleNamespace(name="app", id="s1", status=status, power_state=1, task_state=task,
                               flavor=SimpleNamespace(original_name="small", id="small"),
                               fault={"code": 500, "message": "No valid host was found."})

    fake = mock.Mock()
    fake.config.name = "stub"
    fake.compute.find_flavor.return_value = SimpleNamespace(id="f-big", name="big")
    fake.compute.servers.return_value = [server("ACTIVE", None)]
    fake.compute.get_server.side_effect = [server("RESIZE", "resize_prep"), server("ERROR", None),
                                           server("ERROR", None)]
    conn = cast(openstack.connection.Connection, fake)
    with pytest.raises(OperationFailed, match=r"^OpenStack server app went into ERROR resizing to big: No valid host"):
        compute.resize(conn, "app", "big", timeout=5)
    fake.compute.resize_server.assert_called_once_with("s1", "f-big")
    fake.compute.confirm_server_resize.assert_not_called()


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


def test_resize_waits_through_verify_resize(slow_cloud: openstack.connection.Connection) -> None:
    expected = r"nhn-app-1 is still RESIZE \(resize_prep\) after 0 s resizing to m2\.c4m8$"
    with pytest.raises(OperationFailed, match=expected):
        compute.resize(slow_cloud, SERVER, LARGE, timeout=0)
    server_id = _server(slow_cloud, SERVER).id
    with pytest.raises(openstack.exceptions.ConflictException, match="in task_state resize_"):
        slow_cloud.compute.resize_server(server_id, compute.find_flavor(slow_cloud, SMALL).id)
    assert compute.resize(slow_cloud, SERVER, LARGE, timeout=10) is True  # picks up the resize under way
    resized = _server(slow_cloud, SERVER)
    assert (resized.status, resized.flavor, resized.task_state) == ("ACTIVE", LARGE, None)

    # A resize left waiting for confirmation: to the flavor asked for, it is confirmed; to another one, refused.
    slow_cloud.compute.resize_server(server_id, MEDIUM_ID)
    _until_status(slow_cloud, SERVER, "VERIFY_RESIZE")
    with pytest.raises(OperationFailed, match=f"waits to confirm a resize to {MEDIUM}, not {SMALL}: confirm or revert"):
        compute.resize(slow_cloud, SERVER, SMALL, timeout=10)
    assert compute.resize(slow_cloud, SERVER, MEDIUM, timeout=10) is True
    assert (_server(slow_cloud, SERVER).status, _server(slow_cloud, SERVER).flavor) == ("ACTIVE", MEDIUM)

    # A SHUTOFF server passes through RESIZE and VERIFY_RESIZE powered off and comes back SHUTOFF.
    assert compute.resize(slow_cloud, STANDBY, SMALL, timeout=10) is True
    assert (_server(slow_cloud, STANDBY).status, _server(slow_cloud, STANDBY).flavor) == ("SHUTOFF", SMALL)
