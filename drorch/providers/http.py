"""HTTP health checks of application endpoints, the way a load balancer does them; JSON posts to webhooks."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class HealthResult:
    url: str
    ok: bool
    status: int | None
    latency_seconds: float
    body: dict[str, Any]
    error: str | None = None


def check(url: str, timeout: float = 2.0) -> HealthResult:
    """One GET; healthy means 2xx/3xx within the timeout (Route 53's definition)."""
    started = time.monotonic()
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return HealthResult(url, False, None, time.monotonic() - started, {}, type(exc).__name__)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    ok = 200 <= response.status_code < 400
    return HealthResult(url, ok, response.status_code, time.monotonic() - started, body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is reported as its status, never followed with the body dropped


def post_json(url: str, payload: dict[str, Any], timeout: float) -> int:
    """POST ``payload`` as JSON and return the HTTP status; redirects are not followed.

    For secret URLs (webhooks, whose path is the credential): this uses the standard
    library, which logs nothing, where urllib3 logs every request path at DEBUG level;
    and what it raises never contains the URL. A failure to connect or to get an answer
    within ``timeout`` (per socket operation) is a ConnectionError or TimeoutError
    naming only the cause's type, which the retry policy treats as transient.
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("not an http(s) URL")
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except TimeoutError:
        raise TimeoutError(f"no answer within {timeout:g} s") from None
    except http.client.InvalidURL:
        raise ValueError("not a valid URL") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(cause, TimeoutError):
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        raise ConnectionError(f"cannot connect ({type(cause).__name__})") from None
