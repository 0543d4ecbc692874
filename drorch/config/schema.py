"""The schema of ``drorch.yaml`` (see ``base`` for why every model is strict and frozen)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from drorch.config.base import Model, MySQLEndpoint, PositiveSeconds, SecretRef, check_cron, check_http_url
from drorch.config.drill_schema import Chaos, DrillSchedule, GroundTruth, Isolated


class Objectives(Model):
    rto_seconds: PositiveSeconds = 120.0
    rpo_seconds: PositiveSeconds = 2.0


class AwsProvider(Model):
    kind: Literal["aws"]
    region: str
    profile: str | None = None
    credentials_file: Path | None = Field(
        default=None, description="AWS shared credentials file (like AWS_SHARED_CREDENTIALS_FILE)"
    )
    endpoint_url: str | None = Field(default=None, description="one endpoint for every service (moto)")
    endpoints: dict[str, str] = Field(default_factory=dict, description="per-service endpoint overrides")


class OpenStackProvider(Model):
    kind: Literal["openstack"]
    cloud: str = Field(description="entry name in clouds.yaml")
    clouds_file: Path | None = None
    region: str = "KR1"


Provider = Annotated[AwsProvider | OpenStackProvider, Field(discriminator="kind")]


class EksCompute(Model):
    kind: Literal["eks"]
    cluster: str
    nodegroups: dict[str, int] = Field(description="node group name -> active desired size")


class EcsCompute(Model):
    kind: Literal["ecs"]
    cluster: str
    service: str
    warm_count: int = Field(ge=0)
    active_count: int = Field(gt=0)

    @model_validator(mode="after")
    def _active_not_below_warm(self) -> EcsCompute:
        if self.active_count < self.warm_count:
            raise ValueError("active_count must be >= warm_count")
        return self


class OpenStackCompute(Model):
    kind: Literal["openstack"]
    servers: list[str]
    load_balancer: str | None = None
    nks_cluster: str | None = None
    nks_nodegroup: str | None = None
    nks_active_count: int | None = Field(default=None, gt=0)


Compute = Annotated[EksCompute | EcsCompute | OpenStackCompute, Field(discriminator="kind")]


class App(Model):
    url: str = Field(description="base URL of the site's application endpoint")
    health_path: str = "/healthz"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value)


class DynamoDBSite(Model):
    tables: list[str] = Field(default_factory=list, description="tables this site serves")
    probe_table: str | None = Field(default=None, description="table for drorch's RPO probe items")


class Vpn(Model):
    """The VPN a site's data path depends on: the AWS side and/or the strongSwan side."""

    aws_site: str | None = Field(default=None, description="AWS site whose account holds the VPN connection")
    aws_connection_id: str | None = None
    vici_socket: Path | None = None
    ike_sa: str | None = None
    tunnels: list[str] = Field(default_factory=list, description="CHILD_SA names (one per tunnel)")


class Site(Model):
    role: Literal["primary", "standby"]
    provider: Provider
    app: App
    mysql: MySQLEndpoint
    compute: Compute | None = None
    dynamodb: DynamoDBSite | None = None
    vpn: Vpn | None = None


class DnsSiteRecord(Model):
    set_identifier: str
    value: str
    health_check_id: str | None = None


class Dns(Model):
    provider: AwsProvider
    zone_id: str
    record: str = Field(min_length=1, description="the service name, e.g. app.example.com.")
    type: Literal["A", "AAAA", "CNAME"] = "A"
    ttl: int = Field(default=60, gt=0)
    sites: dict[str, DnsSiteRecord]
    verify_via: Literal["system", "lab-resolver"] = "system"
    app_port: int | None = Field(default=None, description="port clients use after resolving the record")


class MySQLTopology(Model):
    replicates_from: dict[str, str] = Field(description="replica site -> source site")
    semi_sync: list[tuple[str, str]] = Field(
        default_factory=list, description="site pairs kept in semi-sync: whichever is primary, the other acks"
    )
    replication_user: str = "repl"
    replication_password: SecretRef
    admin_user: str | None = Field(default=None, description=(
        "account for `replication setup` (creating the replication user) and `--rebuild` (dump and restore "
        "need wide privileges); default: each site's own mysql account"))
    admin_password: SecretRef | None = None

    @model_validator(mode="after")
    def _admin_pair(self) -> MySQLTopology:
        if (self.admin_user is None) != (self.admin_password is None):
            raise ValueError("give both admin_user and admin_password, or neither")
        return self


class Heartbeat(Model):
    """pt-heartbeat's idea at finer grain: a row written on the primary, read on every replica."""

    table: str = Field(default="drorch.heartbeat", pattern=r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
    interval_seconds: float = Field(default=0.25, ge=0.01, le=60)


class DynamoDBTable(Model):
    """One logical table, the physical table that holds it at each site, and who replicates it.

    ``global-table``: AWS replicates; drorch only watches. ``stream``: drorch's own
    replicator carries changes from the table's DynamoDB Stream; ``follow-primary``
    carries them from the primary site's copy to the others and turns round at
    failover, ``both`` carries every site's own writes everywhere (for tables whose
    items each site owns, such as the RPO probe table).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")
    mode: Literal["global-table", "stream"] = "stream"
    direction: Literal["follow-primary", "both"] = "follow-primary"
    sites: dict[str, str] = Field(description="site -> physical table name there")

    @model_validator(mode="after")
    def _two_sites(self) -> DynamoDBTable:
        if len(self.sites) < 2:
            raise ValueError("a replicated table needs at least two sites")
        return self


class DynamoDBData(Model):
    tables: list[DynamoDBTable] = Field(default_factory=list)
    probe_interval_seconds: float = Field(default=1.0, ge=0.1, le=60,
                                          description="how often serve writes an RPO probe item in every region")


class Data(Model):
    mysql: MySQLTopology
    heartbeat: Heartbeat = Heartbeat()
    dynamodb: DynamoDBData = DynamoDBData()


class Detection(Model):
    interval_seconds: float = Field(default=1.0, gt=0, le=300)
    failure_threshold: int = Field(default=3, ge=1, le=100)
    probe_timeout_seconds: float = Field(default=0.8, gt=0, le=60)
    probe_attempts: int = Field(default=4, ge=1, le=10, description="tries per probe within one round")


class Automation(Model):
    """Automatic failover by ``drorch serve`` when detection declares the primary's database dead."""

    auto_failover: bool = False
    block_seconds: float = Field(default=3600.0, ge=0, description="no second automatic failover within this time")
    candidates: list[str] = Field(default_factory=list, description="preferred targets, in order")


class Metrics(Model):
    listen: str = Field(default="127.0.0.1:9464", pattern=r"^[^:\s]+:\d{1,5}$", description="host:port")

    @field_validator("listen")
    @classmethod
    def _port(cls, value: str) -> str:
        if int(value.rsplit(":", 1)[1]) > 65535:
            raise ValueError(f"port {value.rsplit(':', 1)[1]} is above 65535; choose a free port, e.g. 9464")
        return value


class LeaseTable(Model):
    """Where the DynamoDB lease lives: every controller must name the same region."""

    provider: AwsProvider
    table: str = Field(default="drorch-lease", pattern=r"^[A-Za-z0-9_.-]{3,255}$")


class Lease(Model):
    """The controller lease: only its holder runs a mutating playbook or fails over automatically."""

    backend: Literal["sqlite", "etcd", "dynamodb"] = Field(default="sqlite", description=(
        "sqlite: controllers on one host (the state file); etcd or dynamodb: controllers on several hosts"))
    ttl_seconds: float = Field(default=15.0, ge=2, le=600, description="a holder that stops renewing loses it after")
    etcd_endpoints: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:2379"],
                                      description="etcd v3 JSON gateway URLs, tried in order")
    key: str = Field(default="", description=(
        "etcd key, or DynamoDB item name, of the lease (default: /drorch/SERVICE/leader)"))
    dynamodb: LeaseTable | None = Field(default=None, description="the lease table, for backend: dynamodb")

    @field_validator("etcd_endpoints")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for endpoint in value:
            check_http_url(endpoint)
        return value

    @model_validator(mode="after")
    def _table_for_dynamodb(self) -> Lease:
        if self.backend == "etcd" and not self.etcd_endpoints:
            raise ValueError("backend 'etcd' needs etcd_endpoints: [http://HOST:2379, ...]")
        if self.backend == "dynamodb" and self.dynamodb is None:
            raise ValueError("backend 'dynamodb' needs 'dynamodb: {provider: {kind: aws, region: ...}, table: ...}'")
        return self


class State(Model):
    backend: Literal["sqlite"] = "sqlite"
    path: Path = Path("state/drorch.db")
    lease: Lease = Lease()


class BackupStore(Model):
    """An S3 bucket (AWS, or any S3-compatible store such as NHN Object Storage through ``endpoint_url``)."""

    provider: AwsProvider
    bucket: str = Field(description="bucket name (3-63 characters: lowercase letters, digits, dots, hyphens)")
    prefix: str = Field(default="", description="key prefix inside the bucket, e.g. 'drorch/'")
    server_side_encryption: Literal["AES256", "aws:kms", "none"] = Field(
        default="AES256", description="asked for on every object written (the bucket's default should say so too)")
    kms_key_id: str | None = Field(default=None, description="for aws:kms: the key id or ARN")
    addressing_style: Literal["path", "virtual"] = Field(
        default="path", description="path: bucket in the URL path (S3-compatible stores, moto); virtual: in the host")


class BackupRetention(Model):
    """How many base backups to keep: the newest of each of the last N days and M ISO weeks that have one."""

    daily: int = Field(default=7, ge=1, le=3650)
    weekly: int = Field(default=4, ge=0, le=520)


class BackupSchedules(Model):
    """Cron schedules (five fields, UTC) for ``drorch serve``; leave one out to run it by hand only."""

    base: str | None = Field(default=None, description="base backups, e.g. '0 2 * * *'")
    verify: str | None = Field(default=None, description="verification of the newest backup, e.g. '30 3 * * *'")

    @field_validator("base", "verify")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)


class BinlogShipping(Model):
    interval_seconds: float = Field(default=1.0, ge=0.1, le=300,
                                    description="how often newly written binlog events are uploaded")
    server_id: int = Field(default=4242, ge=1, le=4294967295, description=(
        "server id the binlog reader registers with on the primary (unique among its replicas)"))


class Backups(Model):
    """Base backups, binlog shipping and point-in-time restore to an object store."""

    store: BackupStore
    source: str | None = Field(default=None, description=(
        "site whose database base backups are taken from (default: a replica, so the primary feels nothing)"))
    compression_level: int = Field(default=3, ge=1, le=9, description="gzip level")
    retention: BackupRetention = BackupRetention()
    schedules: BackupSchedules = BackupSchedules()
    binlogs: BinlogShipping = BinlogShipping()


class Config(Model):
    service: str
    objectives: Objectives = Objectives()
    sites: dict[str, Site]
    dns: Dns
    data: Data
    state: State = State()
    detection: Detection = Detection()
    automation: Automation = Automation()
    metrics: Metrics = Metrics()
    drills: list[DrillSchedule] = Field(default_factory=list, description="drills serve runs on a schedule")
    ground_truth: GroundTruth | None = Field(default=None, description=(
        "the estate's own client for drills (the lab's client when absent and the config is the lab's)"))
    chaos: Chaos | None = Field(default=None, description=(
        "the fault a chaos drill injects (the lab's `lab chaos` when absent and the config is the lab's)"))
    isolated: Isolated | None = Field(default=None, description=(
        "scratch servers for isolated drills (the lab starts its own when absent and the config is the lab's)"))
    backups: Backups | None = Field(default=None, description="base backups, binlog shipping, point-in-time restore")
    playbooks: Path | None = Field(default=None, description=(
        "directory of playbooks for failover/failback/plan; default: playbooks/ next to this file, "
        "else the ones shipped with drorch"))
    source_path: Path | None = Field(default=None, exclude=True)

    @property
    def primary_site(self) -> str:
        """The site the config declares as home primary."""
        return next(name for name, site in self.sites.items() if site.role == "primary")

    def site(self, name: str) -> Site:
        try:
            return self.sites[name]
        except KeyError:
            from drorch.errors import InvalidInput

            raise InvalidInput(
                f"unknown site '{name}': the config defines {', '.join(sorted(self.sites))}"
            ) from None

    def resolve_path(self, path: Path) -> Path:
        """Paths in the config are relative to the config file's directory."""
        if path.is_absolute() or self.source_path is None:
            return path
        return self.source_path.parent / path
