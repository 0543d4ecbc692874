"""The lab VPN on real strongSwan daemons: two tunnels, traffic through them, one failing alone.

No mocks: charon runs in two network namespaces and drorch reads it over VICI from
the host, as it would read NHN's strongSwan VM. Traffic goes from the host (the AWS
side's subnet) through the aws namespace and a tunnel to an address in the nhn
namespace. These tests need root (CI runs as root); without it they fail, they
never skip.
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

PORT = 7000  # on the nhn namespace's own address: no clash with anything on the host

_SERVER = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
server.settimeout(20)
conn, _ = server.accept()
conn.settimeout(10)
while data := conn.recv(65536):
    conn.sendall(data)
"""



def _echo(host: str, size: int, timeout: float) -> int:
    """Send ``size`` bytes from the host to the echo server at ``host`` and count what comes back (-1: no path)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = socket.create_connection((host, PORT), timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                return -1
            time.sleep(0.05)
    with conn:
        conn.settimeout(5)
        conn.sendall(b"x" * size)
        conn.shutdown(socket.SHUT_WR)
        received = 0
        while data := conn.recv(65536):
            received += len(data)
    return received


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
    assert lab.host_link not in links, "the host link is left on the host"
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
    assert lab.nhn_subnet not in routes, "the host's route to the NHN subnet is left"
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


def _exchange(lab: vpn.VpnLab, size: int, timeout: float = 5.0) -> int:
    """Echo ``size`` bytes over TCP from the host to an echo server on the NHN address; the bytes echoed back."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", lab.nhn.namespace, sys.executable, "-c", _SERVER, lab.nhn_addresses[0], str(PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        return _echo(lab.nhn_addresses[0], size, timeout)
    finally:
        server.kill()  # by its PID (ip netns exec execs the server in place)
        server.wait(timeout=10)


def _counters(lab: vpn.VpnLab) -> dict[tuple[str, str], tuple[int, int]]:
    """(side, tunnel) -> (bytes in, bytes out)."""
    return {(side.name, name): (t.bytes_in, t.bytes_out)
            for side in lab.sides for name, t in _tunnels(side, lab.children).items()}


def _moved(lab: vpn.VpnLab, size: int) -> dict[str, tuple[int, int]]:
    """Exchange ``size`` bytes each way; per tunnel, the bytes it carried (towards nhn, towards the host).

    Each direction counts as carried when it left one side (out) and arrived on the other (in).
    """
    before = _counters(lab)
    assert _exchange(lab, size) == size
    after = _counters(lab)
    delta = {key: (after[key][0] - before[key][0], after[key][1] - before[key][1]) for key in after}
    moved = {}
    for name in lab.children:
        to_nhn = min(delta[("aws", name)][1], delta[("nhn", name)][0])  # out of aws, into nhn
        to_host = min(delta[("nhn", name)][1], delta[("aws", name)][0])  # out of nhn, into aws
        moved[name] = (to_nhn, to_host)
    return moved


def _carriers(moved: dict[str, tuple[int, int]], size: int) -> tuple[list[str], list[str]]:
    """(tunnels that carried the bytes towards nhn, those that carried them back)."""
    return ([name for name, (to_nhn, _) in moved.items() if to_nhn >= size],
            [name for name, (_, to_host) in moved.items() if to_host >= size])


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


def test_both_tunnels_protect_the_same_subnets_and_the_host_routes_through_the_aws_side(
        lab_vpn: vpn.VpnLab) -> None:
    for side in lab_vpn.sides:
        conf = (side.directory / "swanctl.conf").read_text()
        local, remote = (lab_vpn.nhn_subnet, lab_vpn.aws_subnet) if side.name == "nhn" else (
            lab_vpn.aws_subnet, lab_vpn.nhn_subnet)
        assert conf.count(f"local_ts = {local}\n") == 2 and conf.count(f"remote_ts = {remote}\n") == 2
    route = subprocess.run(["ip", "route", "get", lab_vpn.nhn_addresses[0]], capture_output=True, text=True,
                           check=True).stdout
    assert f"via {lab_vpn.aws_router} dev {lab_vpn.host_link}" in route
    assert f"src {lab_vpn.host_addresses[0]}" in route


def test_traffic_through_the_vpn_advances_one_tunnels_byte_counters(lab_vpn: vpn.VpnLab) -> None:
    moved = _moved(lab_vpn, 20_000)
    for direction, carriers in enumerate(_carriers(moved, 20_000)):
        assert len(carriers) == 1, moved  # one tunnel carries each direction, the other stands by
        (idle,) = set(lab_vpn.children) - set(carriers)
        assert moved[idle][direction] == 0, moved  # the standby tunnel carried none of it


def test_one_tunnel_down_traffic_moves_to_the_other(lab_vpn: vpn.VpnLab) -> None:
    (carrier,), _ = _carriers(_moved(lab_vpn, 1000), 1000)  # the one carrying traffic towards nhn
    (other,) = set(lab_vpn.children) - {carrier}
    vpn.tunnel_down(lab_vpn, carrier)
    try:
        for side in lab_vpn.sides:
            found = _tunnels(side, lab_vpn.children)
            assert not found[carrier].up
            assert found[other].up
        assert _carriers(_moved(lab_vpn, 1000), 1000) == ([other], [other])
    finally:
        vpn.tunnel_up(lab_vpn, carrier)
    _wait_for(lambda: all(t.up for side in lab_vpn.sides for t in _tunnels(side, lab_vpn.children).values()),
              10.0, "both tunnels up again on both sides")
    to_nhn, to_host = _carriers(_moved(lab_vpn, 1000), 1000)
    assert len(to_nhn) == 1 and len(to_host) == 1  # one tunnel each way again (which one is the daemons' choice)


def test_both_tunnels_down_cut_the_path(lab_vpn: vpn.VpnLab) -> None:
    try:
        for name in lab_vpn.children:
            vpn.tunnel_down(lab_vpn, name)
        started = time.monotonic()
        assert _exchange(lab_vpn, 1000, timeout=1.0) == -1  # no path, and no unencrypted way around
        assert time.monotonic() - started < 5
    finally:
        for name in lab_vpn.children:
            vpn.tunnel_up(lab_vpn, name)
    to_nhn, to_host = _carriers(_moved(lab_vpn, 1000), 1000)
    assert len(to_nhn) == 1 and len(to_host) == 1


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
