"""boto3 clients built from a provider config.

Endpoints can be overridden per service (moto in the lab, VPC endpoints in real
estates) and botocore's own retries are turned off: every call goes through
drorch's single retry policy instead, so retries never multiply.

One botocore session is kept per credential source: it caches the service
models, which otherwise cost hundreds of milliseconds per client. Sessions are
not thread-safe, so clients are created under a lock (clients themselves are).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from botocore.config import Config as BotoConfig

from drorch.config.schema import AwsProvider

_CLIENT_CONFIG = BotoConfig(connect_timeout=3, read_timeout=10, retries={"total_max_attempts": 1, "mode": "standard"})
_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str | None, str | None], Any] = {}


def _session(profile: str | None, credentials_file: str | None) -> Any:
    import botocore.session

    key = (profile, credentials_file)
    if key not in _SESSIONS:
        core = botocore.session.Session(profile=profile)
        if credentials_file is not None:
            core.set_config_variable("credentials_file", credentials_file)
        _SESSIONS[key] = core
    return _SESSIONS[key]


def client(provider: AwsProvider, service: str, config_dir: Path | None = None) -> Any:
    """A boto3 client for ``service`` in the provider's region and endpoint.

    A relative ``credentials_file`` is resolved against ``config_dir`` (the config file's folder).
    """
    import boto3

    credentials = None
    if provider.credentials_file is not None:
        path = provider.credentials_file
        if config_dir is not None and not path.is_absolute():
            path = config_dir / path
        credentials = str(path)
    endpoint = provider.endpoints.get(service, provider.endpoint_url)
    with _LOCK:
        session = boto3.Session(botocore_session=_session(provider.profile, credentials), region_name=provider.region)
        make: Any = session.client
        return make(service, region_name=provider.region, endpoint_url=endpoint, config=_CLIENT_CONFIG)
