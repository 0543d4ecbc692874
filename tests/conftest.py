"""Shared fixtures: one real lab per test worker, started lazily and always stopped.

Tests that change roles or break things restore the home topology (seoul
primary) when they finish, so tests sharing the lab stay independent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drorch.lab import lifecycle, processes
from drorch.lab.control import Lab, open_lab
from drorch.lab.layout import LabLayout


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    lifecycle.up(root)
    try:
        yield open_lab(root)
    finally:
        lifecycle.down(root)
        leftover = [t for t in processes.tracked_all(LabLayout(root.resolve()).run) if processes.is_alive(t)]
        assert not leftover, f"lab processes still running after lab down: {leftover}"


def pids_of(root: Path) -> list[int]:
    """PIDs of every process the lab in ``root`` started."""
    return [t.pid for t in processes.tracked_all(LabLayout(root.resolve()).run)]
