"""The files ``lab up`` writes for everyone else: drorch.yaml, lab.json, clouds.yaml, credentials.

The config references secrets by file name only, exactly as a user's real
config would, so the same drorch reads the lab and a real estate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from drorch.lab.aws_seed import BACKUP_BUCKET, BACKUP_REGION, RPO_PROBE_TABLE, TABLE_PAIRS
from drorch.lab.layout import HOME_PRIMARY, RECORD, SEMI_SYNC_REPLICA, SITE_REGIONS, LabLayout
from drorch.lab.mariadb import Accounts
from drorch.lab.state import LabState

if TYPE_CHECKING:  # drorch.lab.vpn imports this module (write_private)
    from drorch.lab.vpn import VpnLab

LAB_TTL = 1
OPENSTACK_CLOUD = "nhn-lab"
OPENSTACK_USER = "nhn-lab-user"
OPENSTACK_PROJECT = "nhn-lab-project"


def write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only, before any secret is written into it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_secrets(layout: LabLayout, accounts: Accounts, openstack_password: str) -> None:
    layout.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, value in (
        ("admin", accounts.admin), ("repl", accounts.repl), ("app", accounts.app),
        ("drorch", accounts.drorch), ("openstack", openstack_password),
    ):
        write_private(layout.secret(name), value + "\n")
    write_private(layout.aws_credentials, "[default]\naws_access_key_id = lab\naws_secret_access_key = lab\n")


def write_clouds_yaml(layout: LabLayout, state: LabState, password: str) -> None:
    clouds = {
        "clouds": {
            OPENSTACK_CLOUD: {
                "auth": {
                    "auth_url": state.openstack_auth_url,
                    "username": OPENSTACK_USER,
                    "password": password,
                    "project_name": OPENSTACK_PROJECT,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "identity_api_version": 3,
                "region_name": "KR1",
            }
        }
    }
    write_private(layout.clouds_file, yaml.safe_dump(clouds, sort_keys=False))


def _aws(region: str, state: LabState) -> dict[str, Any]:
    return {"kind": "aws", "region": region, "endpoint_url": state.aws_endpoint, "credentials_file": "aws-credentials"}


def _mysql(state: LabState, site: str) -> dict[str, Any]:
    return {"host": state.sites[site].ip, "port": state.sites[site].mysql_port, "user": "drorch",
            "password": {"file": "secrets/drorch.password"}, "flavor": "mariadb", "tls": "disabled"}


def _vpn(state: LabState, tunnel: VpnLab | None, root: Path | None) -> dict[str, Any]:
    """sites.nhn.vpn: the AWS side (moto's VPN connection) and, with ``--vpn``, the strongSwan side.

    No ``ike_sa``: each tunnel has its own IKE_SA (as AWS's do), and without one the probe reads all.
    The VICI socket is relative to the config file's directory, like every path in the lab's config.
    """
    doc: dict[str, Any] = {"aws_site": HOME_PRIMARY, "aws_connection_id": state.aws_ready["vpn_connection_id"]}
    if tunnel is not None:
        socket = tunnel.nhn.vici_socket
        doc["vici_socket"] = str(socket.relative_to(root) if root is not None and socket.is_relative_to(root)
                                 else socket)
        doc["tunnels"] = tunnel.children
    return doc


def _replicated_tables() -> list[dict[str, Any]]:
    """moto does not replicate: drorch's stream replicator carries the lab's tables between the two regions."""
    tables: list[dict[str, Any]] = [
        {"name": source, "mode": "stream", "direction": "follow-primary",
         "sites": {HOME_PRIMARY: source, "tokyo": replica}}
        for source, (replica, _key) in TABLE_PAIRS.items()
    ]
    tables.append({"name": RPO_PROBE_TABLE, "mode": "stream", "direction": "both",
                   "sites": {HOME_PRIMARY: RPO_PROBE_TABLE, "tokyo": RPO_PROBE_TABLE}})
    return tables


def config_document(state: LabState, tunnel: VpnLab | None = None, root: Path | None = None) -> dict[str, Any]:
    """The lab's drorch.yaml; ``tunnel`` (a ``--vpn`` lab) adds the strongSwan side of nhn's VPN,
    with paths relative to ``root`` (the config's directory)."""
    ready = state.aws_ready
    compute: dict[str, dict[str, Any]] = {
        "seoul": {"kind": "eks", "cluster": "eks-prod", "nodegroups": {"app-nodes": 4}},
        "tokyo": {"kind": "ecs", "cluster": "dr-ecs-cluster", "service": "dr-fargate-service",
                  "warm_count": 1, "active_count": 4},
        "nhn": {"kind": "openstack", "servers": ["nhn-app-1", "nhn-app-2"], "load_balancer": "nhn-app-lb",
                "nks_cluster": "nks-prod",
                "nks_nodegroup": "default-worker", "nks_active_count": 3},
    }
    extras: dict[str, dict[str, Any]] = {
        "seoul": {"dynamodb": {"tables": list(TABLE_PAIRS), "probe_table": RPO_PROBE_TABLE}},
        "tokyo": {"dynamodb": {"tables": [replica for replica, _ in TABLE_PAIRS.values()],
                               "probe_table": RPO_PROBE_TABLE}},
        "nhn": {"vpn": _vpn(state, tunnel, root)},
    }
    sites: dict[str, Any] = {}
    for name in state.sites:
        region = SITE_REGIONS[name]
        provider = (_aws(region, state) if region else
                    {"kind": "openstack", "cloud": OPENSTACK_CLOUD, "clouds_file": "clouds.yaml", "region": "KR1"})
        sites[name] = {
            "role": "primary" if name == HOME_PRIMARY else "standby",
            "provider": provider,
            "app": {"url": state.app_url(name)},
            "mysql": _mysql(state, name),
            "compute": compute[name],
            **extras.get(name, {}),
        }
    return {
        "service": "shop",
        "objectives": {"rto_seconds": 30, "rpo_seconds": 1},
        "sites": sites,
        "dns": {
            "provider": _aws("us-east-1", state),
            "zone_id": ready["zone_id"],
            "record": RECORD,
            "type": "A",
            "ttl": LAB_TTL,
            "verify_via": "lab-resolver",
            "app_port": next(iter(state.sites.values())).app_port,
            "sites": {
                name: {"set_identifier": name, "value": site.ip, "health_check_id": ready["health_checks"][name]}
                for name, site in state.sites.items()
            },
        },
        "data": {
            "mysql": {
                "replicates_from": {name: HOME_PRIMARY for name in state.sites if name != HOME_PRIMARY},
                "semi_sync": [[HOME_PRIMARY, SEMI_SYNC_REPLICA]],
                "replication_user": "repl",
                "replication_password": {"file": "secrets/repl.password"},
                "admin_user": "lab_admin",
                "admin_password": {"file": "secrets/admin.password"},
            },
            "heartbeat": {"table": "drorch.heartbeat", "interval_seconds": 0.25},
            "dynamodb": {"probe_interval_seconds": 1.0, "tables": _replicated_tables()},
        },
        "state": {"backend": "sqlite", "path": "state/drorch.db"},
        "detection": {"interval_seconds": 1.0, "failure_threshold": 3, "probe_timeout_seconds": 0.8,
                      "probe_attempts": 4},
        "metrics": {"listen": f"127.0.0.1:{state.metrics_port}"},
        "backups": _backups(state),
    }


def _backups(state: LabState) -> dict[str, Any]:
    """The lab's bucket on moto plays NHN Object Storage; base backups come from nhn, the async replica."""
    return {
        "store": {"provider": _aws(BACKUP_REGION, state), "bucket": BACKUP_BUCKET, "prefix": "",
                  "server_side_encryption": "AES256"},
        "source": "nhn",
        "retention": {"daily": 7, "weekly": 4},
        "schedules": {"base": "0 2 * * *", "verify": "30 3 * * *"},
        "binlogs": {"interval_seconds": 1.0},
    }


def write_config(layout: LabLayout, state: LabState, tunnel: VpnLab | None = None) -> None:
    header = "# Written by `drorch lab up`: the lab estate, in the same schema a real estate uses.\n"
    document = config_document(state, tunnel, layout.config.parent)
    layout.config.write_text(header + yaml.safe_dump(document, sort_keys=False))


def write_manifest(layout: LabLayout, state: LabState, accounts: Accounts, tunnel: VpnLab | None = None) -> None:
    """``lab.json``: the machine-readable contract other tools rely on (design notes, section 4)."""
    manifest = {
        "aws_endpoint": state.aws_endpoint,
        "openstack_auth_url": state.openstack_auth_url,
        "sites": {
            name: {
                "role": "primary" if name == HOME_PRIMARY else "standby",
                "app_url": state.app_url(name),
                "mysql": {"host": site.ip, "port": site.mysql_port, "user": "lab_admin", "password": accounts.admin},
            }
            for name, site in state.sites.items()
        },
        "dns": {"zone_id": state.aws_ready["zone_id"], "record": RECORD},
        "fis_templates": state.aws_ready["fis_templates"],  # site -> template killing its database and app
    }
    if tunnel is not None:  # only in a --vpn lab: where the VPN is, for outside tools
        manifest["vpn"] = {
            "dir": str(tunnel.root), "nhn_subnet": tunnel.nhn_subnet, "aws_subnet": tunnel.aws_subnet,
            "tunnels": tunnel.children, "vici_sockets": {side.name: str(side.vici_socket) for side in tunnel.sides},
            "namespaces": {side.name: side.namespace for side in tunnel.sides},
        }
    write_private(layout.manifest, json.dumps(manifest, indent=2) + "\n")
