"""``lab up`` / ``lab down``: bad input is refused cleanly, nothing is ever left running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drorch.errors import InvalidInput
from drorch.lab import lifecycle, processes
from drorch.lab.layout import LabLayout
from drorch.lab.ports import free_port
from tests.conftest import pids_of


def _drorch(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "drorch.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def _processes_mentioning(root: Path) -> list[int]:
    """Every live process whose command line names the lab directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(root).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_up_without_mariadbd_names_the_package_and_starts_nothing(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    result = _drorch("lab", "up", "--dir", str(root), path=str(Path(sys.executable).parent))
    assert result.returncode == 2
    assert "mariadb-server" in result.stderr and "mariadbd" in result.stderr
    assert _processes_mentioning(root) == []
    assert not (root / "run").exists() or not any((root / "run").iterdir())


def test_up_refuses_a_directory_that_is_not_a_lab(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = _drorch("lab", "up", "--dir", str(tmp_path))
    assert result.returncode == 2 and "not a drorch lab" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_up_refuses_an_unusable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _drorch("lab", "up", "--dir", str(blocker / "lab"))
    assert result.returncode == 2 and "--dir" in result.stderr


def test_down_and_status_outside_a_lab_are_invalid(tmp_path: Path) -> None:
    assert _drorch("lab", "down", "--dir", str(tmp_path)).returncode == 2
    assert _drorch("lab", "status", "--dir", str(tmp_path)).returncode == 2


SUBNET = "127.201.7"


@pytest.fixture()
def taken_port() -> Iterator[int]:
    """A port on seoul's lab address that something else already listens on."""
    with socket.socket() as sock:
        sock.bind((f"{SUBNET}.1", free_port(f"{SUBNET}.1")))
        sock.listen()
        yield sock.getsockname()[1]


def test_port_taken_at_start_is_retried_and_down_leaves_no_process(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed_out: list[int] = []

    def first_port_is_taken(host: str = "127.0.0.1", also_on: tuple[str, ...] = ()) -> int:
        """Hands out the taken port first, as if another program grabbed it between choice and bind."""
        port = taken_port if not handed_out else free_port(host, also_on)
        handed_out.append(port)
        return port

    monkeypatch.setattr(lifecycle, "free_lab_subnet", lambda: SUBNET)
    monkeypatch.setattr(lifecycle, "free_port", first_port_is_taken)
    root = tmp_path / "lab"
    try:
        result = lifecycle.up(root)
        assert not result.already_running
        assert result.state.sites["seoul"].app_port != taken_port  # the second attempt chose again
        pids = pids_of(root)
        assert len(pids) == 8
        # A partly dead lab: one database crashed before `lab down`.
        nhn_db = processes.read(LabLayout(root.resolve()).run, "mariadb-nhn")
        assert nhn_db is not None
        processes.kill(nhn_db)
    finally:
        report = lifecycle.down(root)
    assert {s.name: s.alive for s in report}["mariadb-nhn"] is False
    assert sum(s.alive for s in report) == 7
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or b"Z" in Path(f"/proc/{pid}/stat").read_bytes().split(b")")[-1][:3]
    assert _processes_mentioning(root.resolve()) == []
    with pytest.raises(InvalidInput):
        lifecycle.status(tmp_path / "nowhere")


def test_a_database_port_never_repeats_the_app_port_on_the_same_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both are chosen before either is bound, so a bind test alone could hand out the same port twice."""
    handed = iter([18000, 18000, 18001, 18000, 18002, 18000, 18003, 18010, 18011])
    monkeypatch.setattr(lifecycle, "free_lab_subnet", lambda: SUBNET)
    monkeypatch.setattr(lifecycle, "free_port", lambda host="127.0.0.1", also_on=(): next(handed))
    sites, _aws, _openstack = lifecycle._choose_ports(None)
    assert {s.app_port for s in sites.values()} == {18000}
    assert [s.mysql_port for s in sites.values()] == [18001, 18002, 18003]
