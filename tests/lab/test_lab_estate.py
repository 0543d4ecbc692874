"""The running lab is the estate the design notes describe, built from real parts."""

from __future__ import annotations

import functools
import json
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import openstack
import yaml

from drorch.config import load_config
from drorch.engine.actions import dns
from drorch.lab import chaos, lifecycle
from drorch.lab.control import Lab
from drorch.lab.resolver import CachingResolver, resolve
from drorch.providers.aws import route53
from tests.helpers import wait_for


def test_manifest_follows_the_contract(lab: Lab) -> None:
    manifest = json.loads(lab.layout.manifest.read_text())
    assert set(manifest) >= {"aws_endpoint", "openstack_auth_url", "sites", "dns"}
    assert {s["role"] for s in manifest["sites"].values()} == {"primary", "standby"}
    assert manifest["sites"]["seoul"]["role"] == "primary"
    for site in manifest["sites"].values():
        assert set(site["mysql"]) == {"host", "port", "user", "password"}
        assert site["app_url"].startswith("http://")
    assert manifest["dns"]["record"].endswith(".")
    assert stat.S_IMODE(lab.layout.manifest.stat().st_mode) == 0o600
    for secret in lab.layout.secrets.iterdir():
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_config_loads_and_keeps_secrets_out(lab: Lab) -> None:
    config = load_config(lab.layout.config)
    assert config.primary_site == "seoul"
    text = lab.layout.config.read_text()
    for secret in lab.layout.secrets.iterdir():
        assert secret.read_text().strip() not in text


def test_write_on_seoul_reaches_tokyo_and_nhn(lab: Lab) -> None:
    ref = f"repl-{uuid.uuid4().hex[:8]}"
    lab.admin("seoul").execute(("INSERT INTO shop.orders (client_ref, site) VALUES (%s, 'seoul')", (ref,)))
    for site in ("tokyo", "nhn"):
        query = functools.partial(lab.admin(site).query, "SELECT id FROM shop.orders WHERE client_ref = %s", (ref,))
        wait_for(query, timeout=10)


def test_roles_semi_sync_and_gtid_replication(lab: Lab) -> None:
    seoul = lab.admin("seoul")
    assert not seoul.state().read_only
    assert seoul.state().semi_sync_source_active
    row = seoul.query("SELECT @@rpl_semi_sync_master_wait_point AS wp, @@log_bin AS lb, @@gtid_strict_mode AS gs")[0]
    assert row["wp"] == "AFTER_SYNC" and int(row["lb"]) == 1 and int(row["gs"]) == 1
    seoul_port = lab.state.sites["seoul"].mysql_port
    for site in ("tokyo", "nhn"):
        db = lab.admin(site)
        state = db.state()
        assert state.read_only
        assert state.replica is not None and state.replica.io_running and state.replica.sql_running
        assert state.replica.source_port == seoul_port
        status = db.query("SHOW SLAVE STATUS")[0]
        assert status["Using_Gtid"] == "Slave_Pos"
        assert int(db.query("SELECT @@log_bin AS lb")[0]["lb"]) == 1
    semi = {s: int(lab.admin(s).query("SELECT @@rpl_semi_sync_slave_enabled AS e")[0]["e"]) for s in ("tokyo", "nhn")}
    assert semi == {"tokyo": 1, "nhn": 0}


def test_moto_holds_the_aws_estate(lab: Lab) -> None:
    estate = lab.estate
    config = estate.config
    records = route53.failover_records(estate.route53, config.dns.zone_id, config.dns.record, "A")
    assert {(r.set_identifier, r.role) for r in records} == {("seoul", "PRIMARY"), ("tokyo", "SECONDARY")}
    assert all(r.health_check_id for r in records)
    eks = estate.aws("seoul", "eks")
    assert "app-nodes" in eks.list_nodegroups(clusterName="eks-prod")["nodegroups"]
    ecs = estate.aws("tokyo", "ecs")
    service = ecs.describe_services(cluster="dr-ecs-cluster", services=["dr-fargate-service"])["services"][0]
    assert service["desiredCount"] >= 1
    seoul_tables = estate.aws("seoul", "dynamodb").list_tables()["TableNames"]
    tokyo_tables = estate.aws("tokyo", "dynamodb").list_tables()["TableNames"]
    assert {"orders", "dr-rpo-probe"} <= set(seoul_tables)
    assert {"dr-orders-table", "dr-rpo-probe"} <= set(tokyo_tables)
    orders = estate.aws("seoul", "dynamodb").describe_table(TableName="orders")["Table"]
    assert orders["StreamSpecification"]["StreamEnabled"]
    vpn = estate.aws("seoul", "ec2").describe_vpn_connections()["VpnConnections"]
    assert len(vpn) == 1 and len(vpn[0]["VgwTelemetry"]) == 2


def test_openstacksdk_lists_nhn_through_clouds_yaml_and_v2(lab: Lab) -> None:
    cfg = openstack.config.OpenStackConfig(config_files=[str(lab.layout.clouds_file)])
    conn = openstack.connection.Connection(config=cfg.get_one(cloud="nhn-lab"))
    names = {s.name for s in conn.compute.servers()}
    assert {"nhn-app-1", "nhn-app-2"} <= names
    assert [lb.name for lb in conn.load_balancer.load_balancers()] == ["nhn-app-lb"]
    auth = yaml.safe_load(lab.layout.clouds_file.read_text())["clouds"]["nhn-lab"]["auth"]
    base = auth["auth_url"].rsplit("/", 1)[0]
    conn2 = openstack.connect(auth_url=f"{base}/v2.0", username=auth["username"], password=auth["password"],
                              project_name=auth["project_name"], region_name="KR1", identity_api_version="2")
    assert {s.name for s in conn2.compute.servers()} == names


def test_resolver_follows_a_record_flip(lab: Lab) -> None:
    estate, config = lab.estate, lab.config
    assert resolve(estate.route53, config.dns.zone_id, config.dns.record).set_identifier == "seoul"
    try:
        assert dns.point_to(estate, "tokyo", "seoul") is True
        assert dns.point_to(estate, "tokyo", "seoul") is False  # idempotent
        answer = resolve(estate.route53, config.dns.zone_id, config.dns.record)
        assert (answer.set_identifier, answer.value) == ("tokyo", lab.state.sites["tokyo"].ip)
    finally:
        dns.point_to(estate, "seoul", "tokyo")
    assert resolve(estate.route53, config.dns.zone_id, config.dns.record).set_identifier == "seoul"


def test_resolver_fails_over_on_real_health_and_honours_inverted(lab: Lab) -> None:
    estate, config = lab.estate, lab.config

    def answer() -> str:
        return resolve(estate.route53, config.dns.zone_id, config.dns.record).set_identifier

    try:
        chaos.stop_app(lab, "seoul")
        assert answer() == "tokyo"
    finally:
        chaos.start_app(lab, "seoul")
    assert answer() == "seoul"
    check_id = config.dns.sites["seoul"].health_check_id
    try:
        estate.route53.update_health_check(HealthCheckId=check_id, Inverted=True)
        assert answer() == "tokyo"
    finally:
        estate.route53.update_health_check(HealthCheckId=check_id, Inverted=False)
    assert answer() == "seoul"


def test_caching_resolver_keeps_an_answer_for_its_ttl(lab: Lab) -> None:
    estate, config = lab.estate, lab.config
    cached = CachingResolver(estate.route53, config.dns.zone_id, config.dns.record)
    first = cached.resolve()
    try:
        dns.point_to(estate, "tokyo", "seoul")
        assert cached.resolve() is first  # within the TTL the client keeps its answer
        time.sleep(first.ttl + 0.1)
        assert cached.resolve().set_identifier == "tokyo"
    finally:
        dns.point_to(estate, "seoul", "tokyo")


def test_second_lab_up_reports_the_running_lab(lab: Lab) -> None:
    result = lifecycle.up(lab.layout.root)
    assert result.already_running
    assert result.state.sites == lab.state.sites


def test_delay_replica_and_heal(lab: Lab) -> None:
    try:
        chaos.delay_replica(lab, "tokyo", 3)
        ref = f"delay-{uuid.uuid4().hex[:8]}"
        lab.admin("seoul").execute(("INSERT INTO shop.orders (client_ref, site) VALUES (%s, 'seoul')", (ref,)))
        query = "SELECT id FROM shop.orders WHERE client_ref = %s"
        wait_for(functools.partial(lab.admin("nhn").query, query, (ref,)), timeout=10)
        assert lab.admin("tokyo").query(query, (ref,)) == []  # nhn has it, tokyo applies it late
        assert "removed tokyo replica delay" in chaos.heal(lab)
        wait_for(functools.partial(lab.admin("tokyo").query, query, (ref,)), timeout=10)
    finally:
        chaos.delay_replica(lab, "tokyo", 0)


def test_heal_restarts_a_killed_replica_and_status_shows_where_things_run(lab: Lab) -> None:
    assert chaos.kill_db(lab, "nhn") is True
    statuses = {s.name: s for s in lifecycle.status(lab.layout.root)}
    assert statuses["mariadb-nhn"].alive is False and statuses["mariadb-seoul"].alive is True
    assert statuses["app-tokyo"].endpoint == lab.state.app_url("tokyo")
    assert "started nhn database" in chaos.heal(lab)
    nhn = lab.admin("nhn")
    assert nhn.state().read_only  # every lab server comes back read-only
    wait_for(lambda: (r := nhn.state().replica) is not None and r.io_running and r.sql_running, timeout=20)
    assert all(s.alive for s in lifecycle.status(lab.layout.root))


def test_chaos_and_load_cli_reject_bad_input(lab: Lab, tmp_path: Path) -> None:
    def drorch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "drorch.cli", *args, "--dir", str(lab.layout.root)],
                              capture_output=True, text=True, timeout=60, check=False)

    unknown = drorch("lab", "chaos", "kill-db", "osaka")
    assert unknown.returncode == 2 and "unknown site 'osaka'" in unknown.stderr
    assert drorch("lab", "chaos", "explode", "seoul").returncode == 2
    assert drorch("lab", "chaos", "kill-db").returncode == 2
    assert drorch("lab", "load", "--rate", "0", "--out", str(tmp_path / "x.jsonl")).returncode == 2
    assert all(s.alive for s in lifecycle.status(lab.layout.root))


def test_load_cli_reports_ground_truth(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "load.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "drorch.cli", "lab", "load", "--dir", str(lab.layout.root), "--rate", "20",
         "--duration", "1", "--out", str(out), "--output", "json"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["attempted"] == 20 and report["acknowledged"] == 20
    assert report["lost_acknowledged_writes"] == 0 and report["acknowledged_by_site"] == {"seoul": 20}
    assert len(out.read_text().splitlines()) == 20
