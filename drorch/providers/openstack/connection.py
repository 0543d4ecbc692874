"""Authenticated openstacksdk connections built from a site's ``clouds.yaml`` entry.

Only the clouds file the config names is read (plus a ``secure.yaml`` beside it,
openstacksdk's usual place for passwords); ``OS_*`` variables, ``~/.config/openstack``
and ``/etc/openstack`` are ignored, so every controller that has the same config
talks to the same cloud as the same user. The connection authenticates at once:
a wrong password should stop a failover before its first step, not halfway.

openstacksdk's and keystoneauth's own retries are off (``connect_retries=0``);
calls go through drorch's single retry policy instead, so retries never multiply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keystoneauth1.exceptions as ks_exceptions
import openstack.config
import openstack.connection
import openstack.exceptions
from openstack.config.cloud_region import CloudRegion

from drorch.config.clouds import defined_clouds
from drorch.config.schema import Config, OpenStackProvider
from drorch.errors import InvalidInput, OperationFailed
from drorch.providers import retry

# Bound on every HTTP request (auth included); clouds.yaml's own api_timeout wins.
API_TIMEOUT_SECONDS = 10.0
DEFAULT_CLOUDS_FILE = Path("clouds.yaml")
_SECRET_KEYS = ("password", "secret", "token")


def connect(config: Config, site: str) -> openstack.connection.Connection:
    """An authenticated connection to ``site``'s cloud and region.

    ``clouds_file`` is relative to the config file; when it is not set, drorch
    reads ``clouds.yaml`` beside the config file.
    """
    provider = config.site(site).provider
    if not isinstance(provider, OpenStackProvider):
        raise InvalidInput(f"sites.{site}.provider: site '{site}' is on {provider.kind}, not OpenStack")
    clouds_file = config.resolve_path(provider.clouds_file or DEFAULT_CLOUDS_FILE)
    return open_cloud(clouds_file, provider.cloud, provider.region, field=f"sites.{site}.provider")


def open_cloud(
    clouds_file: Path, cloud: str, region: str, *, field: str = "provider"
) -> openstack.connection.Connection:
    """Connect to ``cloud`` in ``region`` as described in ``clouds_file``; ``field`` names the config entry in errors.

    Raises InvalidInput for a missing or malformed file, an unknown cloud or region,
    and OperationFailed when the cloud refuses the credentials or cannot be reached.
    """
    cloud_region = _cloud_region(clouds_file, cloud, region, field)
    conn = openstack.connection.Connection(config=cloud_region)
    try:
        retry.call(conn.session.get_token)
    except ks_exceptions.Unauthorized:
        conn.close()
        raise OperationFailed(
            f"OpenStack authentication failed for cloud {cloud} (check the username/password/project in {clouds_file})"
        ) from None
    except ks_exceptions.ClientException as exc:
        conn.close()
        auth_url = cloud_region.config.get("auth", {}).get("auth_url", "?")
        message = _redact(f"{type(exc).__name__}: {exc}", cloud_region.config)
        raise OperationFailed(f"OpenStack cloud {cloud}: cannot authenticate at {auth_url}: {message}") from None
    return conn


def _cloud_region(clouds_file: Path, cloud: str, region: str, field: str) -> CloudRegion:
    """Load and validate the clouds.yaml entry; every problem is the config's, so InvalidInput."""
    defined = defined_clouds(clouds_file, field)
    if cloud not in defined:
        raise InvalidInput(
            f"{field}.cloud: no cloud '{cloud}' in {clouds_file}; it defines {', '.join(defined) or 'none'}"
        )
    try:
        loader = openstack.config.OpenStackConfig(
            config_files=[str(clouds_file)],
            secure_files=[str(clouds_file.with_name("secure.yaml"))],
            vendor_files=[],
            load_envvars=False,
            override_defaults={"api_timeout": API_TIMEOUT_SECONDS},
        )
    except openstack.exceptions.ConfigException as exc:
        raise InvalidInput(f"{field}.clouds_file: {clouds_file}: {exc}") from None
    try:
        return loader.get_one(cloud=cloud, region_name=region, connect_retries=0)
    except openstack.exceptions.ConfigException as exc:  # mostly: region not among the cloud's regions
        raise InvalidInput(f"{field}.region: cloud '{cloud}' in {clouds_file}: {exc}") from None
    except ks_exceptions.ClientException as exc:  # missing auth options, unknown auth_type
        raise InvalidInput(
            f"{field}.cloud: cloud '{cloud}' in {clouds_file} is incomplete: {_redact(str(exc), loader.cloud_config)}"
        ) from None


def _redact(text: str, document: Any) -> str:
    """Blank out every secret-looking value of a clouds document that an error message might quote."""
    if isinstance(document, dict):
        for key, value in document.items():
            if isinstance(value, str) and value and any(word in str(key) for word in _SECRET_KEYS):
                text = text.replace(value, "***")
            else:
                text = _redact(text, value)
    return text
