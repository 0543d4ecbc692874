"""``lab up --vpn``: the NHN site behind real strongSwan tunnels, and what happens when they fail.

nhn's MariaDB and app run inside the VPN's nhn network namespace; seoul and tokyo
sit on the AWS side's subnet on the host. nhn replicates from seoul, and drorch
reaches nhn, only through a tunnel. No mocks: charon, kernel-libipsec, MariaDB.
These tests need root (CI runs as root); without it `lab up --vpn` fails with a
plain message, and so do they: they never skip.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml

from drorch.errors import InvalidInput
from drorch.lab import chaos, lifecycle, mariadb, processes, vpn
from drorch.lab.control import Lab
from drorch.lab.layout import LabLayout
from drorch.probes import vpn as vpn_probe
from drorch.probes.result import ProbeResult
from drorch.providers import strongswan
from tests.helpers import running_lab, wait_for

PAYLOAD_BYTES = 60_000  # per probe row: enough to stand out in the tunnels' byte counters
SEOUL_TIMEOUT = 20.0  # bound on seeing a row replicate (or the IO thread lose seoul)


@pytest.fixture(scope="module")
def vlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("vlab")
    tunnels: vpn.VpnLab | None = None
    with running_lab(root, vpn=True) as lab:
        tunnels = _tunnels(lab)
        lab.admin("seoul").execute(
            "CREATE TABLE IF NOT EXISTS shop.vpn_probe (ref VARCHAR(32) PRIMARY KEY, payload MEDIUMTEXT NOT NULL)")
        yield lab
        chaos.vpn_up(lab)  # whatever a failed test left down, so `lab down` finds the lab whole
    _assert_vpn_gone(tunnels, LabLayout(root.resolve()))


def _assert_vpn_gone(tunnels: vpn.VpnLab | None, layout: LabLayout) -> None:
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    expected = vpn.namespace_names(layout.vpn_dir)
    assert not [ns for ns in expected if ns in namespaces], f"namespaces left: {namespaces}"
    assert not Path("/sys/class/net", vpn.host_link_names(layout.vpn_dir)[0]).exists(), "host link left"
    assert vpn.open_vpn(layout.vpn_dir) is None
    if tunnels is not None:
        assert not [side for side in tunnels.sides if processes.is_alive(side.tracked)], "a charon still runs"
        routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
        assert tunnels.nhn_subnet not in routes
    assert not [t for t in processes.tracked_all(layout.run) if processes.is_alive(t)]


def _tunnels(lab: Lab) -> vpn.VpnLab:
    assert lab.state.vpn_dir is not None
    found = vpn.open_vpn(Path(lab.state.vpn_dir))
    assert found is not None
    return found


def _netns_inode(namespace: str) -> int:
    return os.stat(f"/run/netns/{namespace}").st_ino


def _pid_netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def _probe(lab: Lab) -> ProbeResult:
    result = vpn_probe.probe(lab.estate, "nhn")
    assert result is not None
    return result


def _nhn_bytes_in(lab: Lab) -> dict[str, int]:
    """Bytes each tunnel delivered to the NHN side (the replication stream flows seoul -> nhn)."""
    tunnels = _tunnels(lab)
    return {t.name: t.bytes_in for t in strongswan.tunnels(tunnels.nhn.vici_socket, None, tunnels.children)}


def _write_on_seoul(lab: Lab) -> str:
    ref = secrets.token_hex(8)
    payload = os.urandom(PAYLOAD_BYTES // 2).hex()  # random: no compression can hide it from the counters
    lab.admin("seoul").execute(("INSERT INTO shop.vpn_probe (ref, payload) VALUES (%s, %s)", (ref, payload)))
    return ref


def _console(lab: Lab) -> pymysql.connections.Connection[Any]:
    """nhn's database through its UNIX socket: reachable from the host whatever the network does."""
    return pymysql.connect(unix_socket=str(lab.layout.mariadb_dir("nhn") / "mysqld.sock"), user="lab_admin",
                           password=lab.layout.secret("admin").read_text().strip(), connect_timeout=2,
                           read_timeout=5, autocommit=True, cursorclass=pymysql.cursors.DictCursor)


def _on_nhn(lab: Lab, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    conn = _console(lab)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def _arrived(lab: Lab, ref: str) -> bool:
    return bool(_on_nhn(lab, "SELECT 1 FROM shop.vpn_probe WHERE ref = %s", (ref,)))


def _replica(lab: Lab) -> dict[str, Any]:
    rows = _on_nhn(lab, "SHOW SLAVE STATUS")
    assert rows, "nhn is not a replica"
    return rows[0]


def _drorch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_up_with_vpn_runs_nhn_inside_the_nhn_namespace(vlab: Lab) -> None:
    tunnels = _tunnels(vlab)
    state = vlab.state
    assert state.sites["nhn"].ip in tunnels.nhn_addresses
    assert {state.sites["seoul"].ip, state.sites["tokyo"].ip} == set(tunnels.host_addresses)
    for name in ("mariadb-nhn", "app-nhn"):
        item = processes.read(vlab.layout.run, name)
        assert item is not None and item.netns == tunnels.nhn.namespace and state.netns[name] == item.netns
        assert processes.is_alive(item)  # the PID is the server itself: its argv matches the PID file
        assert _pid_netns_inode(item.pid) == _netns_inode(tunnels.nhn.namespace)
    seoul = processes.read(vlab.layout.run, "mariadb-seoul")
    assert seoul is not None and seoul.netns is None
    assert _pid_netns_inode(seoul.pid) == os.stat("/proc/self/ns/net").st_ino
    listed = {s.name: s for s in lifecycle.status(vlab.layout.root)}
    assert listed["charon-nhn"].alive and listed["charon-aws"].alive
    assert listed["charon-nhn"].endpoint == f"unix://{tunnels.nhn.vici_socket}"


def test_config_and_manifest_point_at_the_nhn_addresses_and_the_vici_socket(vlab: Lab) -> None:
    tunnels = _tunnels(vlab)
    nhn_ip = vlab.state.sites["nhn"].ip
    nhn = vlab.config.sites["nhn"]
    assert nhn.mysql.host == nhn_ip and nhn_ip in nhn.app.url
    assert vlab.config.dns.sites["nhn"].value == nhn_ip
    assert nhn.vpn is not None and nhn.vpn.aws_connection_id == vlab.state.aws_ready["vpn_connection_id"]
    assert nhn.vpn.vici_socket is not None
    assert vlab.config.resolve_path(nhn.vpn.vici_socket) == tunnels.nhn.vici_socket
    assert nhn.vpn.tunnels == ["tunnel-1", "tunnel-2"] and nhn.vpn.ike_sa is None
    manifest = json.loads(vlab.layout.manifest.read_text())
    assert manifest["sites"]["nhn"]["mysql"]["host"] == nhn_ip
    assert manifest["vpn"]["tunnels"] == tunnels.children
    raw = yaml.safe_load(vlab.layout.config.read_text())
    assert raw["sites"]["nhn"]["vpn"]["vici_socket"] == "vpn/nhn/run/charon.vici"


def test_up_again_is_idempotent_but_refuses_to_drop_the_vpn(vlab: Lab) -> None:
    assert lifecycle.up(vlab.layout.root, with_vpn=True).already_running
    with pytest.raises(InvalidInput, match="runs with the VPN"):
        lifecycle.up(vlab.layout.root)


def test_tunnels_up_and_both_reported_by_the_vpn_probe(vlab: Lab) -> None:
    result = _probe(vlab)
    assert result.ok and result.value == 2 and not result.detail["degraded"], result
    assert set(result.detail["views"]) == {"aws", "strongswan"}
    assert list(result.detail["views"]["strongswan"]) == ["tunnel-1", "tunnel-2"]
    assert all(t["up"] for t in result.detail["views"]["strongswan"].values())


def test_replication_from_seoul_runs_through_the_tunnel(vlab: Lab) -> None:
    seoul, nhn = vlab.state.sites["seoul"], vlab.state.sites["nhn"]
    replica = _replica(vlab)
    assert (replica["Master_Host"], int(replica["Master_Port"])) == (seoul.ip, seoul.mysql_port)
    assert replica["Slave_IO_Running"] == "Yes" and replica["Slave_SQL_Running"] == "Yes"
    dumps = [row for row in vlab.admin("seoul").query("SHOW PROCESSLIST") if row["Command"] == "Binlog Dump"]
    assert any(row["Host"].rsplit(":", 1)[0] == nhn.ip for row in dumps), dumps  # nhn connects from its NHN address
    before = _nhn_bytes_in(vlab)
    ref = _write_on_seoul(vlab)
    wait_for(lambda: _arrived(vlab, ref), SEOUL_TIMEOUT)
    after = _nhn_bytes_in(vlab)
    assert sum(after.values()) - sum(before.values()) >= PAYLOAD_BYTES, (before, after)
    assert vlab.admin("nhn").ping()  # and the host reaches nhn's database through the tunnel too


def test_one_tunnel_down_is_degraded_and_replication_goes_on_over_the_other(vlab: Lab) -> None:
    before = _nhn_bytes_in(vlab)
    ref = _write_on_seoul(vlab)
    wait_for(lambda: _arrived(vlab, ref), SEOUL_TIMEOUT)
    after = _nhn_bytes_in(vlab)
    carrier = max(after, key=lambda name: after[name] - before[name])  # the tunnel carrying replication now
    (other,) = set(after) - {carrier}
    down = _drorch("lab", "chaos", "vpn-down", carrier, "--dir", str(vlab.layout.root), "--output", "json")
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout) == {"action": "vpn-down", "tunnel": carrier, "changed": [carrier]}
    try:
        result = _probe(vlab)
        assert result.ok and result.value == 1 and result.detail["degraded"], result
        assert result.detail["views"]["strongswan"][carrier]["up"] is False
        assert result.detail["views"]["strongswan"][other]["up"] is True
        before = _nhn_bytes_in(vlab)
        started = time.monotonic()
        ref = _write_on_seoul(vlab)
        wait_for(lambda: _arrived(vlab, ref), SEOUL_TIMEOUT)
        print(f"replicated over {other} {time.monotonic() - started:.3f} s after {carrier} went down")
        after = _nhn_bytes_in(vlab)
        assert after[other] - before[other] >= PAYLOAD_BYTES, (before, after)
        assert _replica(vlab)["Slave_IO_Running"] == "Yes"
    finally:
        assert chaos.vpn_up(vlab, carrier) == [carrier]
    assert _probe(vlab).value == 2


def test_both_tunnels_down_stop_replication_and_the_data_path_is_down(vlab: Lab) -> None:
    seoul = vlab.state.sites["seoul"]
    started = time.monotonic()
    assert sorted(chaos.vpn_down(vlab)) == ["tunnel-1", "tunnel-2"]
    try:
        result = _probe(vlab)
        assert not result.ok and result.value == 0, result
        assert set(result.detail["tunnels"].values()) == {"DOWN"}
        ref = _write_on_seoul(vlab)  # semi-sync with tokyo: seoul still commits
        # lost: not running, and a reconnection to seoul has failed (a bare "Connecting" may come first)
        replica = wait_for(lambda: (r := _replica(vlab))["Slave_IO_Running"] != "Yes" and int(r["Last_IO_Errno"])
                           and r, SEOUL_TIMEOUT)
        print(f"nhn's IO thread lost seoul {time.monotonic() - started:.3f} s after both tunnels went down: "
              f"{replica['Slave_IO_Running']} / {replica['Last_IO_Error']}")
        assert f"{seoul.ip}:{seoul.mysql_port}" in replica["Last_IO_Error"], replica
        assert not _arrived(vlab, ref)
        assert not vlab.admin("nhn").ping()  # drorch on the host has lost nhn too: it was reachable only this way
    finally:
        restoring = time.monotonic()
        assert sorted(chaos.vpn_up(vlab)) == ["tunnel-1", "tunnel-2"]
    restored = time.monotonic()
    wait_for(lambda: _arrived(vlab, ref), SEOUL_TIMEOUT)  # the IO thread reconnects by itself (retry 1 s)
    print(f"vpn-up took {restored - restoring:.3f} s; replication caught up {time.monotonic() - restored:.3f} s later")
    assert _replica(vlab)["Slave_IO_Running"] == "Yes"
    healed = _probe(vlab)
    assert healed.ok and healed.value == 2 and not healed.detail["degraded"]
    assert set(healed.detail["views"]["aws"][ip]["up"] for ip in healed.detail["views"]["aws"]) == {True}


def test_chaos_restarts_nhn_inside_its_namespace(vlab: Lab) -> None:
    namespace = _tunnels(vlab).nhn.namespace
    assert chaos.kill_db(vlab, "nhn") and chaos.stop_app(vlab, "nhn")
    assert chaos.start_db(vlab, "nhn") and chaos.start_app(vlab, "nhn")
    for name in ("mariadb-nhn", "app-nhn"):
        item = processes.read(vlab.layout.run, name)
        assert item is not None and processes.is_alive(item) and item.netns == namespace
        assert _pid_netns_inode(item.pid) == _netns_inode(namespace)
    wait_for(lambda: _replica(vlab)["Slave_IO_Running"] == "Yes", SEOUL_TIMEOUT)
    ref = _write_on_seoul(vlab)
    wait_for(lambda: _arrived(vlab, ref), SEOUL_TIMEOUT)


def test_vpn_chaos_names_unknown_tunnels_and_needs_a_vpn_lab(vlab: Lab) -> None:
    with pytest.raises(InvalidInput, match="tunnel-1, tunnel-2"):
        chaos.vpn_down(vlab, "tunnel-9")
    without = Lab(vlab.layout, replace(vlab.state, vpn_dir=None, netns={}))
    with pytest.raises(InvalidInput, match=r"has no VPN.*--vpn") as failure:
        chaos.vpn_up(without)
    assert failure.value.exit_code == 2
    assert _probe(vlab).value == 2  # nothing was touched


def test_a_failed_up_with_vpn_removes_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = LabLayout((tmp_path / "lab").resolve())
    seen: list[vpn.VpnLab] = []

    def broken(*_args: object) -> Path:
        started = vpn.open_vpn(layout.vpn_dir)
        assert started is not None and vpn.is_running(started)  # the VPN is up when this step fails
        seen.append(started)
        raise RuntimeError("template broke")

    monkeypatch.setattr(mariadb, "build_template", broken)
    with pytest.raises(RuntimeError, match="template broke"):
        lifecycle.up(layout.root, with_vpn=True)
    (started,) = seen
    _assert_vpn_gone(started, layout)
    assert not _charons_named([side.argv0 for side in started.sides])


def _charons_named(argv0s: list[str]) -> list[int]:
    """Live processes whose argv[0] is one of ``argv0s`` (the VPN names each charon after its namespace)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().split(b"\0")[0].decode() in argv0s:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRORCH_CONFIG": str(lab.layout.config)}
    return subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True, env=env,
                          timeout=180, check=False, stdin=subprocess.DEVNULL)


def test_failover_to_nhn_across_the_vpn_and_back(vlab: Lab) -> None:
    there = _cli(vlab, "failover", "--to", "nhn", "--yes", "--output", "json")
    assert there.returncode == 0, there.stderr
    document = json.loads(there.stdout)
    assert document["playbook"] == "failover-to-nhn" and document["lost_transactions"] == 0
    steps = {s["name"]: s["status"] for s in document["steps"]}
    assert steps["check the VPN tunnels to AWS"] == "succeeded"
    ref = _write_on_seoul_primary_or(vlab, "nhn")
    seoul = vlab.admin("seoul")
    wait_for(lambda: bool(seoul.query("SELECT 1 FROM shop.orders WHERE client_ref = %s", (ref,))), SEOUL_TIMEOUT)
    back = _cli(vlab, "failback", "--yes", "--output", "json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["to"] == "seoul"
    assert not vlab.admin("seoul").state().read_only


def _write_on_seoul_primary_or(lab: Lab, site: str) -> str:
    """An order written on ``site`` (the primary now); seoul, its replica across the tunnel, must get it."""
    ref = f"vpn-{secrets.token_hex(4)}"
    rows = _on_nhn(lab, "SELECT @@read_only AS ro")
    assert rows[0]["ro"] == 0, "nhn should be the primary"
    _on_nhn(lab, "INSERT INTO shop.orders (client_ref, site, amount) VALUES (%s, %s, 1)", (ref, site))
    return ref


def test_refuses_a_stale_nhn_after_a_vpn_outage(vlab: Lab) -> None:
    """The VPN is down while seoul keeps writing; seoul dies; the VPN comes back: nhn trails tokyo."""
    from drorch.data import heartbeat

    table = vlab.config.data.heartbeat.table
    chaos.vpn_down(vlab)
    try:
        for seq in range(3):  # tokyo receives these (semi-sync), nhn cannot
            heartbeat.write(vlab.estate.mysql("seoul"), table, "seoul", int(time.time() * 1000) + seq)
            time.sleep(0.8)
        chaos.kill_db(vlab, "seoul")
    finally:
        chaos.vpn_up(vlab)
    try:
        wait_for(lambda: vlab.admin("nhn").ping(), SEOUL_TIMEOUT)
        refused = _cli(vlab, "failover", "--to", "nhn", "--yes")
        assert refused.returncode == 3, refused.stderr
        assert "nhn's data is within the RPO objective" in refused.stderr and "s behind the freshest copy" in \
            refused.stderr and "VPN up" in refused.stderr
        assert vlab.admin("nhn").state().read_only  # nhn was not promoted
    finally:
        chaos.heal(vlab)
        restored = _cli(vlab, "failover", "--to", "seoul", "--yes")  # the restarted seoul, writable again
        assert restored.returncode == 0, restored.stderr
