"""`drorch iam-policy`: the least policy for this estate, scoped to its resources, accepted by IAM (moto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from drorch.lab.control import Lab
from drorch.lab.estate_copy import estate_config


def policy(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRORCH_CONFIG": str(lab.layout.config)}
    return subprocess.run([sys.executable, "-m", "drorch.cli", "iam-policy", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False, stdin=subprocess.DEVNULL)


def grants(document: dict[str, Any]) -> dict[str, set[str]]:
    """IAM action -> the resources it is allowed on."""
    found: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            found.setdefault(action, set()).update(statement["Resource"])
    return found


def test_policy_is_scoped_to_this_estate_and_iam_accepts_it(lab: Lab) -> None:
    account = lab.state.aws_ready.get("account_id", "123456789012")
    done = policy(lab, "--account-id", account)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    allowed = grants(document)
    zone = lab.config.dns.zone_id
    assert allowed["route53:ChangeResourceRecordSets"] == {f"arn:aws:route53:::hostedzone/{zone}"}
    assert allowed["ecs:UpdateService"] == {
        f"arn:aws:ecs:ap-northeast-1:{account}:service/dr-ecs-cluster/dr-fargate-service"}
    assert allowed["eks:UpdateNodegroupConfig"] == {
        f"arn:aws:eks:ap-northeast-2:{account}:nodegroup/eks-prod/app-nodes/*"}
    tokyo_orders = f"arn:aws:dynamodb:ap-northeast-1:{account}:table/dr-orders-table"
    assert f"{tokyo_orders}/stream/*" in allowed["dynamodb:GetRecords"]  # the replicator reads every copy's stream
    assert tokyo_orders in allowed["dynamodb:DeleteItem"]  # ...and writes every copy (the direction turns round)
    assert not any(action.endswith("*") for action in allowed)  # never a wildcard action
    wildcard = {action for action, resources in allowed.items() if "*" in resources}
    assert wildcard <= {"ec2:DescribeVpnConnections", "cloudwatch:GetMetricStatistics"}  # AWS allows no scoping
    iam = lab.estate.aws("seoul", "iam")
    created = iam.create_policy(PolicyName="drorch-least", PolicyDocument=json.dumps(document))
    iam.delete_policy(PolicyArn=created["Policy"]["Arn"])


def test_a_playbook_without_aws_actions_needs_only_the_probes(lab: Lab, tmp_path: Path) -> None:
    book = tmp_path / "db-only.yaml"
    book.write_text("name: db-only\nsteps:\n  - name: fence seoul\n    action: mysql.fence\n    with: {site: seoul}\n")
    document = json.loads(policy(lab, "--playbook", str(book)).stdout)
    allowed = grants(document)
    assert "ecs:UpdateService" not in allowed and "route53:ChangeResourceRecordSets" not in allowed
    assert "ecs:DescribeServices" in allowed  # status and serve still read capacity
    bad = policy(lab, "--account-id", "12345")
    assert bad.returncode == 2 and "12 digits" in bad.stderr


def test_a_chaos_drill_through_fis_gets_exactly_its_template_and_experiments(lab: Lab, tmp_path: Path) -> None:
    template = json.loads(lab.layout.manifest.read_text())["fis_templates"]["seoul"]
    config = estate_config(lab, tmp_path / "estate", chaos={"fault": {"fis": {"experiment_template_id": template}}})
    done = subprocess.run([sys.executable, "-m", "drorch.cli", "iam-policy", "--account-id", "123456789012"],
                          capture_output=True, text=True, env={**os.environ, "DRORCH_CONFIG": str(config)},
                          timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    allowed = grants(json.loads(done.stdout))
    arn = "arn:aws:fis:ap-northeast-2:123456789012:"
    assert allowed["fis:StartExperiment"] == {f"{arn}experiment-template/{template}", f"{arn}experiment/*"}
    assert allowed["fis:GetExperimentTemplate"] == {f"{arn}experiment-template/{template}"}
    assert allowed["fis:StopExperiment"] == allowed["fis:TagResource"] == {f"{arn}experiment/*"}
    without = grants(json.loads(policy(lab).stdout))  # the lab's own config names no experiment
    assert not [action for action in without if action.startswith("fis:")]
