"""Fixtures shared by the config tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.test_loader import DRORCH_SECRET, REPL_SECRET


@pytest.fixture()
def estate(tmp_path: Path) -> Path:
    """A config folder with the two secret files and the clouds.yaml the valid config references."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "drorch.password").write_text(DRORCH_SECRET + "\n")
    (secrets / "repl.password").write_text(REPL_SECRET + "\n")
    (tmp_path / "clouds.yaml").write_text("clouds:\n  nhn-lab:\n    auth: {auth_url: http://127.0.0.1:5000/v3}\n")
    return tmp_path
