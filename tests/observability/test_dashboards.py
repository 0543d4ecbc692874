"""The Grafana dashboards: generated from grafana/build.py, well formed, and provisioned."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.observability.tools import (
    DASHBOARDS,
    GRAFANA,
    build_module,
    committed_dashboards,
    panel_queries,
    rules,
    variable_queries,
)

UNITLESS = {"row", "state-timeline", "table"}


def test_committed_json_is_what_build_py_generates() -> None:
    build = build_module()
    generated = {name: build["render"](board) for name, board in build["dashboards"]().items()}
    committed = {path.name: path.read_text() for path in sorted(DASHBOARDS.glob("*.json"))}
    assert set(committed) == set(generated), "run `python grafana/build.py`"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} differs from grafana/build.py's output: run `python grafana/build.py`"
    assert build["main"](["--check"]) == 0


def test_the_two_dashboards_of_the_issue_exist() -> None:
    titles = {board["title"] for board in committed_dashboards().values()}
    assert titles == {"drorch / DR overview", "drorch / Failovers and drills"}


@pytest.mark.parametrize("name", sorted(committed_dashboards()))
def test_dashboard_is_well_formed_for_current_grafana(name: str) -> None:
    board = committed_dashboards()[name]
    assert board["uid"] and len(board["uid"]) <= 40 and board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert {"datasource", "env"} <= set(variables)
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not area & cells, f"panel '{panel['title']}' overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"], f"panel '{panel['title']}' needs a description"
        defaults = panel["fieldConfig"]["defaults"]
        assert "thresholds" in defaults, f"panel '{panel['title']}' has no thresholds"
        if panel["type"] not in UNITLESS:
            assert defaults.get("unit"), f"panel '{panel['title']}' has no unit"
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
    for where, expr in panel_queries(board):
        assert 'env=~"$env"' in expr, f"{where} ignores the environment variable: {expr}"
        for used in re.findall(r"\$(\w+)", expr):
            assert used in variables or used.startswith("__") or used.isdigit(), f"{where}: unknown ${used}"
    for var, query in variable_queries(board):
        assert re.fullmatch(r"label_values\(\w+(\{[^}]*\})?, \w+\)", query), f"variable {var}: {query}"


def test_alerts_named_in_panel_descriptions_exist() -> None:
    names = {rule["alert"] for rule in rules()}
    for board in committed_dashboards().values():
        for panel in board["panels"]:
            for named in re.findall(r"\bDrorch[A-Z]\w+", panel.get("description", "")):
                assert named in names, f"panel '{panel['title']}' names an unknown alert {named}"


def test_provisioning_files_point_grafana_at_prometheus_and_the_dashboards() -> None:
    datasources: dict[str, Any] = yaml.safe_load((GRAFANA / "provisioning/datasources/drorch.yaml").read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["access"] == "proxy" and source["url"]
    providers: dict[str, Any] = yaml.safe_load((GRAFANA / "provisioning/dashboards/drorch.yaml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
