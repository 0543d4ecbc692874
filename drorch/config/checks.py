"""Checks across the config's sections that one field's type cannot express: topology, DNS, VPN.

Each is a mistake that would otherwise load and surface later, at the worst moment:
a failover to a site with no DNS record fails after the promotion, a replication
cycle starves both standbys, a semi-sync pair of one site never acknowledges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from drorch.config.schema import Config
from drorch.config.yamlpos import FieldPath

Problem = tuple[FieldPath, str]


def problems(config: Config) -> Iterator[Problem]:
    yield from _replication(config)
    yield from _semi_sync(config)
    yield from _dns(config)
    yield from _sites(config)


def _replication(config: Config) -> Iterator[Problem]:
    """Every replica reaches the primary through its sources: no self-replication, no cycle."""
    sources = config.data.mysql.replicates_from
    primaries = [name for name, site in config.sites.items() if site.role == "primary"]
    if len(primaries) != 1:
        return  # the schema reports it
    primary = primaries[0]
    for replica, source in sources.items():
        where: FieldPath = ("data", "mysql", "replicates_from", replica)
        if replica == primary:
            yield where, (f"'{replica}' is the primary (sites.{replica}.role): the primary replicates from "
                          "nobody; remove this entry")
        elif replica == source:
            yield where, f"'{replica}' replicates from itself; name the site it copies (e.g. {primary})"
        else:
            seen = [replica]
            while source in sources and source != primary and source not in seen:
                seen.append(source)
                source = sources[source]
            if source in seen:
                yield where, (f"replication cycle {' -> '.join([*seen, source])}: no site in it receives the "
                              f"primary's writes; make one of them replicate from {primary}")


def _semi_sync(config: Config) -> Iterator[Problem]:
    """A semi-sync pair is two different sites, and a site is in one pair at most (its one partner)."""
    first_pair: dict[str, int] = {}
    for index, pair in enumerate(config.data.mysql.semi_sync):
        where: FieldPath = ("data", "mysql", "semi_sync", index)
        if not set(pair) <= set(config.sites):
            continue  # an unknown site: reported as such
        if pair[0] == pair[1]:
            yield where, f"a pair of '{pair[0]}' with itself: pair two different sites"
            continue
        for site in pair:
            if site in first_pair:
                yield where, (f"'{site}' is already in pair {first_pair[site]}: a site has one semi-sync partner; "
                              "remove one of the pairs")
            first_pair.setdefault(site, index)


def _dns(config: Config) -> Iterator[Problem]:
    """Every site has its own record (a failover moves it), with a value of the record's type."""
    dns = config.dns
    misnamed = set(dns.sites) - set(config.sites)  # reported as unknown sites: probably the missing ones
    for name in config.sites:
        if name not in dns.sites and not misnamed:
            yield ("dns", "sites"), (f"site '{name}' has no record: a failover to it could not move DNS; add "
                                     f"dns.sites.{name}: {{set_identifier: ..., value: ...}}")
    owners: dict[str, str] = {}
    for name, record in dns.sites.items():
        where: FieldPath = ("dns", "sites", name)
        other = owners.setdefault(record.set_identifier, name)
        if other != name:
            yield (*where, "set_identifier"), (f"'{record.set_identifier}' is also {other}'s: each site's record "
                                               "needs its own set identifier")
        problem = _value_problem(dns.type, record.value)
        if problem is not None:
            yield (*where, "value"), problem


def _value_problem(kind: str, value: str) -> str | None:
    if kind == "CNAME":
        return None if value and " " not in value else f"'{value}' is not a host name"
    wanted = 4 if kind == "A" else 6
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return f"'{value}' is not an IPv{wanted} address, as an {kind} record needs"
    if address.version != wanted:
        return f"'{value}' is IPv{address.version}: an {kind} record holds IPv{wanted}"
    return None


def _sites(config: Config) -> Iterator[Problem]:
    """DynamoDB lives in AWS regions; an AWS VPN connection is read in the account of an AWS site."""
    for name, site in config.sites.items():
        if site.dynamodb is not None and site.provider.kind != "aws":
            yield ("sites", name, "dynamodb"), (f"site '{name}' is not on AWS: DynamoDB tables live in AWS regions; "
                                                "remove this block")
        if site.vpn is not None and site.vpn.aws_connection_id is not None and site.vpn.aws_site is None:
            aws = ", ".join(sorted(n for n, s in config.sites.items() if s.provider.kind == "aws")) or "none"
            yield ("sites", name, "vpn", "aws_site"), (f"aws_connection_id needs aws_site, the AWS site whose region "
                                                       f"holds the connection (one of: {aws})")
