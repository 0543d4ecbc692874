"""Seed the lab's AWS estate into a running moto server through unmodified boto3.

The lab must look like the real estate to the orchestrator, which only ever talks
boto3. So everything here goes over HTTP to the moto server exactly as production
calls go to AWS; the one thing boto3 cannot create (VPN tunnel telemetry) is left
to ``drorch.lab.aws_server``, which owns moto's in-process backends.

Roles come from the seed's Route 53 failover roles, not from site names: the
PRIMARY site's region gets EKS, the source DynamoDB tables and the VPN to the
non-AWS site; the SECONDARY site's region gets ECS Fargate and the replica tables.

This module imports boto3 only (not moto), so readers of READY.json can import
its TypedDicts without the lab extras.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypedDict, cast

import boto3
from botocore.config import Config

from drorch.lab.fis import seed_templates

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_eks import EKSClient
    from mypy_boto3_route53 import Route53Client

FailoverRole = Literal["PRIMARY", "SECONDARY"]
# (attribute, DynamoDB scalar type, key role)
KeySpec = tuple[str, Literal["S", "N", "B"], Literal["HASH", "RANGE"]]

# moto accepts any credentials; these only make botocore sign requests.
LAB_ACCESS_KEY = "lab"
LAB_SECRET_KEY = "lab"
# Route 53 is global; botocore signs it for us-east-1.
ROUTE53_REGION = "us-east-1"

HEALTH_PATH = "/healthz"
HEALTH_INTERVAL_S = 10
HEALTH_FAILURE_THRESHOLD = 3

EKS_CLUSTER = "eks-prod"
EKS_VERSION = "1.29"


class NodeGroupSpec(NamedTuple):
    """One EKS managed node group as the real estate has it."""

    name: str
    ami_type: Literal["AL2023_ARM_64_STANDARD", "AL2023_x86_64_STANDARD"]
    instance_type: str
    min_size: int
    max_size: int
    desired_size: int


# The app runs on ARM (Graviton) like production; the Spring workload stays on x86.
NODE_GROUPS = (
    NodeGroupSpec("app-nodes", "AL2023_ARM_64_STANDARD", "m7g.large", 2, 10, 2),
    NodeGroupSpec("spring-x86", "AL2023_x86_64_STANDARD", "m6i.large", 1, 4, 1),
)
ECS_CLUSTER = "dr-ecs-cluster"
ECS_SERVICE = "dr-fargate-service"
ECS_FAMILY = "dr-app"
ECS_WARM_COUNT = 1

# Source table on the primary -> replica table on the standby, with the hash key
# they share. The RPO probe table has a sort key too (see RPO_PROBE_KEYS).
TABLE_PAIRS: dict[str, tuple[str, str]] = {
    "orders": ("dr-orders-table", "order_id"),
    "products-table": ("dr-products-table", "product_id"),
}
RPO_PROBE_TABLE = "dr-rpo-probe"
# The bucket base backups and shipped binlogs go to: NHN Object Storage in the estate drorch replaces,
# S3 here, in the standby's region, away from the primary.
BACKUP_BUCKET = "drorch-lab-backups"
BACKUP_REGION = "ap-northeast-1"
RPO_PROBE_KEYS: tuple[KeySpec, ...] = (("region", "S", "HASH"), ("seq", "N", "RANGE"))

# VPN to the non-AWS site; all addresses are RFC 5737 documentation addresses.
CUSTOMER_GATEWAY_IP = "203.0.113.10"
CUSTOMER_GATEWAY_ASN = 65000
# AWS-side outside addresses of the two tunnels, as VgwTelemetry reports them.
TUNNEL_OUTSIDE_IPS = ("198.51.100.10", "198.51.100.11")
# The NHN site's network: the VPN's one static route.
NHN_CIDR = "10.30.0.0/16"

PRIMARY_VPC_CIDR = "10.10.0.0/16"
STANDBY_VPC_CIDR = "10.20.0.0/16"

_ACCOUNT_RE = re.compile(r"^\d{12}$")


class SeedError(ValueError):
    """The seed file does not describe an estate this seeder can build."""


@dataclass(frozen=True)
class SiteSeed:
    """One site of the estate: where its demo app listens and its DNS role."""

    name: str
    region: str | None
    ip: str
    app_port: int
    failover: FailoverRole | None


@dataclass(frozen=True)
class LabSeed:
    """The whole SEED.json: account, DNS names and the sites."""

    account_id: str
    zone: str
    record: str
    ttl: int
    sites: dict[str, SiteSeed]

    @property
    def primary(self) -> SiteSeed:
        """The site whose failover record is PRIMARY (hosts EKS, source tables, VPN)."""
        return self._by_role("PRIMARY")

    @property
    def standby(self) -> SiteSeed:
        """The site whose failover record is SECONDARY (hosts ECS, replica tables)."""
        return self._by_role("SECONDARY")

    @property
    def primary_region(self) -> str:
        """The primary site's AWS region; validated non-null by ``parse_seed``."""
        return cast(str, self.primary.region)

    @property
    def standby_region(self) -> str:
        """The standby site's AWS region; validated non-null by ``parse_seed``."""
        return cast(str, self.standby.region)

    def _by_role(self, role: FailoverRole) -> SiteSeed:
        return next(site for site in self.sites.values() if site.failover == role)


class EksReady(TypedDict):
    """Where the primary's EKS cluster lives, for scale-up/down actions."""

    region: str
    cluster: str
    nodegroups: list[str]


class EcsReady(TypedDict):
    """Where the standby's Fargate service lives and its warm desired count."""

    region: str
    cluster: str
    service: str
    task_definition: str
    warm_count: int


class TableSet(TypedDict):
    """One region's tables, each mapped to its stream ARN."""

    region: str
    streams: dict[str, str]


class DynamoReady(TypedDict):
    """Both regions' tables and which standby table replicates which source."""

    primary: TableSet
    standby: TableSet
    replica_of: dict[str, str]


class ReadyInfo(TypedDict):
    """READY.json: everything a lab client needs to find the seeded estate."""

    endpoint: str
    control_endpoint: str
    account_id: str
    zone_id: str
    record: str
    health_checks: dict[str, str]
    vpn_region: str
    vpn_connection_id: str
    tunnels: list[str]
    eks: EksReady
    ecs: EcsReady
    dynamodb: DynamoReady
    fis_templates: dict[str, str]


@dataclass(frozen=True)
class Network:
    """One region's VPC pieces that EKS, ECS and the VPN hang off."""

    vpc_id: str
    subnet_ids: list[str]
    security_group_id: str


@dataclass(frozen=True)
class SeededEstate:
    """Ids created by ``seed_estate``; the server adds endpoints to make ReadyInfo."""

    zone_id: str
    health_checks: dict[str, str]
    vpn_connection_id: str
    eks: EksReady
    ecs: EcsReady
    dynamodb: DynamoReady
    fis_templates: dict[str, str]


# ---------------------------------------------------------------- seed loading


def load_seed(path: Path) -> LabSeed:
    """Read and validate SEED.json; raises SeedError with the offending field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SeedError(f"cannot read seed file {path}: {exc}") from exc
    return parse_seed(raw)


def parse_seed(raw: object) -> LabSeed:
    """Validate an already-decoded seed document and build a LabSeed."""
    doc = _mapping(raw, "seed")
    account_id = _str(doc, "account_id")
    if not _ACCOUNT_RE.match(account_id):
        raise SeedError(f"account_id must be 12 digits, got {account_id!r}")
    zone = _fqdn(_str(doc, "zone"))
    record = _fqdn(_str(doc, "record"))
    if not record.endswith("." + zone):
        raise SeedError(f"record {record!r} is not inside zone {zone!r}")
    ttl = _int(doc, "ttl", low=1, high=2_147_483_647)
    sites_raw = _mapping(doc.get("sites"), "sites")
    sites = {name: _parse_site(name, value) for name, value in sites_raw.items()}
    _check_roles(sites)
    return LabSeed(account_id=account_id, zone=zone, record=record, ttl=ttl, sites=sites)


def _parse_site(name: str, raw: object) -> SiteSeed:
    doc = _mapping(raw, f"sites.{name}")
    region = doc.get("region")
    if region is not None and not isinstance(region, str):
        raise SeedError(f"sites.{name}.region must be a string or null")
    ip = _str(doc, "ip")
    try:
        ipaddress.IPv4Address(ip)
    except ValueError as exc:
        raise SeedError(f"sites.{name}.ip is not an IPv4 address: {ip!r}") from exc
    failover = doc.get("failover")
    if failover not in ("PRIMARY", "SECONDARY", None):
        raise SeedError(f"sites.{name}.failover must be PRIMARY, SECONDARY or null")
    return SiteSeed(
        name=name,
        region=region,
        ip=ip,
        app_port=_int(doc, "app_port", low=1, high=65535),
        failover=cast("FailoverRole | None", failover),
    )


def _check_roles(sites: dict[str, SiteSeed]) -> None:
    """Exactly one PRIMARY and one SECONDARY, both in AWS regions, or roles are ambiguous."""
    for role in ("PRIMARY", "SECONDARY"):
        holders = [site for site in sites.values() if site.failover == role]
        if len(holders) != 1:
            raise SeedError(f"exactly one site must have failover {role}, found {len(holders)}")
        if holders[0].region is None:
            raise SeedError(f"the {role} site {holders[0].name!r} needs an AWS region")


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError(f"{where} must be a JSON object")
    return cast(dict[str, Any], value)


def _str(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise SeedError(f"{key} must be a non-empty string")
    return value


def _int(doc: dict[str, Any], key: str, low: int, high: int) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SeedError(f"{key} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


# ---------------------------------------------------------------- clients


@dataclass(frozen=True)
class LabClients:
    """boto3 clients aimed at the lab endpoint with dummy credentials.

    Retries are few and timeouts short: the server is local, so a slow answer
    means a bug, and seeding should fail fast rather than hang the lab start.
    """

    endpoint_url: str

    def _client(self, service: str, region: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=LAB_ACCESS_KEY,
            aws_secret_access_key=LAB_SECRET_KEY,
            config=Config(connect_timeout=2, read_timeout=15, retries={"max_attempts": 2}),
        )

    def route53(self) -> Route53Client:
        """Route 53 client (global service, us-east-1 signing region)."""
        return cast("Route53Client", self._client("route53", ROUTE53_REGION))

    def ec2(self, region: str) -> EC2Client:
        """EC2 client for ``region``."""
        return cast("EC2Client", self._client("ec2", region))

    def eks(self, region: str) -> EKSClient:
        """EKS client for ``region``."""
        return cast("EKSClient", self._client("eks", region))

    def ecs(self, region: str) -> ECSClient:
        """ECS client for ``region``."""
        return cast("ECSClient", self._client("ecs", region))

    def dynamodb(self, region: str) -> DynamoDBClient:
        """DynamoDB client for ``region``."""
        return cast("DynamoDBClient", self._client("dynamodb", region))

    def s3(self, region: str) -> Any:
        """S3 client for ``region`` (the backup bucket)."""
        return self._client("s3", region)

    def fis(self, region: str) -> Any:
        """Fault Injection Service client for ``region`` (the chaos drill's experiment templates)."""
        return self._client("fis", region)


# ---------------------------------------------------------------- seeding


def seed_estate(clients: LabClients, seed: LabSeed) -> SeededEstate:
    """Create the whole estate; any boto3 error propagates and aborts the lab start."""
    zone_id, health_checks = seed_route53(clients.route53(), seed)
    primary_ec2 = clients.ec2(seed.primary_region)
    primary_net = seed_network(primary_ec2, PRIMARY_VPC_CIDR, "primary")
    standby_net = seed_network(clients.ec2(seed.standby_region), STANDBY_VPC_CIDR, "standby")
    seed_backup_bucket(clients.s3(BACKUP_REGION))
    return SeededEstate(
        zone_id=zone_id,
        health_checks=health_checks,
        vpn_connection_id=seed_vpn(primary_ec2, primary_net.vpc_id),
        eks=seed_eks(clients.eks(seed.primary_region), seed, primary_net.subnet_ids),
        ecs=seed_ecs(clients.ecs(seed.standby_region), seed, standby_net),
        dynamodb=seed_dynamodb(clients, seed),
        fis_templates=seed_templates(clients.fis, seed.account_id,
                                     {site.name: site.region for site in seed.sites.values() if site.region}),
    )


def seed_backup_bucket(s3: Any) -> None:
    """The backup bucket, encrypted by default (SSE-S3), as the estate's object storage bucket is."""
    s3.create_bucket(Bucket=BACKUP_BUCKET, CreateBucketConfiguration={"LocationConstraint": BACKUP_REGION})
    s3.put_bucket_encryption(Bucket=BACKUP_BUCKET, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})


def seed_route53(r53: Route53Client, seed: LabSeed) -> tuple[str, dict[str, str]]:
    """Public zone, one HTTP health check per site, and the failover A-record pair."""
    zone = r53.create_hosted_zone(Name=seed.zone, CallerReference=f"drorch-lab-{seed.zone}")
    zone_id = zone["HostedZone"]["Id"].removeprefix("/hostedzone/")
    checks = {name: _create_health_check(r53, site) for name, site in seed.sites.items()}
    changes: list[Any] = [
        {"Action": "CREATE", "ResourceRecordSet": failover_record(seed, site, checks[name])}
        for name, site in seed.sites.items()
        if site.failover is not None
    ]
    r53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Comment": "drorch lab seed", "Changes": changes}
    )
    return zone_id, checks


def failover_record(seed: LabSeed, site: SiteSeed, health_check_id: str) -> dict[str, Any]:
    """The A record for ``site`` in the failover pair (also the shape failover UPSERTs use)."""
    return {
        "Name": seed.record,
        "Type": "A",
        "TTL": seed.ttl,
        "SetIdentifier": site.name,
        "Failover": site.failover,
        "HealthCheckId": health_check_id,
        "ResourceRecords": [{"Value": site.ip}],
    }


def _create_health_check(r53: Route53Client, site: SiteSeed) -> str:
    """HTTP check on the site's /healthz, findable by CallerReference or tags."""
    created = r53.create_health_check(
        CallerReference=f"drorch-lab-{site.name}",
        HealthCheckConfig={
            "IPAddress": site.ip,
            "Port": site.app_port,
            "Type": "HTTP",
            "ResourcePath": HEALTH_PATH,
            "RequestInterval": HEALTH_INTERVAL_S,
            "FailureThreshold": HEALTH_FAILURE_THRESHOLD,
        },
    )
    check_id = created["HealthCheck"]["Id"]
    r53.change_tags_for_resource(
        ResourceType="healthcheck",
        ResourceId=check_id,
        AddTags=[{"Key": "Name", "Value": f"drorch-lab-{site.name}"}, {"Key": "drorch:site", "Value": site.name}],
    )
    return check_id


def seed_network(ec2: EC2Client, cidr: str, label: str) -> Network:
    """A VPC with a /20 subnet in each of the region's first two AZs, and an app security group.

    moto's ECS checks that awsvpc subnets and security groups exist (and fails with
    a 500 if ``securityGroups`` is omitted); EKS wants subnets in two AZs.
    """
    vpc_id = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=[_name_tag("vpc", f"drorch-lab-{label}")])["Vpc"]["VpcId"]
    zones = [az["ZoneName"] for az in ec2.describe_availability_zones()["AvailabilityZones"][:2]]
    network = ipaddress.IPv4Network(cidr)
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=str(block), AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for zone, block in zip(zones, network.subnets(new_prefix=20), strict=False)
    ]
    group_id = ec2.create_security_group(
        GroupName=f"drorch-lab-{label}-app", Description="drorch lab demo app", VpcId=vpc_id
    )["GroupId"]
    return Network(vpc_id=vpc_id, subnet_ids=subnet_ids, security_group_id=group_id)


def seed_vpn(ec2: EC2Client, vpc_id: str) -> str:
    """Customer gateway (the NHN side), VPN gateway on the primary VPC, static-route VPN."""
    cgw_id = ec2.create_customer_gateway(
        Type="ipsec.1",
        IpAddress=CUSTOMER_GATEWAY_IP,
        BgpAsn=CUSTOMER_GATEWAY_ASN,
        TagSpecifications=[_name_tag("customer-gateway", "drorch-lab-nhn")],
    )["CustomerGateway"]["CustomerGatewayId"]
    vgw_id = ec2.create_vpn_gateway(Type="ipsec.1", TagSpecifications=[_name_tag("vpn-gateway", "drorch-lab-primary")])[
        "VpnGateway"
    ]["VpnGatewayId"]
    ec2.attach_vpn_gateway(VpnGatewayId=vgw_id, VpcId=vpc_id)
    return ec2.create_vpn_connection(
        Type="ipsec.1",
        CustomerGatewayId=cgw_id,
        VpnGatewayId=vgw_id,
        Options={"StaticRoutesOnly": True},
        TagSpecifications=[_name_tag("vpn-connection", "drorch-lab-primary-nhn")],
    )["VpnConnection"]["VpnConnectionId"]


def seed_eks(eks: EKSClient, seed: LabSeed, subnets: list[str]) -> EksReady:
    """The primary's EKS cluster with the ARM app node group and the x86 Spring group."""
    role = f"arn:aws:iam::{seed.account_id}:role"
    eks.create_cluster(
        name=EKS_CLUSTER,
        version=EKS_VERSION,
        roleArn=f"{role}/drorch-lab-eks-cluster",
        resourcesVpcConfig={"subnetIds": subnets},
    )
    for group in NODE_GROUPS:
        eks.create_nodegroup(
            clusterName=EKS_CLUSTER,
            nodegroupName=group.name,
            version=EKS_VERSION,
            nodeRole=f"{role}/drorch-lab-eks-node",
            subnets=subnets,
            amiType=group.ami_type,
            instanceTypes=[group.instance_type],
            # Always pass scalingConfig: moto's default is one dict shared by every group.
            scalingConfig={
                "minSize": group.min_size,
                "maxSize": group.max_size,
                "desiredSize": group.desired_size,
            },
        )
    return {"region": seed.primary_region, "cluster": EKS_CLUSTER, "nodegroups": [g.name for g in NODE_GROUPS]}


def seed_ecs(ecs: ECSClient, seed: LabSeed, net: Network) -> EcsReady:
    """The standby's Fargate service at its warm count, already 'running' in moto.

    moto's create_service sets runningCount from MOTO_ECS_SERVICE_RUNNING (default 0)
    and leaves the rest pending forever; update_service sets runningCount to the new
    desiredCount at once. So the seed re-applies the warm count to start converged.
    """
    ecs.create_cluster(clusterName=ECS_CLUSTER)
    task_def = ecs.register_task_definition(
        family=ECS_FAMILY,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "app",
                "image": "public.ecr.aws/drorch/demo-app:lab",
                "essential": True,
                "portMappings": [{"containerPort": seed.standby.app_port, "protocol": "tcp"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=ECS_CLUSTER,
        serviceName=ECS_SERVICE,
        taskDefinition=task_def,
        desiredCount=ECS_WARM_COUNT,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": net.subnet_ids,
                "securityGroups": [net.security_group_id],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    ecs.update_service(cluster=ECS_CLUSTER, service=ECS_SERVICE, desiredCount=ECS_WARM_COUNT)
    return {
        "region": seed.standby_region,
        "cluster": ECS_CLUSTER,
        "service": ECS_SERVICE,
        "task_definition": task_def,
        "warm_count": ECS_WARM_COUNT,
    }


def seed_dynamodb(clients: LabClients, seed: LabSeed) -> DynamoReady:
    """Source tables on the primary, replicas on the standby, the RPO probe on both.

    Every table, replicas included, has a NEW_AND_OLD_IMAGES stream so that the
    replication direction can be reversed after a failover.
    """
    primary_db = clients.dynamodb(seed.primary_region)
    standby_db = clients.dynamodb(seed.standby_region)
    primary: dict[str, str] = {}
    standby: dict[str, str] = {}
    for source, (replica, hash_key) in TABLE_PAIRS.items():
        keys: tuple[KeySpec, ...] = ((hash_key, "S", "HASH"),)
        primary[source] = _create_table(primary_db, source, keys)
        standby[replica] = _create_table(standby_db, replica, keys)
    primary[RPO_PROBE_TABLE] = _create_table(primary_db, RPO_PROBE_TABLE, RPO_PROBE_KEYS)
    standby[RPO_PROBE_TABLE] = _create_table(standby_db, RPO_PROBE_TABLE, RPO_PROBE_KEYS)
    replica_of = {replica: source for source, (replica, _) in TABLE_PAIRS.items()}
    replica_of[RPO_PROBE_TABLE] = RPO_PROBE_TABLE
    return {
        "primary": {"region": seed.primary_region, "streams": primary},
        "standby": {"region": seed.standby_region, "streams": standby},
        "replica_of": replica_of,
    }


def _create_table(db: DynamoDBClient, name: str, keys: tuple[KeySpec, ...]) -> str:
    """On-demand table with a NEW_AND_OLD_IMAGES stream; returns the stream ARN."""
    table = db.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": kind} for key, kind, _ in keys],
        KeySchema=[{"AttributeName": key, "KeyType": role} for key, _, role in keys],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    return table["LatestStreamArn"]


def _name_tag(resource_type: str, name: str) -> Any:
    return {"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}
