"""Find, parse and validate ``drorch.yaml``, with errors an operator can act on.

Each problem is reported on its own line as ``file:line: field.path: message (hint)``
and the whole load fails with exit code 2 before anything else runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from drorch.config import checks
from drorch.config.base import SecretRef
from drorch.config.clouds import defined_clouds
from drorch.config.schema import Config, OpenStackProvider
from drorch.config.yamlpos import FieldPath, describe_error, format_location, load_mapping_file
from drorch.errors import InvalidInput

ENV_VAR = "DRORCH_CONFIG"

def find_config_path(explicit: Path | None) -> Path:
    """``--config``, then ``$DRORCH_CONFIG``, then ``./drorch.yaml``."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env)
    return Path("drorch.yaml")


_UNION_TAGS = {"provider": {"aws", "openstack"}, "compute": {"eks", "ecs", "openstack"}}


def _is_union_tag(loc: tuple[Any, ...], index: int) -> bool:
    """Whether ``loc[index]`` is a discriminator pydantic inserted under ``sites.NAME.provider|compute``."""
    return (
        index == 3
        and loc[0] == "sites"
        and loc[2] in _UNION_TAGS
        and loc[index] in _UNION_TAGS[loc[2]]
    )


def _clean_loc(loc: tuple[Any, ...]) -> FieldPath:
    """Drop pydantic's discriminator tags (``sites.x.provider.aws.region`` -> ``sites.x.provider.region``)."""
    return tuple(part for index, part in enumerate(loc) if not _is_union_tag(loc, index))


def _reference_problems(config: Config) -> Iterator[tuple[FieldPath, str]]:
    sites = set(config.sites)
    known = ", ".join(sorted(sites))
    primaries = [name for name, site in config.sites.items() if site.role == "primary"]
    if len(primaries) != 1:
        yield ("sites",), f"exactly one site must have role 'primary', found {len(primaries)}"
    for name in config.dns.sites:
        if name not in sites:
            yield ("dns", "sites", name), f"unknown site '{name}' (known: {known})"
    for replica, source in config.data.mysql.replicates_from.items():
        if replica not in sites:
            yield ("data", "mysql", "replicates_from", replica), f"unknown site '{replica}' (known: {known})"
        if source not in sites:
            yield ("data", "mysql", "replicates_from", replica), f"unknown site '{source}' (known: {known})"
    for name, site in config.sites.items():
        if site.vpn is not None and site.vpn.aws_site is not None:
            target = config.sites.get(site.vpn.aws_site)
            if target is None:
                yield ("sites", name, "vpn", "aws_site"), f"unknown site '{site.vpn.aws_site}' (known: {known})"
            elif target.provider.kind != "aws":
                yield ("sites", name, "vpn", "aws_site"), f"site '{site.vpn.aws_site}' is not on AWS"
    for index, name in enumerate(config.automation.candidates):
        if name not in sites:
            yield ("automation", "candidates", index), f"unknown site '{name}' (known: {known})"
    names = [drill.name for drill in config.drills]
    for index, drill in enumerate(config.drills):
        if drill.to not in sites:
            yield ("drills", index, "to"), f"unknown site '{drill.to}' (known: {known})"
        elif drill.to in primaries:
            yield ("drills", index, "to"), f"'{drill.to}' is the home primary: a drill goes to a standby and back"
        if names.count(drill.name) > 1:
            yield ("drills", index, "name"), f"drill name '{drill.name}' is used twice"
    for index, pair in enumerate(config.data.mysql.semi_sync):
        for name in pair:
            if name not in sites:
                yield ("data", "mysql", "semi_sync", index), f"unknown site '{name}' (known: {known})"
    yield from _dynamodb_problems(config)
    yield from _backup_problems(config)
    yield from _chaos_problems(config)
    yield from _scratch_problems(config)
    yield from checks.problems(config)


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def bucket_problem(name: str) -> str | None:
    """What is wrong with an S3 bucket name (the rules AWS and S3-compatible stores share), or None."""
    if not _BUCKET.match(name):
        return (f"bucket name '{name}' is not valid: 3-63 characters, lowercase letters, digits, dots and hyphens, "
                "starting and ending with a letter or digit")
    if ".." in name or ".-" in name or "-." in name:
        return f"bucket name '{name}' is not valid: no two dots, or a dot beside a hyphen"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return f"bucket name '{name}' is not valid: it looks like an IP address"
    return None


def _backup_problems(config: Config) -> Iterator[tuple[FieldPath, str]]:
    """The backup source is a site, the bucket name is valid, and the store is reached over TLS."""
    backups = config.backups
    if backups is None:
        return
    if backups.source is not None and backups.source not in config.sites:
        yield ("backups", "source"), f"unknown site '{backups.source}' (known: {', '.join(sorted(config.sites))})"
    problem = bucket_problem(backups.store.bucket)
    if problem is not None:
        yield ("backups", "store", "bucket"), problem
    endpoint = backups.store.provider.endpoint_url
    if endpoint is not None:
        parsed = urlsplit(endpoint)
        loopback = (parsed.hostname or "") in ("localhost", "::1") or (parsed.hostname or "").startswith("127.")
        if parsed.scheme not in ("https", "http") or not parsed.hostname:
            yield ("backups", "store", "provider", "endpoint_url"), f"'{endpoint}' is not an http(s) URL"
        elif parsed.scheme == "http" and not loopback:
            yield (("backups", "store", "provider", "endpoint_url"),
                   f"'{endpoint}' is plain HTTP: backups travel to the store over TLS (use https://)")
    if backups.store.server_side_encryption == "aws:kms" and not backups.store.kms_key_id:
        yield ("backups", "store", "kms_key_id"), "server_side_encryption aws:kms needs kms_key_id"


def _chaos_problems(config: Config) -> Iterator[tuple[FieldPath, str]]:
    """An FIS experiment runs in an AWS site's account and region."""
    fis = config.chaos.fault.fis if config.chaos is not None else None
    if fis is None:
        return
    known = ", ".join(sorted(config.sites))
    name = fis.site or config.primary_site
    where: FieldPath = ("chaos", "fault", "fis", "site")
    if name not in config.sites:
        yield where, f"unknown site '{name}' (known: {known})"
    elif config.sites[name].provider.kind != "aws":
        aws = ", ".join(sorted(n for n, s in config.sites.items() if s.provider.kind == "aws")) or "none"
        yield where, (f"site '{name}' is not on AWS: FIS runs in an AWS account and region "
                      f"(set site to one of: {aws})")


def _scratch_problems(config: Config) -> Iterator[tuple[FieldPath, str]]:
    """A scratch server is a standby's, and never one of the estate's own databases."""
    if config.isolated is None:
        return
    known = ", ".join(sorted(config.sites))
    databases = {(site.mysql.host, site.mysql.port): name for name, site in config.sites.items()}
    for name, scratch in config.isolated.scratch.items():
        if name not in config.sites:
            yield ("isolated", "scratch", name), f"unknown site '{name}' (known: {known})"
        elif name == config.primary_site:
            yield ("isolated", "scratch", name), f"'{name}' is the home primary: isolated drills rehearse a standby"
        same = databases.get((scratch.mysql.host, scratch.mysql.port))
        if same is not None:
            yield (("isolated", "scratch", name, "mysql"),
                   f"{scratch.mysql.host}:{scratch.mysql.port} is {same}'s database: the drill overwrites its "
                   "scratch server, so point it at a throw-away server")


def _dynamodb_problems(config: Config) -> Iterator[tuple[FieldPath, str]]:
    """Every replicated table names AWS sites that list it, once."""
    names = [table.name for table in config.data.dynamodb.tables]
    for index, table in enumerate(config.data.dynamodb.tables):
        if names.count(table.name) > 1:
            yield ("data", "dynamodb", "tables", index, "name"), f"table name '{table.name}' is used twice"
        for site, physical in table.sites.items():
            where = ("data", "dynamodb", "tables", index, "sites", site)
            found = config.sites.get(site)
            if found is None:
                yield where, f"unknown site '{site}' (known: {', '.join(sorted(config.sites))})"
            elif found.provider.kind != "aws":
                yield where, f"site '{site}' is not on AWS: DynamoDB tables live in AWS regions"
            elif found.dynamodb is None or physical not in (*found.dynamodb.tables, found.dynamodb.probe_table):
                yield where, (f"table '{physical}' is not in sites.{site}.dynamodb.tables (or its probe_table): "
                              "add it there so that drorch probes it")


def _secret_problems(config: Config) -> Iterator[tuple[FieldPath, str]]:
    refs: list[tuple[FieldPath, SecretRef]] = [
        (("sites", name, "mysql", "password"), site.mysql.password) for name, site in config.sites.items()
    ]
    refs.append((("data", "mysql", "replication_password"), config.data.mysql.replication_password))
    if config.data.mysql.admin_password is not None:
        refs.append((("data", "mysql", "admin_password"), config.data.mysql.admin_password))
    if config.isolated is not None:
        refs += [(("isolated", "scratch", name, "mysql", "password"), scratch.mysql.password)
                 for name, scratch in config.isolated.scratch.items()]
    for path, ref in refs:
        if ref.file is not None:
            file = config.resolve_path(ref.file)
            if not os.access(file, os.R_OK):
                yield (*path, "file"), f"secret file {file} is missing or unreadable (create it, mode 0600)"
        elif ref.env is not None and ref.env not in os.environ:
            yield (*path, "env"), f"variable {ref.env} is not set (export it before running drorch)"


def _cloud_problems(config: Config) -> Iterator[tuple[FieldPath, str]]:
    """Each OpenStack site's ``clouds.yaml`` exists and defines its cloud (the file's default: beside the config)."""
    for name, site in config.sites.items():
        provider = site.provider
        if not isinstance(provider, OpenStackProvider):
            continue
        clouds_file = config.resolve_path(provider.clouds_file or Path("clouds.yaml"))
        field = f"sites.{name}.provider"
        try:
            defined = defined_clouds(clouds_file, field)
        except InvalidInput as exc:
            yield ("sites", name, "provider", "clouds_file"), str(exc).removeprefix(f"{field}.clouds_file: ")
            continue
        if provider.cloud not in defined:
            yield (("sites", name, "provider", "cloud"),
                   f"no cloud '{provider.cloud}' in {clouds_file} (it defines {', '.join(defined) or 'none'})")


def load_config(path: Path) -> Config:
    """Load and validate a config file; raise InvalidInput listing every problem."""
    data, lines = load_mapping_file(path, "config", f"pass --config FILE or set ${ENV_VAR}",
                                    "service, sites, dns, data...")
    try:
        config = Config.model_validate({**data, "source_path": path.resolve()})
    except ValidationError as exc:
        problems = [
            f"{format_location(path, _clean_loc(tuple(err['loc'])), lines)}: {describe_error(err)}"
            for err in exc.errors()
        ]
        raise InvalidInput(f"{path}: {len(problems)} problem(s) in the config:", problems) from None
    problems = [
        f"{format_location(path, loc, lines)}: {message}"
        for loc, message in (*_reference_problems(config), *_secret_problems(config), *_cloud_problems(config))
    ]
    if problems:
        raise InvalidInput(f"{path}: {len(problems)} problem(s) in the config:", problems)
    return config
