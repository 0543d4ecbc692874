"""The least AWS IAM policy drorch needs: what its probes read, plus what the playbooks' actions change.

Built from the config and the playbooks themselves, so the policy names the exact
hosted zone, health checks, ECS services, EKS node groups and tables of this
estate, and grows only when a reviewed playbook starts using another action.
Actions that the AWS API cannot scope to a resource (EC2 ``Describe*``,
CloudWatch reads) get ``*``, as AWS requires.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from drorch.config.schema import AwsProvider, Config, EcsCompute, EksCompute
from drorch.engine.playbook.model import Playbook

Grant = tuple[tuple[str, ...], str]  # (IAM actions, resource ARN)


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _aws_sites(config: Config, sites: Iterable[str]) -> list[tuple[str, AwsProvider]]:
    return [(s, p) for s in sites if isinstance(p := config.site(s).provider, AwsProvider)]


def _zone(config: Config) -> list[Grant]:
    zone = f"arn:aws:route53:::hostedzone/{config.dns.zone_id}"
    return [(("route53:ListResourceRecordSets",), zone)]


def _compute(config: Config, sites: Iterable[str], account: str, change: bool) -> list[Grant]:
    found: list[Grant] = []
    for site, provider in _aws_sites(config, sites):
        compute = config.site(site).compute
        if isinstance(compute, EcsCompute):
            actions = ("ecs:DescribeServices",) + (("ecs:UpdateService",) if change else ())
            found.append((actions, _arn("ecs", provider.region, account,
                                        f"service/{compute.cluster}/{compute.service}")))
        elif isinstance(compute, EksCompute):
            actions = ("eks:DescribeNodegroup",) + (("eks:UpdateNodegroupConfig",) if change else ())
            found += [(actions, _arn("eks", provider.region, account, f"nodegroup/{compute.cluster}/{name}/*"))
                      for name in compute.nodegroups]
    return found


def _dynamodb(config: Config, sites: Iterable[str], account: str) -> list[Grant]:
    found: list[Grant] = []
    for site, provider in _aws_sites(config, sites):
        tables = config.site(site).dynamodb
        if tables is None:
            continue
        for name in tables.tables:
            table = _arn("dynamodb", provider.region, account, f"table/{name}")
            found += [(("dynamodb:DescribeTable",), table), (("dynamodb:DescribeStream",), f"{table}/stream/*")]
        if tables.probe_table:
            probe = _arn("dynamodb", provider.region, account, f"table/{tables.probe_table}")
            found.append((("dynamodb:DescribeTable", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"),
                          probe))
        found.append((("cloudwatch:GetMetricStatistics",), "*"))
    return found


def _replication(config: Config, account: str) -> list[Grant]:
    """drorch's stream replicator: read every copy's stream, write every copy (backfill and verify scan)."""
    found: list[Grant] = []
    for table in config.data.dynamodb.tables:
        if table.mode != "stream":
            continue
        for site, provider in _aws_sites(config, table.sites):
            arn = _arn("dynamodb", provider.region, account, f"table/{table.sites[site]}")
            found += [(("dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:Scan",
                        "dynamodb:UpdateItem"), arn),
                      (("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"),
                       f"{arn}/stream/*")]
    return found


def _lease(config: Config, account: str) -> list[Grant]:
    table = config.state.lease.dynamodb
    if config.state.lease.backend != "dynamodb" or table is None:
        return []
    arn = _arn("dynamodb", table.provider.region, account, f"table/{table.table}")
    return [(("dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:UpdateItem"), arn)]


def backups(config: Config) -> list[Grant]:
    """Base backups, binlog shipping, restore, verify and retention: the backup bucket's objects under the
    prefix (multipart uploads included), listing the bucket, and the KMS key when objects are encrypted with one."""
    settings = config.backups
    if settings is None:
        return []
    store = settings.store
    prefix = store.prefix.strip("/")
    root = f"{prefix}/{config.service}" if prefix else config.service
    found: list[Grant] = [
        (("s3:ListBucket",), f"arn:aws:s3:::{store.bucket}"),
        (("s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts",
          "s3:PutObject"), f"arn:aws:s3:::{store.bucket}/{root}/*")]
    if store.server_side_encryption == "aws:kms" and store.kms_key_id and store.kms_key_id.startswith("arn:"):
        found.append((("kms:Decrypt", "kms:GenerateDataKey"), store.kms_key_id))
    return found


def chaos(config: Config, account: str) -> list[Grant]:
    """A chaos drill's FIS experiment: read its template, start it (tagged), follow and stop what it started."""
    fis = config.chaos.fault.fis if config.chaos is not None else None
    if fis is None:
        return []
    provider = config.site(fis.site or config.primary_site).provider
    if not isinstance(provider, AwsProvider):
        return []  # the loader refuses this config
    template = _arn("fis", provider.region, account, f"experiment-template/{fis.experiment_template_id}")
    experiments = _arn("fis", provider.region, account, "experiment/*")
    return [(("fis:GetExperimentTemplate",), template), (("fis:StartExperiment",), template),
            (("fis:StartExperiment",), experiments),
            (("fis:GetExperiment", "fis:StopExperiment", "fis:TagResource"), experiments)]


def _health_checks(config: Config, sites: Iterable[str], change: bool) -> list[Grant]:
    actions = ("route53:GetHealthCheck",) + (("route53:UpdateHealthCheck",) if change else ())
    return [(actions, f"arn:aws:route53:::healthcheck/{entry.health_check_id}")
            for site in sites if (entry := config.dns.sites.get(site)) is not None and entry.health_check_id]


def _vpn(config: Config, sites: Iterable[str]) -> list[Grant]:
    return [(("ec2:DescribeVpnConnections",), "*") for s in sites
            if (vpn := config.site(s).vpn) is not None and vpn.aws_connection_id]


def monitoring(config: Config, account: str) -> list[Grant]:
    """What ``status`` and ``serve`` read on every round, and what serve's replicator, lease and backups write."""
    sites = list(config.sites)
    return (_zone(config) + _compute(config, sites, account, change=False) + _dynamodb(config, sites, account)
            + _vpn(config, sites) + _health_checks(config, sites, change=False) + _replication(config, account)
            + _lease(config, account) + backups(config))


def for_action(config: Config, action: str, site: str | None, account: str) -> list[Grant]:
    """What one playbook action needs; ``site`` None (templated) means every site it could name."""
    sites = [site] if site is not None else list(config.sites)
    if action == "route53.failover":
        zone = f"arn:aws:route53:::hostedzone/{config.dns.zone_id}"
        return [*_zone(config), (("route53:ChangeResourceRecordSets",), zone),
                (("route53:GetChange",), "arn:aws:route53:::change/*")]
    if action == "route53.health_check":
        return _health_checks(config, sites, change=True)
    if action in ("compute.scale", "ecs.scale", "eks.scale_nodegroup"):
        return _compute(config, sites, account, change=True)
    if action == "dynamodb.verify_replication":
        return _dynamodb(config, sites, account)
    if action == "vpn.assert_up":
        return _vpn(config, sites)
    return []  # databases, OpenStack, HTTP, people: no AWS permission


def policy(config: Config, playbooks: Iterable[Playbook], account: str = "*") -> dict[str, Any]:
    """The IAM policy document: one statement per set of actions, each with exactly the resources it needs."""
    grants = monitoring(config, account) + chaos(config, account)
    for book in playbooks:
        for _path, step in book.all_steps():
            literal = step.with_.get("site")
            site = literal if isinstance(literal, str) and literal in config.sites else None
            grants += for_action(config, step.action, site, account)
    by_actions: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for actions, resource in grants:
        by_actions[tuple(sorted(actions))].add(resource)
    statements = [{"Sid": "Drorch" + "".join(a.split(":")[1] for a in actions)[:60], "Effect": "Allow",
                   "Action": list(actions), "Resource": sorted(resources)}
                  for actions, resources in sorted(by_actions.items())]
    return {"Version": "2012-10-17", "Statement": statements}
