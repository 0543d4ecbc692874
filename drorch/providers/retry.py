"""The one retry policy every cloud and database call goes through.

Transient failures (throttling, dropped connections, timeouts) are retried with
exponential backoff and jitter inside a deadline; everything else fails at once
so a wrong credential or a bad request is reported instead of hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import tenacity

T = TypeVar("T")

_TRANSIENT_AWS_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
}
_TRANSIENT_MYSQL_ERRNOS = {2003, 2006, 2013, 1205, 1213}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: throttling, timeouts, dropped connections."""
    import botocore.exceptions
    import pymysql
    import requests

    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _TRANSIENT_AWS_CODES or status >= 500 or status == 429
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectionClosedError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectTimeoutError,
    ):
        return True
    if isinstance(exc, pymysql.err.OperationalError):
        return bool(exc.args) and exc.args[0] in _TRANSIENT_MYSQL_ERRNOS
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    return _openstack_transient(exc) or isinstance(exc, TimeoutError | ConnectionError)


def _openstack_transient(exc: BaseException) -> bool:
    import keystoneauth1.exceptions as keystone
    import openstack.exceptions as sdk

    if isinstance(exc, keystone.RetriableConnectionFailure):
        return True
    if isinstance(exc, keystone.HttpError):
        status = exc.http_status or 0
        return status >= 500 or status == 429
    if isinstance(exc, sdk.HttpException):
        status = exc.status_code or 0
        return status >= 500 or status == 429
    return False


def call(fn: Callable[[], T], *, attempts: int = 4, deadline_seconds: float = 20.0) -> T:
    """Run ``fn`` under the shared policy: retry transient errors, re-raise the last one."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(deadline_seconds),
        wait=tenacity.wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1),
        reraise=True,
    )
    return retrying(fn)
