"""Shared fixtures: one real lab per test worker, started lazily and always stopped.

Tests that change roles or break things restore the home topology (seoul
primary) when they finish, so tests sharing the lab stay independent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drorch.lab import processes
from drorch.lab.control import Lab
from drorch.lab.layout import LabLayout
from tests.helpers import restore_home, running_lab


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
