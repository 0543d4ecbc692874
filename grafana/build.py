#!/usr/bin/env python3
"""Build drorch's Grafana dashboards (``grafana/dashboards/*.json``) from this file.

Plain dictionaries and the standard library only, so it runs anywhere Python 3.11 does:

    python grafana/build.py                 # write grafana/dashboards/*.json
    python grafana/build.py --check         # exit 1 when the committed JSON differs from this file
    python grafana/build.py rules --runbook-base https://git.example.com/ops/drorch/blob/main/ \\
        --out /etc/prometheus/rules/drorch.rules.yaml   # the alert rules with absolute runbook links

Edit this file, not the JSON: a test fails when they drift (tests/observability/test_dashboards.py).
Every panel query selects ``env=~"$env"``: give each estate's scrape job an ``env`` target label
(grafana/prometheus/prometheus.example.yml); without one, the variable's "All" matches everything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"
RULES = HERE / "alerts" / "drorch.rules.yaml"

Json = dict[str, Any]

DS: Json = {"type": "prometheus", "uid": "${datasource}"}
ENV = 'env=~"$env"'
SCHEMA_VERSION = 39  # Grafana 11; newer Grafana migrates it on load
WRITABLE_AS = 'label_replace(drorch_database_writable{env=~"$env"} == 1, "%s", "$1", "site", "(.+)")'

GREEN, ORANGE, RED, BLUE, GREY = "green", "orange", "red", "blue", "text"


# --- building blocks --------------------------------------------------------------------------


def target(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False, table: bool = False) -> Json:
    found: Json = {"datasource": DS, "refId": ref, "editorMode": "code", "expr": expr,
                   "legendFormat": legend or "__auto", "range": not instant, "instant": instant}
    if table:
        found["format"] = "table"
    return found


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def mapping(*values: tuple[str, str, str]) -> list[Json]:
    """Value mappings: (raw value, text shown, colour)."""
    return [{"type": "value", "options": {raw: {"text": text, "color": color, "index": i}
                                          for i, (raw, text, color) in enumerate(values)}}]


UP_DOWN = mapping(("1", "UP", GREEN), ("0", "DOWN", RED))


class Layout:
    """Places panels left to right in rows of 24 grid units; gives each a unique id."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self.x = 0
        self.y = 0
        self.row_height = 0

    def add(self, panel: Json, w: int, h: int) -> None:
        if self.x + w > 24:
            self.newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def newline(self) -> None:
        self.y += self.row_height
        self.x, self.row_height = 0, 0

    def row(self, title: str) -> None:
        if self.x:
            self.newline()
        self.panels.append({"id": len(self.panels) + 1, "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.y += 1


def _panel(kind: str, title: str, description: str, targets: list[Json], defaults: Json,
           options: Json, overrides: list[Json] | None = None) -> Json:
    return {"type": kind, "title": title, "description": description, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []}, "options": options}


def stat(title: str, description: str, targets: list[Json], *, unit: str = "none",
         steps: tuple[tuple[float | None, str], ...] = ((None, GREEN),), mappings: list[Json] | None = None,
         text_mode: str = "auto", no_value: str | None = None, decimals: int | None = None) -> Json:
    defaults: Json = {"unit": unit, "color": {"mode": "thresholds"}, "thresholds": thresholds(*steps),
                      "mappings": mappings or []}
    if no_value is not None:
        defaults["noValue"] = no_value
    if decimals is not None:
        defaults["decimals"] = decimals
    options: Json = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                     "orientation": "auto", "textMode": text_mode, "colorMode": "background",
                     "graphMode": "none", "justifyMode": "auto", "wideLayout": True, "showPercentChange": False}
    return _panel("stat", title, description, targets, defaults, options)


def timeseries(title: str, description: str, targets: list[Json], *, unit: str, objective: str | None = None,
               step: bool = False) -> Json:
    defaults: Json = {
        "unit": unit, "min": 0, "color": {"mode": "palette-classic"},
        "thresholds": thresholds((None, GREEN)),
        "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                   "lineInterpolation": "stepAfter" if step else "linear", "spanNulls": False,
                   "axisSoftMin": 0},
    }
    overrides = []
    if objective is not None:  # the objective series: a dashed red line, never filled
        overrides.append({"matcher": {"id": "byName", "options": objective}, "properties": [
            {"id": "color", "value": {"mode": "fixed", "fixedColor": RED}},
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.fillOpacity", "value": 0},
            {"id": "custom.lineWidth", "value": 2},
        ]})
    options: Json = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                     "tooltip": {"mode": "multi", "sort": "desc"}}
    return _panel("timeseries", title, description, targets, defaults, options, overrides)


def state_timeline(title: str, description: str, targets: list[Json], mappings: list[Json]) -> Json:
    defaults: Json = {"color": {"mode": "thresholds"}, "thresholds": thresholds((None, GREY)),
                      "mappings": mappings, "custom": {"lineWidth": 0, "fillOpacity": 75}}
    options: Json = {"mergeValues": True, "showValue": "auto", "alignValue": "left", "rowHeight": 0.9,
                     "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
                     "tooltip": {"mode": "single", "sort": "none"}}
    return _panel("state-timeline", title, description, targets, defaults, options)


def bargauge(title: str, description: str, targets: list[Json], *, unit: str) -> Json:
    defaults: Json = {"unit": unit, "min": 0, "color": {"mode": "continuous-GrYlRd"},
                      "thresholds": thresholds((None, GREEN))}
    options: Json = {"orientation": "horizontal", "displayMode": "gradient", "valueMode": "color",
                     "showUnfilled": True, "namePlacement": "left", "sizing": "auto", "minVizHeight": 16,
                     "minVizWidth": 8, "maxVizHeight": 300,
                     "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return _panel("bargauge", title, description, targets, defaults, options)


def table(title: str, description: str, targets: list[Json], *, hide: Sequence[str], rename: dict[str, str]) -> Json:
    defaults: Json = {"color": {"mode": "thresholds"}, "thresholds": thresholds((None, GREEN)),
                      "custom": {"align": "auto", "cellOptions": {"type": "auto"}}}
    panel = _panel("table", title, description, targets, defaults, {"showHeader": True, "cellHeight": "sm"})
    panel["transformations"] = [{"id": "organize", "options": {
        "excludeByName": {name: True for name in hide}, "renameByName": rename}}]
    return panel


def variables(*extra: Json) -> Json:
    datasource: Json = {"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
                        "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": [],
                        "includeAll": False, "multi": False}
    return {"list": [datasource, query_variable("env", "Environment", "label_values(drorch_objective_seconds, env)",
                                                multi=False), *extra]}


def query_variable(name: str, label: str, query: str, *, multi: bool = True) -> Json:
    return {"type": "query", "name": name, "label": label, "datasource": DS,
            "query": {"qryType": 1, "query": query, "refId": f"{name}-variable"}, "definition": query,
            "current": {"selected": True, "text": "All", "value": "$__all"}, "options": [],
            "includeAll": True, "allValue": ".*", "multi": multi, "refresh": 2, "sort": 1, "regex": "", "hide": 0}


def dashboard(uid: str, title: str, description: str, layout: Layout, templating: Json,
              annotations: list[Json]) -> Json:
    builtin: Json = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                     "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                     "type": "dashboard"}
    return {
        "uid": uid, "title": title, "description": description, "tags": ["drorch", "disaster-recovery"],
        "timezone": "browser", "editable": True, "graphTooltip": 1, "fiscalYearStartMonth": 0, "liveNow": False,
        "refresh": "10s", "schemaVersion": SCHEMA_VERSION, "version": 1,
        "time": {"from": "now-3h", "to": "now"}, "timepicker": {},
        "links": [{"type": "dashboards", "title": "drorch", "tags": ["drorch"], "asDropdown": False,
                   "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "annotations": {"list": [builtin, *annotations]},
        "templating": templating,
        "panels": layout.panels,
    }


FAILOVER_ANNOTATION: Json = {
    "name": "Failovers", "datasource": DS, "enable": True, "iconColor": RED, "step": "30s",
    "expr": f"sum by (to, result) (changes(drorch_failover_total{{{ENV}}}[2m])) > 0",
    "titleFormat": "failover to {{to}}: {{result}}", "textFormat": "", "tagKeys": "to,result",
    "useValueForTime": False,
}


# --- the dashboards -----------------------------------------------------------------------------


def overview() -> Json:
    site = f'{ENV},site=~"$site"'
    lay = Layout()
    lay.row("Now")
    lay.add(stat("Primary (writable database)", "The site whose database takes writes. Alert: DrorchPrimaryDown.",
                 [target(f"drorch_database_writable{{{ENV}}} == 1", "{{site}}", instant=True)],
                 text_mode="name", no_value="NONE", steps=((None, GREEN),)), 5, 4)
    lay.add(stat("DNS serves", "The site the PRIMARY record of the service name points at. "
                 "Alert: DrorchDNSNotOnPrimary.",
                 [target(f"drorch_dns_active_site{{{ENV}}} == 1", "{{site}}", instant=True)],
                 text_mode="name", no_value="UNKNOWN"), 4, 4)
    lay.add(stat("Writable databases", "Exactly 1 is right; 0 is an outage, 2 or more is split-brain.",
                 [target(f"sum(drorch_database_writable{{{ENV}}})", "writable", instant=True)],
                 steps=((None, RED), (1, GREEN), (2, RED)), decimals=0,
                 mappings=mapping(("0", "NONE", RED))), 4, 4)
    lay.add(stat("Semi-sync on the primary", "OFF: commits no longer wait for a replica, acknowledged writes can "
                 "be lost in a crash. Alert: DrorchSemiSyncFellBackToAsync.",
                 [target(f"drorch_semi_sync_active{{{ENV}}} and on(job, instance, site) "
                         f"drorch_database_writable{{{ENV}}} == 1", "{{site}}", instant=True)],
                 mappings=mapping(("1", "ON", GREEN), ("0", "OFF (async)", ORANGE))), 4, 4)
    lay.add(stat("RPO objective", "drorch_objective_seconds{objective=\"rpo\"}: the most data a failover may lose.",
                 [target(f'drorch_objective_seconds{{{ENV},objective="rpo"}}', "RPO", instant=True)],
                 unit="s", steps=((None, BLUE),)), 3, 4)
    lay.add(stat("RTO objective", "drorch_objective_seconds{objective=\"rto\"}: the longest a failover may take.",
                 [target(f'drorch_objective_seconds{{{ENV},objective="rto"}}', "RTO", instant=True)],
                 unit="s", steps=((None, BLUE),)), 4, 4)

    lay.row("Sites")
    lay.add(stat("Site health", "drorch's detector verdict: down after detection.failure_threshold failed rounds.",
                 [target(f"drorch_site_up{{{site}}}", "{{site}}", instant=True)],
                 text_mode="value_and_name", mappings=UP_DOWN), 6, 5)
    lay.add(stat("Database role", "Writable primary or read-only replica, as the database probe saw it.",
                 [target(f"drorch_database_writable{{{site}}}", "{{site}}", instant=True)],
                 text_mode="value_and_name", mappings=mapping(("1", "PRIMARY", GREEN), ("0", "read-only", BLUE)),
                 steps=((None, BLUE),)), 6, 5)
    lay.add(stat("Standby readiness", "Could the standby take over now? The reasons when not: `drorch status` "
                 "(and the probe results below). Alerts: DrorchStandbyNotReady, DrorchNoStandbyReady.",
                 [target(f"drorch_standby_ready{{{site}}} unless on(job, instance, site) "
                         f"drorch_database_writable{{{ENV}}} == 1", "{{site}}", instant=True)],
                 text_mode="value_and_name", mappings=mapping(("1", "READY", GREEN), ("0", "NOT READY", RED))), 6, 5)
    lay.add(stat("VPN tunnels", "One tunnel down: DrorchVPNTunnelDown (warning); all down: DrorchVPNDown.",
                 [target(f"drorch_vpn_tunnel_up{{{site}}}", "{{site}} {{tunnel}}", instant=True)],
                 text_mode="value_and_name", mappings=UP_DOWN), 6, 5)

    lay.row("Replication")
    lay.add(timeseries(
        "MySQL replication lag vs the RPO objective",
        "Heartbeat lag per source → replica (now minus the newest heartbeat the replica holds; it keeps growing "
        "when replication stops). Above the dashed line a failover there loses more than the objective. "
        "After a failover the old pair's line stays flat at its last value until drorch serve restarts. "
        "Alert: DrorchReplicationLagAboveObjective.",
        [target(f'drorch_replication_lag_seconds{{{ENV},store="mysql",replica=~"$site"}}', "{{source}} → {{replica}}"),
         target(f'max(drorch_objective_seconds{{{ENV},objective="rpo"}})', "RPO objective", ref="B")],
        unit="s", objective="RPO objective"), 12, 8)
    lay.add(timeseries(
        "DynamoDB replication lag vs the RPO objective",
        "How much older the newest probe item of each other region is here than in its own region (drorch "
        "serve writes one per region every second; 0 when everything written has arrived). When that region "
        "does not answer, the age of its newest probe here: what a failover now would lose at most. "
        "Alert: DrorchReplicationLagAboveObjective.",
        [target(f'drorch_replication_lag_seconds{{{ENV},store="dynamodb",replica=~"$site"}}',
                "{{source}} → {{replica}}"),
         target(f'max(drorch_objective_seconds{{{ENV},objective="rpo"}})', "RPO objective", ref="B")],
        unit="s", objective="RPO objective"), 12, 8)
    lay.add(timeseries(
        "DynamoDB stream replicator",
        "drorch's own replicator (tables with mode: stream): age of the newest change it shipped when it "
        "landed, per table and direction; and writes made at a follow-primary table's non-source copy, which "
        "it does not carry (they appear when clients still write to the old region after a failover).",
        [target(f"drorch_dynamodb_replicator_lag_seconds{{{ENV}}}", "{{table}} {{source}} → {{target}}"),
         target(f"sum by (table, site) (increase(drorch_dynamodb_uncarried_writes_total{{{ENV}}}[5m]))",
                "not carried: {{table}} at {{site}}", ref="B")],
        unit="s"), 12, 8)
    lay.add(state_timeline(
        "Replication threads", "Both threads (IO and SQL) running on each replica. Alert: DrorchReplicationStopped.",
        [target(f'drorch_replication_running{{{ENV},replica=~"$site"}} unless on(job, instance, replica) '
                + WRITABLE_AS % "replica", "{{replica}}")],
        mapping(("1", "running", GREEN), ("0", "STOPPED", RED))), 12, 6)
    lay.add(state_timeline(
        "Probe results", "The last result of every probe per site: the inputs of readiness.",
        [target(f'drorch_probe_success{{{ENV},site=~"$site|\\\\*"}}', "{{site}} {{probe}}")],
        mapping(("1", "ok", GREEN), ("0", "FAIL", RED))), 12, 6)

    lay.row("Traffic and the controller")
    lay.add(state_timeline(
        "DNS: site the PRIMARY record serves", "Where the service name points over time.",
        [target(f"drorch_dns_active_site{{{ENV}}}", "{{site}}")],
        mapping(("1", "serves", GREEN), ("0", "-", "transparent"))), 12, 6)
    lay.add(timeseries(
        "Probe latency (p95)", "How long drorch's probes take; a probe slower than "
        "detection.probe_timeout_seconds counts as failed.",
        [target("histogram_quantile(0.95, sum by (le, probe) "
                f"(rate(drorch_probe_duration_seconds_bucket{{{ENV}}}[$__rate_interval])))", "{{probe}}")],
        unit="s"), 12, 6)

    site_variable = query_variable("site", "Site", f"label_values(drorch_site_up{{{ENV}}}, site)")
    return dashboard("drorch-overview", "drorch / DR overview",
                     "Which site serves, the health and readiness of every site, replication against the RPO.",
                     lay, variables(site_variable), [FAILOVER_ANNOTATION])


def failovers() -> Json:
    lay = Layout()
    lay.row("Newest failover")
    lay.add(stat("RTO", "Newest successful failover: run start (or detection) → new primary verified through DNS.",
                 [target(f"drorch_last_failover_rto_seconds{{{ENV}}}", "RTO", instant=True)],
                 unit="s", steps=((None, BLUE),)), 4, 4)
    lay.add(stat("RTO / objective", "Above 100 %: the objective was missed (DrorchObjectiveMissed).",
                 [target(f"drorch_last_failover_rto_seconds{{{ENV}}} / on(job, instance) group_left() "
                         f'drorch_objective_seconds{{{ENV},objective="rto"}}', "RTO", instant=True)],
                 unit="percentunit", steps=((None, GREEN), (0.8, ORANGE), (1, RED))), 4, 4)
    lay.add(stat("RPO", "Newest successful failover: data lost, proven by GTID or heartbeats (no value: not known).",
                 [target(f"drorch_last_failover_rpo_seconds{{{ENV}}}", "RPO", instant=True)],
                 unit="s", steps=((None, BLUE),), no_value="not known"), 4, 4)
    lay.add(stat("RPO / objective", "Above 100 %: the objective was missed (DrorchObjectiveMissed).",
                 [target(f"drorch_last_failover_rpo_seconds{{{ENV}}} / on(job, instance) group_left() "
                         f'drorch_objective_seconds{{{ENV},objective="rpo"}}', "RPO", instant=True)],
                 unit="percentunit", steps=((None, GREEN), (0.8, ORANGE), (1, RED)), no_value="not known"), 4, 4)
    lay.add(stat("Runs by result", "Failover and playbook runs in the journal.",
                 [target(f"sum by (result) (drorch_failover_total{{{ENV}}})", "{{result}}", instant=True)],
                 text_mode="value_and_name", steps=((None, BLUE),), decimals=0), 8, 4)

    lay.row("History")
    for objective in ("rto", "rpo"):
        name = objective.upper()
        lay.add(timeseries(
            f"{name} per run vs the objective",
            f"Each step of the line is a new failover's {name}; the dashed line is the objective.",
            [target(f"drorch_last_failover_{objective}_seconds{{{ENV}}}", f"{name} of the newest failover"),
             target(f'max(drorch_objective_seconds{{{ENV},objective="{objective}"}})', f"{name} objective", ref="B")],
            unit="s", objective=f"{name} objective", step=True), 12, 8)
    lay.add(bargauge(
        "Step durations of the newest run", "Per playbook, each step of its newest run: where the RTO went.",
        [target(f'drorch_playbook_step_duration_seconds{{{ENV},playbook=~"$playbook"}}', "{{playbook}}: {{step}}",
                instant=True)], unit="s"), 16, 10)
    lay.add(table(
        "Runs by target and result", "`drorch runs list` has every run; `drorch runs show RUN_ID` its steps.",
        [target(f"drorch_failover_total{{{ENV}}}", instant=True, table=True)],
        hide=("Time", "__name__", "job", "instance", "env"), rename={"Value": "runs"}), 8, 10)

    lay.row("Drills and the controller")
    lay.add(stat("Since the last successful drill", "Alert DrorchDrillOverdue after 8 days. "
                 "`drorch drill --to SITE` runs one.",
                 [target(f"time() - drorch_drill_last_success_timestamp{{{ENV}}}", "{{drill}}", instant=True)],
                 unit="dtdurations", steps=((None, GREEN), (7 * 86400, ORANGE), (8 * 86400, RED)),
                 no_value="never"), 8, 5)
    lay.add(stat("Last drill met the objectives", "RTO and RPO of each drill's newest run within the objectives. "
                 "Alert: DrorchObjectiveMissed.",
                 [target(f"min by (drill) (drorch_drill_objective_met{{{ENV}}})", "{{drill}}", instant=True)],
                 mappings=mapping(("1", "MET", GREEN), ("0", "MISSED", RED)), no_value="no drill"), 8, 5)
    lay.add(stat("Controller lease", "Exactly one controller should hold it. Alerts: DrorchNoLeaseHolder, "
                 "DrorchMultipleLeaseHolders, DrorchControllerDown.",
                 [target(f"drorch_lease_held{{{ENV}}}", "{{instance}}", instant=True)],
                 text_mode="value_and_name", mappings=mapping(("1", "HOLDS", GREEN), ("0", "waits", BLUE)),
                 no_value="no lease"), 8, 5)
    lay.add(state_timeline(
        "Drill history", "The outcome of each drill over time, and whether one succeeded within 8 days.",
        [target(f"min by (drill) (drorch_drill_objective_met{{{ENV}}})", "{{drill}}: objectives met"),
         target(f"time() - drorch_drill_last_success_timestamp{{{ENV}}} < bool 8 * 86400",
                "{{drill}}: drilled within 8 days", ref="B")],
        mapping(("1", "yes", GREEN), ("0", "NO", RED))), 24, 5)

    playbook = query_variable("playbook", "Playbook",
                              f"label_values(drorch_playbook_step_duration_seconds{{{ENV}}}, playbook)")
    return dashboard("drorch-failovers", "drorch / Failovers and drills",
                     "RTO and RPO of every run against the objectives, step durations, drills, the lease.",
                     lay, variables(playbook), [FAILOVER_ANNOTATION])


def dashboards() -> dict[str, Json]:
    return {"drorch-overview.json": overview(), "drorch-failovers.json": failovers()}


def render(board: Json) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def rules_with_runbook_base(base: str, text: str | None = None) -> str:
    """The alert rules with every relative ``runbook_url`` made absolute under ``base``."""
    source = RULES.read_text() if text is None else text
    return source.replace("runbook_url: runbooks/", f"runbook_url: {base.rstrip('/')}/runbooks/")


# --- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the JSON differs")
    sub = parser.add_subparsers(dest="command")
    rules = sub.add_parser("rules", help="print the alert rules with absolute runbook links")
    rules.add_argument("--runbook-base", required=True, help="URL of the repository root, e.g. .../blob/main/")
    rules.add_argument("--out", type=Path, help="write here instead of standard output")
    args = parser.parse_args(argv)
    if args.command == "rules":
        text = rules_with_runbook_base(args.runbook_base)
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.write_text(text)
        return 0
    stale = []
    for name, board in dashboards().items():
        path = DASHBOARDS / name
        text = render(board)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print("out of date (run python grafana/build.py): " + ", ".join(str(p) for p in stale), file=sys.stderr)
        return 1
    for path in [] if args.check else stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
