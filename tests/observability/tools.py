"""Paths and tools shared by the observability tests: the repository's grafana/ tree and Debian's Prometheus."""

from __future__ import annotations

import json
import re
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "grafana"
RULES = GRAFANA / "alerts" / "drorch.rules.yaml"
RULE_TESTS = (GRAFANA / "alerts" / "drorch.rules.test.yaml", GRAFANA / "alerts" / "drorch.rules.drills.test.yaml")
DASHBOARDS = GRAFANA / "dashboards"
PROMETHEUS_EXAMPLE = GRAFANA / "prometheus" / "prometheus.example.yml"
RUNBOOKS = REPO / "runbooks"


def require(tool: str) -> str:
    """Path of a Prometheus program; fails (never skips) when it is missing."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/bin:/usr/sbin:/bin")
    assert found, f"`{tool}` is not installed: run scripts/setup.sh (it installs Debian's `prometheus` package)"
    return found


def promtool(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require("promtool"), *args], capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=REPO)


def rules() -> list[dict[str, Any]]:
    """Every alerting rule of the rule file, in order."""
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def kebab(name: str) -> str:
    """DrorchVPNTunnelDown -> drorch-vpn-tunnel-down (the runbook's file name)."""
    return "-".join(w.lower() for w in re.findall(r"[A-Z]+(?=[A-Z][a-z]|\b)|[A-Z][a-z]*|[a-z]+|\d+", name))


def build_module() -> dict[str, Any]:
    """grafana/build.py's globals (it is a script, not a package)."""
    return runpy.run_path(str(GRAFANA / "build.py"), run_name="drorch_grafana_build")


def committed_dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every Prometheus annotation of a dashboard."""
    found = [(f"panel '{panel['title']}' {target['refId']}", str(target["expr"]))
             for panel in board["panels"] for target in panel.get("targets", [])]
    found += [(f"annotation '{a['name']}'", str(a["expr"])) for a in board["annotations"]["list"] if "expr" in a]
    return found


def variable_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, query) of every query variable, e.g. ('site', 'label_values(drorch_site_up{env=~"$env"}, site)')."""
    return [(v["name"], str(v["definition"])) for v in board["templating"]["list"] if v["type"] == "query"]


# Grafana's substitutions as a dashboard with "All" selected sends them.
SUBSTITUTIONS = {"$__rate_interval": "1m", "$env": ".*", "$site": ".*", "$playbook": ".*"}


def substitute(expr: str) -> str:
    for name, value in sorted(SUBSTITUTIONS.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr.replace('"$1"', ""), f"a Grafana variable is left in {expr!r}"
    return expr
