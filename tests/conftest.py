"""Shared fixtures: one real lab per test worker, started lazily and always stopped.

Tests that change roles or break things restore the home topology (seoul
primary) when they finish, so tests sharing the lab stay independent.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from drorch.lab import processes
from drorch.lab.control import Lab
from drorch.lab.layout import LabLayout
from drorch.lab.ports import free_port
from tests.helpers import restore_home, running_lab, stop_process, wait_for


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab")) as started:
        yield started


@pytest.fixture()
def home(lab: Lab) -> Iterator[Lab]:
    """The lab with seoul primary before the test, and again after it."""
    restore_home(lab)
    yield lab
    restore_home(lab)


def pids_of(root: Path) -> list[int]:
    """PIDs of every process the lab in ``root`` started."""
    return [t.pid for t in processes.tracked_all(LabLayout(root.resolve()).run)]


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real etcd (Debian etcd-server) on loopback, stopped by its PID afterwards."""
    binary = shutil.which("etcd")
    assert binary is not None, "etcd is missing: run scripts/setup.sh (Debian package etcd-server)"
    data = tmp_path_factory.mktemp("etcd")
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    with (data / "etcd.log").open("wb") as log:
        process = subprocess.Popen([binary, "--data-dir", str(data / "member"), "--listen-client-urls", url,
                                    "--advertise-client-urls", url, "--listen-peer-urls",
                                    f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
                                    f"http://127.0.0.1:{peer}", "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
                                   stdout=log, stderr=log)
    try:
        def healthy() -> bool:
            try:
                return bool(requests.get(f"{url}/health", timeout=1).json().get("health") == "true")
            except requests.RequestException:
                return False

        wait_for(healthy, timeout=20)
        yield url
    finally:
        stop_process(process)
