"""An OpenStack site's clouds.yaml is checked when the config loads: a typo is exit 2, not a 3 a.m. surprise."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drorch.config import load_config
from drorch.errors import InvalidInput

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reversed-estate"


@pytest.fixture()
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRORCH_DB_PASSWORD", "not-used")
    monkeypatch.setenv("DRORCH_REPL_PASSWORD", "not-used")
    shutil.copy(EXAMPLE / "drorch.yaml", tmp_path / "drorch.yaml")
    shutil.copy(EXAMPLE / "clouds.yaml", tmp_path / "clouds.yaml")
    return tmp_path / "drorch.yaml"


def test_a_defined_cloud_loads(estate: Path) -> None:
    assert load_config(estate).sites["nhn"].provider.cloud == "nhn-kr1"  # type: ignore[union-attr]


def test_an_unknown_cloud_names_the_ones_the_file_defines(estate: Path) -> None:
    estate.write_text(estate.read_text().replace("cloud: nhn-kr1", "cloud: nhn-kr2"))
    with pytest.raises(InvalidInput) as caught:
        load_config(estate)
    [problem] = caught.value.problems
    assert problem.startswith(f"{estate}:")
    assert "sites.nhn.provider.cloud: no cloud 'nhn-kr2'" in problem and "(it defines nhn-kr1)" in problem


def test_a_missing_or_broken_clouds_file_is_named(estate: Path) -> None:
    clouds = estate.parent / "clouds.yaml"
    clouds.unlink()
    with pytest.raises(InvalidInput, match=r"sites\.nhn\.provider\.clouds_file: .*clouds\.yaml does not exist"):
        load_config(estate)
    clouds.write_text("clouds: [\n  password: hunter2\n")
    with pytest.raises(InvalidInput) as caught:
        load_config(estate)
    assert "is not valid YAML (line" in str(caught.value.problems) and "hunter2" not in str(caught.value.problems)
