"""deploy/: the systemd unit, the container image and the Kubernetes manifests, checked for the fields that matter.

The config shipped in the ConfigMap is loaded by drorch's own loader, so a
manifest that drifts from the schema fails here, not in a cluster at 3 a.m.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from drorch.config.loader import load_config
from drorch.config.schema import Config
from drorch.engine.iam import monitoring

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBE = DEPLOY / "kubernetes"


def manifest(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((KUBE / name).read_text())
    return document


def container() -> dict[str, Any]:
    spec: dict[str, Any] = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    return spec


@pytest.fixture()
def shipped_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The ConfigMap's drorch.yaml, loaded as the pod would: secrets from the Secret's keys, clouds.yaml mounted."""
    secret = manifest("secret.example.yaml")["stringData"]
    for name, value in secret.items():
        if name.isupper():
            monkeypatch.setenv(name, value)
    (tmp_path / "clouds.yaml").write_text(secret["clouds.yaml"])
    text = manifest("configmap.yaml")["data"]["drorch.yaml"]
    mount = next(m for m in container()["volumeMounts"] if m["name"] == "openstack")["mountPath"]
    assert f"{mount}/clouds.yaml" in text  # the config names the file where the Secret is mounted...
    path = tmp_path / "drorch.yaml"
    path.write_text(text.replace(f"{mount}/clouds.yaml", str(tmp_path / "clouds.yaml")))  # ...here, in tmp
    return load_config(path)


def test_the_shipped_config_is_valid_and_shares_its_lease(shipped_config: Config) -> None:
    lease = shipped_config.state.lease
    assert lease.backend in ("etcd", "dynamodb")  # two pods cannot share the SQLite lease file
    assert shipped_config.drills and shipped_config.drills[0].schedule  # the scheduled drill
    state_mount = next(m for m in container()["volumeMounts"] if m["name"] == "state")["mountPath"]
    assert shipped_config.state.path.is_relative_to(state_mount) and not container()["volumeMounts"][2].get(
        "readOnly")
    port = int(shipped_config.metrics.listen.rpartition(":")[2])
    assert {"name": "metrics", "containerPort": port} in container()["ports"]
    lease_grants = [actions for actions, resource in monitoring(shipped_config, "123456789012")
                    if resource.endswith(":table/drorch-lease")]
    assert lease_grants == [("dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:UpdateItem")]


def test_two_serve_replicas_never_three_on_separate_nodes() -> None:
    deployment = manifest("deployment.yaml")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}
    pod = spec["template"]["spec"]
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"] == pod.get(
        "topologySpreadConstraints")[0]["labelSelector"]["matchLabels"]
    args = container()["args"]
    assert args[0] == "serve" and args[args.index("--config") + 1] == "/etc/drorch/drorch.yaml"
    config_mount = next(m for m in container()["volumeMounts"] if m["name"] == "config")
    assert config_mount["mountPath"] == "/etc/drorch/drorch.yaml" and config_mount["readOnly"]


def test_pods_run_unprivileged_with_secrets_from_a_secret() -> None:
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container()["envFrom"] == [{"secretRef": {"name": manifest("secret.example.yaml")["metadata"]["name"]}}]
    text = manifest("configmap.yaml")["data"]["drorch.yaml"]
    assert "change-me" not in text  # the config holds references, never the secrets
    referenced = {line.split("env:")[1].split("}")[0].strip() for line in text.splitlines() if "{env:" in line}
    assert referenced and referenced <= set(manifest("secret.example.yaml")["stringData"])


def test_metrics_service_and_disruption_budget_select_the_controllers() -> None:
    labels = manifest("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    service = manifest("service.yaml")["spec"]
    assert service["selector"] == labels and service["ports"][0]["targetPort"] == "metrics"
    budget = manifest("poddisruptionbudget.yaml")["spec"]
    assert budget["minAvailable"] == 1 and budget["selector"]["matchLabels"] == labels
    probes = container()["livenessProbe"], container()["readinessProbe"]
    assert all(probe["httpGet"] == {"path": "/metrics", "port": "metrics"} for probe in probes)


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(DEPLOY / "systemd" / "drorch.service")
    return parser


def test_systemd_unit_runs_serve_restarts_and_is_confined() -> None:
    service = unit()["Service"]
    assert service["ExecStart"].split()[1:] == ["serve", "--config", "/etc/drorch/drorch.yaml"]
    assert service["Restart"] == "always" and service["User"] not in ("", "root")
    assert service["StateDirectory"] == "drorch" and service["ReadWritePaths"] == "/var/lib/drorch"
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    assert service["UMask"] == "0077"  # the state file and anything else it writes: owner only
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    drorch = Path(sys.executable).with_name("drorch")
    text = (DEPLOY / "systemd" / "drorch.service").read_text()
    copy = tmp_path / "drorch.service"
    copy.write_text(text.replace("/opt/drorch/.venv/bin/drorch", str(drorch)))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False)
    problems = [line for line in result.stderr.splitlines() if "drorch.service" in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_container_image_installs_drorch_and_runs_as_a_user() -> None:
    lines = [line.strip() for line in (DEPLOY / "container" / "Containerfile").read_text().splitlines()]
    assert any(line.startswith("RUN pip install") and "/src" in line for line in lines)
    assert "mariadb-client" in " ".join(lines)  # rebuilds stream mariadb-dump into mariadb
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert str(container()["image"]).count(":") == 1  # a pinned tag, never :latest implicitly
