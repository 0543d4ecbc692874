"""boto3 clients built from a provider config.

Endpoints can be overridden per service (moto in the lab, VPC endpoints in real
estates) and botocore's own retries are turned off: every call goes through
drorch's single retry policy instead, so retries never multiply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.config import Config as BotoConfig

from drorch.config.schema import AwsProvider

_CLIENT_CONFIG = BotoConfig(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1, "mode": "standard"})


def client(provider: AwsProvider, service: str, config_dir: Path | None = None) -> Any:
    """A boto3 client for ``service`` in the provider's region and endpoint.

    A relative ``credentials_file`` is resolved against ``config_dir`` (the config file's folder).
    """
    import boto3
    import botocore.session

    core = botocore.session.Session(profile=provider.profile)
    if provider.credentials_file is not None:
        path = provider.credentials_file
        if config_dir is not None and not path.is_absolute():
            path = config_dir / path
        core.set_config_variable("credentials_file", str(path))
    session = boto3.Session(botocore_session=core, region_name=provider.region)
    endpoint = provider.endpoints.get(service, provider.endpoint_url)
    make: Any = session.client
    return make(service, endpoint_url=endpoint, config=_CLIENT_CONFIG)
