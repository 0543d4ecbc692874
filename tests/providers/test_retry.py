"""The shared retry policy: what counts as transient, and how ``call`` retries."""

from __future__ import annotations

import time
from typing import Any

import botocore.exceptions
import pymysql
import pytest
import requests

from drorch.providers import retry


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    response: Any = {"Error": {"Code": code, "Message": "test"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "ChangeResourceRecordSets")


@pytest.mark.parametrize(("exc", "expected"), [
    (client_error("Throttling", 400), True),
    (client_error("ThrottlingException", 400), True),
    (client_error("PriorRequestNotComplete", 400), True),
    (client_error("AccessDenied", 403), False),
    (client_error("InvalidChangeBatch", 400), False),
    (client_error("InternalServerError", 500), True),
    (client_error("ServiceUnavailable", 503), True),
    (client_error("SlowDown", 429), True),
    (client_error("NoSuchHostedZone", 404), False),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
    (botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True),
    (pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"), True),
    (pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.10.0.1'"), True),
    (pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"), True),
    (pymysql.err.OperationalError(1045, "Access denied for user 'drorch'@'127.0.0.1'"), False),
    (pymysql.err.OperationalError(), False),
    (pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"), False),
    (requests.ConnectionError("connection refused"), True),
    (requests.Timeout("read timed out"), True),
    (requests.HTTPError("404 Client Error"), False),
    (TimeoutError(), True),
    (ConnectionResetError(), True),
    (ValueError("bad"), False),
    (KeyError("x"), False),
], ids=lambda value: value if isinstance(value, bool) else f"{type(value).__name__}:{value!s:.40}")
def test_is_transient(exc: BaseException, expected: bool) -> None:
    assert retry.is_transient(exc) is expected


@pytest.fixture()
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record tenacity's backoff sleeps instead of sleeping (tenacity.nap.sleep calls time.sleep)."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def test_call_retries_a_transient_error_then_succeeds(sleeps: list[float]) -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
        return "done"

    assert retry.call(flaky) == "done"
    assert len(attempts) == 3
    assert len(sleeps) == 2
    # exponential backoff from 0.1 s, plus up to 1 s of jitter, capped at 2 s
    assert 0.1 <= sleeps[0] <= 1.1
    assert 0.2 <= sleeps[1] <= 1.2


def test_call_reraises_a_non_transient_error_at_once(sleeps: list[float]) -> None:
    attempts: list[int] = []
    denied = client_error("AccessDenied", 403)

    def forbidden() -> None:
        attempts.append(1)
        raise denied

    with pytest.raises(botocore.exceptions.ClientError) as info:
        retry.call(forbidden)
    assert info.value is denied  # the original exception, not tenacity's RetryError
    assert len(attempts) == 1
    assert sleeps == []


def test_call_gives_up_after_the_attempt_limit_and_reraises_the_last_error(sleeps: list[float]) -> None:
    errors = [client_error("Throttling", 400) for _ in range(5)]
    attempts: list[int] = []

    def throttled() -> None:
        attempts.append(1)
        raise errors[len(attempts) - 1]

    with pytest.raises(botocore.exceptions.ClientError) as info:
        retry.call(throttled, attempts=3)
    assert len(attempts) == 3
    assert info.value is errors[2]
    assert len(sleeps) == 2


def test_call_stops_at_the_deadline(sleeps: list[float]) -> None:
    attempts: list[int] = []

    def refused() -> None:
        attempts.append(1)
        raise requests.ConnectionError("refused")

    with pytest.raises(requests.ConnectionError):
        retry.call(refused, attempts=50, deadline_seconds=0.0)
    assert len(attempts) == 1


def test_call_returns_first_try_without_sleeping(sleeps: list[float]) -> None:
    assert retry.call(lambda: 42) == 42
    assert sleeps == []


def test_call_really_waits_between_attempts() -> None:
    """Without patching sleep: one retry takes at least the 0.1 s initial backoff."""
    attempts: list[int] = []

    def once_refused() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionRefusedError()
        return "ok"

    started = time.monotonic()
    assert retry.call(once_refused) == "ok"
    assert len(attempts) == 2
    assert 0.1 <= time.monotonic() - started < 1.5


def test_openstack_errors_transient_only_for_server_side_and_connection_failures() -> None:
    import keystoneauth1.exceptions as keystone
    import openstack.exceptions as sdk

    from drorch.providers.retry import is_transient

    assert is_transient(keystone.ConnectFailure("refused"))
    assert is_transient(keystone.HttpError(http_status=503))
    assert is_transient(sdk.HttpException(message="throttled", http_status=429))
    assert not is_transient(keystone.Unauthorized(http_status=401))
    assert not is_transient(sdk.HttpException(message="bad request", http_status=400))
