"""The lab VPN on real strongSwan daemons: two tunnels, traffic through them, one failing alone.

No mocks: charon runs in two network namespaces and drorch reads it over VICI from
the host, as it would read NHN's strongSwan VM. These tests need root (CI runs as
root); without it they fail, they never skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drorch.errors import InvalidInput, OperationFailed, RefusedForSafety
from drorch.lab import processes, vpn
from drorch.providers import strongswan

PORT = 7000  # inside the namespaces only: no clash with anything on the host

_SERVER = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
server.settimeout(20)
conn, _ = server.accept()
conn.settimeout(10)
while data := conn.recv(65536):
    conn.sendall(data)
"""

_CLIENT = """
import socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + float(sys.argv[4])
while True:
    try:
        conn = socket.create_connection((host, port), timeout=1)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
conn.settimeout(5)
conn.sendall(b"x" * size)
conn.shutdown(socket.SHUT_WR)
received = 0
while data := conn.recv(65536):
    received += len(data)
print(received)
"""


@pytest.fixture(scope="module")
def lab_vpn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[vpn.VpnLab]:
    root = tmp_path_factory.mktemp("vpn")
    started = vpn.start(root)
    try:
        yield started
    finally:
        vpn.stop_dir(root)
        _assert_nothing_left(started)


def _assert_nothing_left(lab: vpn.VpnLab) -> None:
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not [ns for ns in lab.namespaces if ns in namespaces], f"namespaces left: {namespaces}"
    assert not [pid for pid in lab.pids if _running(pid)], "a charon of the lab still runs"
    assert not _charons_named([side.argv0 for side in lab.sides]), "a charon of the lab still runs"
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert not [t for t in lab.tunnels if t.nhn_link in links or t.aws_link in links], "veths left on the host"
    assert vpn.open_vpn(lab.root) is None


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _charons_named(argv0s: list[str]) -> list[int]:
    """PIDs of live processes whose argv[0] is one of ``argv0s`` (the lab names each charon after its namespace)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if argv0 in argv0s and _running(int(entry.name)):
            found.append(int(entry.name))
    return found


def _tunnels(side: vpn.Side, names: list[str]) -> dict[str, strongswan.ChildTunnel]:
    return {t.name: t for t in strongswan.tunnels(side.vici_socket, None, names)}


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def _exchange(lab: vpn.VpnLab, tunnel: vpn.Tunnel, size: int, timeout: float = 5.0) -> int:
    """Echo ``size`` bytes over TCP from the tunnel's nhn address to its aws address; the bytes echoed back."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", lab.aws.namespace, sys.executable, "-c", _SERVER, tunnel.aws_inside, str(PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = subprocess.run(
            ["ip", "netns", "exec", lab.nhn.namespace, sys.executable, "-c", _CLIENT,
             tunnel.aws_inside, str(PORT), str(size), str(timeout)],
            capture_output=True, text=True, timeout=timeout + 10, check=False,
        )
    finally:
        server.kill()  # by its PID (ip netns exec execs the server in place)
        server.wait(timeout=10)
    return int(client.stdout) if client.returncode == 0 else -1


def test_both_tunnels_up_on_both_sides(lab_vpn: vpn.VpnLab) -> None:
    for side in lab_vpn.sides:
        found = _tunnels(side, lab_vpn.children)
        assert list(found) == ["tunnel-1", "tunnel-2"]
        for tunnel in lab_vpn.tunnels:
            state = found[tunnel.name]
            assert (state.ike_state, state.child_state, state.up) == ("ESTABLISHED", "INSTALLED", True)
            assert state.ike_sa == tunnel.ike_sa
            outside = {tunnel.nhn_outside, tunnel.aws_outside}
            assert {state.local_host, state.remote_host} == outside
            assert state.established_seconds is not None and state.rekey_seconds is not None


def test_vici_socket_reachable_from_the_host_mount_namespace(lab_vpn: vpn.VpnLab) -> None:
    for side in lab_vpn.sides:
        assert os.readlink(f"/proc/{side.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        assert os.readlink(f"/proc/{side.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert processes.is_alive(side.tracked)
        assert processes.read(side.directory, "charon") == side.tracked
        assert _tunnels(side, lab_vpn.children)["tunnel-1"].up
    assert lab_vpn.psk_file.stat().st_mode & 0o777 == 0o600
    assert (lab_vpn.nhn.directory / "swanctl.conf").stat().st_mode & 0o777 == 0o600


def test_traffic_through_a_tunnel_advances_its_byte_counters(lab_vpn: vpn.VpnLab) -> None:
    tunnel = lab_vpn.tunnels[0]
    before = {side.name: _tunnels(side, lab_vpn.children) for side in lab_vpn.sides}
    assert _exchange(lab_vpn, tunnel, 20_000) == 20_000
    after = {side.name: _tunnels(side, lab_vpn.children) for side in lab_vpn.sides}
    sent = after["nhn"][tunnel.name].bytes_out - before["nhn"][tunnel.name].bytes_out
    received = after["aws"][tunnel.name].bytes_in - before["aws"][tunnel.name].bytes_in
    assert sent >= 20_000 and received >= 20_000
    assert after["nhn"][tunnel.name].bytes_in - before["nhn"][tunnel.name].bytes_in >= 20_000
    other = lab_vpn.tunnels[1].name
    assert after["nhn"][other].bytes_out == before["nhn"][other].bytes_out  # the other tunnel carried none of it


def test_one_tunnel_down_while_the_other_stays_up(lab_vpn: vpn.VpnLab) -> None:
    first, second = lab_vpn.tunnels
    vpn.tunnel_down(lab_vpn, first.name)
    try:
        for side in lab_vpn.sides:
            found = _tunnels(side, lab_vpn.children)
            assert not found[first.name].up
            assert found[second.name].up
        assert _exchange(lab_vpn, first, 1000, timeout=1.0) == -1  # no path any more
        assert _exchange(lab_vpn, second, 1000) == 1000
    finally:
        vpn.tunnel_up(lab_vpn, first.name)
    _wait_for(lambda: all(t.up for side in lab_vpn.sides for t in _tunnels(side, lab_vpn.children).values()),
              10.0, "both tunnels up again on both sides")
    assert _exchange(lab_vpn, first, 1000) == 1000


def test_tunnel_down_is_idempotent_and_names_are_checked(lab_vpn: vpn.VpnLab) -> None:
    with pytest.raises(InvalidInput, match="tunnel-1, tunnel-2"):
        vpn.tunnel_down(lab_vpn, "tunnel-9")
    second = lab_vpn.tunnels[1].name
    vpn.tunnel_down(lab_vpn, second)
    vpn.tunnel_down(lab_vpn, second)
    vpn.tunnel_up(lab_vpn, second)
    vpn.tunnel_up(lab_vpn, second)
    assert all(_tunnels(side, [second])[second].up for side in lab_vpn.sides)


def test_a_second_start_in_the_same_directory_is_refused(lab_vpn: vpn.VpnLab) -> None:
    with pytest.raises(RefusedForSafety, match="already runs"):
        vpn.start(lab_vpn.root)
    assert vpn.is_running(lab_vpn)  # the refusal touched nothing
    assert all(_tunnels(side, lab_vpn.children)["tunnel-1"].up for side in lab_vpn.sides)


def test_missing_or_wrong_socket_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.vici"
    with pytest.raises(OperationFailed, match=f"no VICI socket at {missing}: is charon running"):
        strongswan.tunnels(missing, None, ["tunnel-1"])
    regular = tmp_path / "file.vici"
    regular.write_text("")
    with pytest.raises(InvalidInput, match="not a UNIX socket"):
        strongswan.tunnels(regular, None, [])
    with pytest.raises(InvalidInput, match="absolute"):
        strongswan.tunnels(Path("charon.vici"), None, [])
    stale = tmp_path / "stale.vici"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(stale))  # bound, never listening: what a crashed charon leaves behind
    with pytest.raises(OperationFailed, match="refuses connections"):
        strongswan.tunnels(stale, None, [])


def test_missing_charon_names_the_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(vpn, "CHARON", tmp_path / "no-charon")
    with pytest.raises(InvalidInput, match="strongswan-charon"):
        vpn.start(tmp_path / "vpn")
    assert not (tmp_path / "vpn").exists()


def test_a_failed_start_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(vpn, "SWANCTL", "false")  # the connections never load: fails after both charons started
    root = tmp_path / "vpn"
    with pytest.raises(OperationFailed, match="false --load-all"):
        vpn.start(root)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    tag_names = vpn.namespace_names(root)
    assert not [ns for ns in tag_names if ns in namespaces]
    assert not _charons_named([f"charon@{ns}" for ns in tag_names])
    assert vpn.open_vpn(root) is None
