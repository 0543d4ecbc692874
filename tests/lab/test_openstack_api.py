"""The lab OpenStack API, driven through the real server process and the unmodified openstacksdk.

One server runs for the module; tests that change its state put it back. A second, short-lived
server checks the ``--seed`` file, delayed transitions, clean SIGTERM exit and secret-free logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openstack
import openstack.config
import openstack.connection
import pytest
import requests
from keystoneauth1 import exceptions as ks_exceptions

from drorch.lab.ports import free_port, wait_listening

USER = "drorch"
PASSWORD = "lab-Pa55word-do-not-log"
PROJECT = "nhn-lab"
PROJECT_ID = "8b2f0e1c4d5a4f6e9a7b3c2d1e0f9a8b"
REGION = "KR1"
APP_1 = "5e7e0000-0000-4000-8000-000000000001"
APP_2 = "5e7e0000-0000-4000-8000-000000000002"
LB_ID = "1b000000-0000-4000-8000-000000000001"
POOL_ID = "90010000-0000-4000-8000-000000000001"
CLUSTER_ID = "c1057e70-0000-4000-8000-000000000001"
MAGNUM = {"service_type": "container-infra", "interface": "public", "region_name": REGION}


@dataclass(frozen=True)
class Lab:
    """A running lab API process."""

    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path


def _until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _launch(log: Path, port: int, extra: tuple[str, ...]) -> Lab | None:
    """Start the server on ``port``; None (process stopped) if it did not come up there."""
    password_file = log.with_name("openstack.password")
    password_file.write_text(PASSWORD)
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "drorch.lab.openstack_api", "--host", "127.0.0.1", "--port", str(port),
             "--user", USER, "--password-file", str(password_file), "--project", PROJECT, "--project-id", PROJECT_ID,
             "--region", REGION, *extra],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    # Someone else may have taken the port: wait for our own start-up line, then for the socket.
    base_url = f"http://127.0.0.1:{port}"
    started = _until(lambda: proc.poll() is not None or f"on {base_url}" in log.read_text(), timeout=10)
    if started and proc.poll() is None and wait_listening("127.0.0.1", port, timeout=5):
        return Lab(proc, base_url, log)
    _stop(proc)
    return None


def _start(log: Path, *extra: str) -> Lab:
    """Start the server on a free port, choosing another if the first was taken meanwhile."""
    for _attempt in range(3):
        lab = _launch(log, free_port(), extra)
        if lab is not None:
            return lab
    pytest.fail(f"lab OpenStack API did not start; log:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop the process we started, by PID: SIGTERM, bounded wait, then SIGKILL."""
    proc.terminate()
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    server = _start(tmp_path_factory.mktemp("openstack-api") / "stderr.log")
    try:
        yield server
    finally:
        _stop(server.proc)


def _connect(lab: Lab, identity: str = "3", password: str = PASSWORD) -> openstack.connection.Connection:
    """Connect like drorch does, ignoring any clouds.yaml or OS_* variables of the machine."""
    auth: dict[str, Any] = {"auth_url": f"{lab.base_url}/v{identity}", "username": USER, "password": password}
    if identity == "2.0":
        auth |= {"project_id": PROJECT_ID, "identity_api_version": "2"}
    else:
        auth |= {
            "project_name": PROJECT,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            "identity_api_version": "3",
        }
    return openstack.connect(region_name=REGION, load_yaml_config=False, load_envvars=False, **auth)


def _token(lab: Lab) -> str:
    body = {"auth": {"passwordCredentials": {"username": USER, "password": PASSWORD}, "tenantName": PROJECT}}
    response = requests.post(f"{lab.base_url}/v2.0/tokens", json=body, timeout=5)
    response.raise_for_status()
    token: str = response.json()["access"]["token"]["id"]
    return token


def test_version_discovery_documents(lab: Lab) -> None:
    root = requests.get(lab.base_url + "/", timeout=5)
    assert root.status_code == 300
    assert {v["id"] for v in root.json()["versions"]["values"]} == {"v3.14", "v2.0"}
    nova = requests.get(lab.base_url + "/compute/v2.1/", timeout=5).json()["version"]
    assert (nova["min_version"], nova["version"]) == ("2.1", "2.79")
    magnum = requests.get(lab.base_url + "/container-infra/", timeout=5).json()["versions"][0]
    assert magnum["id"] == "v1" and magnum["max_version"]
    octavia = requests.get(lab.base_url + "/load-balancer/", timeout=5).json()["versions"]
    assert octavia[-1]["status"] == "CURRENT"


def test_v2_token_by_tenant_name_has_kr1_catalog(lab: Lab) -> None:
    body = {"auth": {"passwordCredentials": {"username": USER, "password": PASSWORD}, "tenantName": PROJECT}}
    access = requests.post(f"{lab.base_url}/v2.0/tokens", json=body, timeout=5).json()["access"]
    assert access["token"]["tenant"]["id"] == PROJECT_ID
    catalog = {s["type"]: s["endpoints"][0] for s in access["serviceCatalog"]}
    assert {"compute", "network", "load-balancer", "container-infra"} <= catalog.keys()
    assert catalog["compute"] == {
        **catalog["compute"],
        "region": REGION,
        "publicURL": lab.base_url + "/compute/v2.1",
    }


def test_v3_token_is_returned_in_header(lab: Lab) -> None:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": USER, "domain": {"name": "Default"}, "password": PASSWORD}},
            },
            "scope": {"project": {"id": PROJECT_ID}},
        }
    }
    response = requests.post(f"{lab.base_url}/v3/auth/tokens", json=body, timeout=5)
    assert response.status_code == 201
    assert response.headers["X-Subject-Token"]
    assert response.json()["token"]["project"]["name"] == PROJECT


def test_requests_without_a_valid_token_get_401(lab: Lab) -> None:
    for headers in ({}, {"X-Auth-Token": "not-a-token"}):
        response = requests.get(f"{lab.base_url}/compute/v2.1/servers", headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == 401
    bad = {"auth": {"passwordCredentials": {"username": USER, "password": "wrong"}, "tenantId": PROJECT_ID}}
    response = requests.post(f"{lab.base_url}/v2.0/tokens", json=bad, timeout=5)
    assert response.status_code == 401 and response.json()["error"]["title"] == "Unauthorized"


@pytest.mark.parametrize("identity", ["2.0", "3"])
def test_list_servers(lab: Lab, identity: str) -> None:
    servers = {s.name: s for s in _connect(lab, identity).compute.servers()}
    assert {name: s.status for name, s in servers.items()} == {
        "nhn-app-1": "ACTIVE",
        "nhn-app-2": "SHUTOFF",
        "nhn-vpn-gw": "ACTIVE",
    }
    assert servers["nhn-app-1"].vm_state == "active" and servers["nhn-app-2"].power_state == 4
    assert servers["nhn-app-1"].flavor.original_name == "m2.c2m4"  # microversion >= 2.47 shape


@pytest.mark.parametrize("identity", ["2.0", "3"])
def test_bad_password_raises_auth_error(lab: Lab, identity: str) -> None:
    conn = _connect(lab, identity, password="wrong")
    with pytest.raises(ks_exceptions.Unauthorized):
        list(conn.compute.servers())
    with pytest.raises(openstack.exceptions.SDKException, match="HTTP 401"):
        conn.authorize()  # the SDK wraps keystoneauth's error here


def test_stop_and_start_server_shows_in_load_balancer(lab: Lab) -> None:
    conn = _connect(lab, "2.0")

    def member_status() -> str:
        member = next(m for m in conn.load_balancer.members(POOL_ID) if m.address == "192.168.0.11")
        return str(member.operating_status)

    assert member_status() == "ONLINE"
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.compute.start_server(APP_1)  # Nova refuses to start an ACTIVE server

    conn.compute.stop_server(APP_1)
    assert conn.compute.wait_for_server(conn.compute.get_server(APP_1), "SHUTOFF", wait=5).status == "SHUTOFF"
    assert member_status() == "OFFLINE"
    assert conn.load_balancer.get_load_balancer(LB_ID).operating_status == "ERROR"  # app-2 is down as well

    conn.compute.start_server(APP_1)
    assert conn.compute.wait_for_server(conn.compute.get_server(APP_1), "ACTIVE", wait=5).status == "ACTIVE"
    assert member_status() == "ONLINE"
    assert conn.load_balancer.get_load_balancer(LB_ID).operating_status == "ONLINE"


def test_load_balancers_pools_and_members_via_sdk(lab: Lab) -> None:
    conn = _connect(lab)
    lb = conn.load_balancer.find_load_balancer("nhn-app-lb")
    assert lb is not None and lb.id == LB_ID
    assert (lb.provisioning_status, lb.operating_status) == ("ACTIVE", "ONLINE")
    assert [p.id for p in conn.load_balancer.pools()] == [POOL_ID]
    members = {m.name: m.operating_status for m in conn.load_balancer.members(POOL_ID)}
    assert members == {"nhn-app-1": "ONLINE", "nhn-app-2": "OFFLINE"}
    tree = conn.load_balancer.get(f"/lbaas/loadbalancers/{LB_ID}/status").json()["statuses"]["loadbalancer"]
    assert tree["listeners"][0]["pools"][0]["members"][1]["operating_status"] == "OFFLINE"
    # NHN Cloud serves LBaaS v2 on its network endpoint.
    neutron = conn.network.get("/lbaas/loadbalancers").json()["loadbalancers"]
    assert [n["name"] for n in neutron] == ["nhn-app-lb"]


def test_magnum_clusters_and_node_group_scaling(lab: Lab) -> None:
    conn = _connect(lab)
    clusters = list(conn.container_infrastructure_management.clusters())
    assert [(c.name, c.status) for c in clusters] == [("nks-prod", "CREATE_COMPLETE")]
    groups = conn.session.get(f"/clusters/{CLUSTER_ID}/nodegroups", endpoint_filter=MAGNUM).json()[
        "nodegroups"
    ]
    assert [(g["name"], g["node_count"], g["min_node_count"], g["max_node_count"]) for g in groups] == [
        ("default-worker", 1, 1, 5)
    ]
    url = "/clusters/nks-prod/nodegroups/default-worker"
    try:
        patch = [{"op": "replace", "path": "/node_count", "value": 3}]
        scaled = conn.session.patch(url, json=patch, endpoint_filter=MAGNUM)
        assert scaled.status_code == 202
        assert (scaled.json()["node_count"], scaled.json()["status"]) == (3, "UPDATE_COMPLETE")
        cluster = conn.session.get(f"/clusters/{CLUSTER_ID}", endpoint_filter=MAGNUM).json()
        assert (cluster["node_count"], cluster["status"]) == (3, "UPDATE_COMPLETE")
    finally:
        conn.session.patch(
            url, json=[{"op": "replace", "path": "/node_count", "value": 1}], endpoint_filter=MAGNUM
        )


@pytest.mark.parametrize(("value", "limit"), [(6, "max_node_count"), (0, "min_node_count")])
def test_node_count_outside_limits_is_400(lab: Lab, value: int, limit: str) -> None:
    conn = _connect(lab)
    response = conn.session.patch(
        f"/clusters/{CLUSTER_ID}/nodegroups/default-worker",
        json=[{"op": "replace", "path": "/node_count", "value": value}],
        endpoint_filter=MAGNUM,
        raise_exc=False,
    )
    assert response.status_code == 400
    assert limit in response.json()["errors"][0]["detail"]
    group = conn.session.get(
        f"/clusters/{CLUSTER_ID}/nodegroups/default-worker", endpoint_filter=MAGNUM
    ).json()
    assert group["node_count"] == 1


def test_clouds_yaml_entries(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clouds = {
        "clouds": {
            "nhn-lab": {
                "auth": {
                    "auth_url": f"{lab.base_url}/v2.0",
                    "username": USER,
                    "password": PASSWORD,
                    "project_id": PROJECT_ID,
                },
                "identity_api_version": "2",
                "region_name": REGION,
            },
            "nhn-lab-v3": {
                "auth": {
                    "auth_url": f"{lab.base_url}/v3",
                    "username": USER,
                    "password": PASSWORD,
                    "project_name": PROJECT,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "identity_api_version": "3",
                "region_name": REGION,
            },
        }
    }
    path = tmp_path / "clouds.yaml"
    path.write_text(json.dumps(clouds))  # JSON is valid YAML
    for name in [n for n in os.environ if n.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    v2 = openstack.connect(cloud="nhn-lab")
    assert {s.name for s in v2.compute.servers()} == {"nhn-app-1", "nhn-app-2", "nhn-vpn-gw"}

    region = openstack.config.OpenStackConfig(config_files=[str(path)]).get_one(cloud="nhn-lab-v3")
    v3 = openstack.connection.Connection(config=region)
    assert [lb.name for lb in v3.load_balancer.load_balancers()] == ["nhn-app-lb"]


def test_seed_file_transitions_and_clean_sigterm(tmp_path: Path) -> None:
    seed = {
        "flavors": [{"name": "m2.c1m2", "vcpus": 1, "ram": 2048, "disk": 20}],
        "servers": [{"name": "seeded-1", "flavor": "m2.c1m2", "ip": "10.0.0.5"}],
    }
    seed_path = tmp_path / "seed.json"
    seed_path.write_text(json.dumps(seed))
    lab = _start(tmp_path / "stderr.log", "--seed", str(seed_path), "--transition-seconds", "0.3")
    token = ""
    try:
        token = _token(lab)
        headers = {"X-Auth-Token": token}
        base = f"{lab.base_url}/compute/v2.1/servers"
        [server] = requests.get(f"{base}/detail", headers=headers, timeout=5).json()["servers"]
        assert (server["name"], server["status"]) == ("seeded-1", "ACTIVE")
        stop = requests.post(
            f"{base}/{server['id']}/action", json={"os-stop": None}, headers=headers, timeout=5
        )
        assert stop.status_code == 202

        def show() -> dict[str, Any]:
            body: dict[str, Any] = requests.get(f"{base}/{server['id']}", headers=headers, timeout=5).json()[
                "server"
            ]
            return body

        assert (show()["status"], show()["OS-EXT-STS:task_state"]) == ("ACTIVE", "powering-off")
        assert _until(lambda: show()["status"] == "SHUTOFF")
        assert show()["OS-EXT-STS:task_state"] is None
    finally:
        returncode = _stop(lab.proc)  # SIGTERM first; a clean shutdown exits 0, SIGKILL would give -9
    assert returncode == 0
    log = lab.log.read_text()
    assert "POST /v2.0/tokens" in log and "received SIGTERM" in log
    assert PASSWORD not in log and token not in log
