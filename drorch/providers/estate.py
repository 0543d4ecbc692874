"""Clients for every part of an estate, built lazily from one config.

Actions and probes ask the estate for "seoul's database" or "Route 53" instead
of building clients themselves, so credentials and endpoints are resolved in one
place and tests can point the same code at the lab.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from drorch.config.schema import AwsProvider, Config
from drorch.config.secrets import read_secret
from drorch.errors import InvalidInput
from drorch.providers.aws import session
from drorch.providers.mysql.client import MySQLClient, ServerAddress


class Estate:
    def __init__(self, config: Config) -> None:
        self.config = config

    @property
    def _config_dir(self) -> Any:
        return self.config.source_path.parent if self.config.source_path else None

    def mysql(self, site: str) -> MySQLClient:
        endpoint = self.config.site(site).mysql
        password = read_secret(self.config, endpoint.password, f"sites.{site}.mysql.password")
        return MySQLClient(
            ServerAddress(site, endpoint.host, endpoint.port, endpoint.user, password, endpoint.flavor,
                          endpoint.connect_timeout_seconds, endpoint.tls)
        )

    def replication_password(self) -> str:
        topology = self.config.data.mysql
        return read_secret(self.config, topology.replication_password, "data.mysql.replication_password")

    @cached_property
    def route53(self) -> Any:
        return session.client(self.config.dns.provider, "route53", self._config_dir)

    def aws(self, site: str, service: str) -> Any:
        provider = self.config.site(site).provider
        if not isinstance(provider, AwsProvider):
            raise InvalidInput(f"sites.{site}.provider: site '{site}' is not on AWS, so it has no {service}")
        return session.client(provider, service, self._config_dir)
