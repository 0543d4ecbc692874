"""Clients for every part of an estate, built lazily from one config.

Actions and probes ask the estate for "seoul's database" or "Route 53" instead
of building clients themselves, so credentials and endpoints are resolved in one
place and tests can point the same code at the lab.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from drorch.config.base import MySQLEndpoint
from drorch.config.schema import AwsProvider, Config
from drorch.config.secrets import read_secret
from drorch.errors import InvalidInput
from drorch.providers.aws import session
from drorch.providers.mysql.client import MySQLClient, ServerAddress


def mysql_client(config: Config, name: str, endpoint: MySQLEndpoint, password_field: str) -> MySQLClient:
    """A client for a configured server; ``password_field`` names its secret in errors."""
    password = read_secret(config, endpoint.password, password_field)
    return MySQLClient(ServerAddress(name, endpoint.host, endpoint.port, endpoint.user, password, endpoint.flavor,
                                     endpoint.connect_timeout_seconds, endpoint.tls))


class Estate:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._mysql: dict[str, MySQLClient] = {}
        self._aws: dict[tuple[str, str], Any] = {}
        self._openstack: dict[str, Any] = {}

    @property
    def _config_dir(self) -> Any:
        return self.config.source_path.parent if self.config.source_path else None

    def mysql(self, site: str) -> MySQLClient:
        """The site's database client (built once: the heartbeat asks for it four times a second)."""
        if site not in self._mysql:
            self._mysql[site] = mysql_client(self.config, site, self.config.site(site).mysql,
                                             f"sites.{site}.mysql.password")
        return self._mysql[site]

    def replication_password(self) -> str:
        topology = self.config.data.mysql
        return read_secret(self.config, topology.replication_password, "data.mysql.replication_password")

    @cached_property
    def route53(self) -> Any:
        return session.client(self.config.dns.provider, "route53", self._config_dir)

    def aws(self, site: str, service: str) -> Any:
        """A boto3 client for the site's region (cached: building one costs tens of milliseconds)."""
        key = (site, service)
        if key not in self._aws:
            provider = self.config.site(site).provider
            if not isinstance(provider, AwsProvider):
                raise InvalidInput(f"sites.{site}.provider: site '{site}' is not on AWS, so it has no {service}")
            self._aws[key] = session.client(provider, service, self._config_dir)
        return self._aws[key]

    def openstack(self, site: str) -> Any:
        """The site's openstacksdk connection (one login, reused; closed by ``close``)."""
        if site not in self._openstack:
            from drorch.providers.openstack.connection import connect

            self._openstack[site] = connect(self.config, site)
        return self._openstack[site]

    def close(self) -> None:
        for connection in self._openstack.values():
            connection.close()
        self._openstack.clear()
