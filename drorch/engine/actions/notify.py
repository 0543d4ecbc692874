"""Notification actions: tell people what a run is doing, through a Slack-compatible webhook.

A webhook URL is a credential (anyone who has it can post), so a playbook names
where it lives (``url_env`` or ``url_file``, read like every other secret in the
config) and never holds it. The URL appears in no output, error or log: the HTTP
helper raises nothing that quotes it, and every message here is built from the
secret's *source* ("$SLACK_WEBHOOK"), with the value masked as a last guard.

``mutating=False``: a message has an effect on people, not on the estate, so
dry runs and plans do not count it as a change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import Field, model_validator

from drorch.config.base import SecretRef
from drorch.config.secrets import read_secret
from drorch.engine.catalogue import ActionContext, Params, action
from drorch.errors import InvalidInput, OperationFailed
from drorch.providers import http, retry


class WebhookParams(Params):
    text: str = Field(min_length=1)
    url_env: str | None = None  # name of the environment variable holding the URL
    url_file: Path | None = None  # file holding the URL (relative to the config file)
    timeout: float = Field(default=5.0, gt=0, le=60)  # per attempt
    attempts: int = Field(default=3, ge=1, le=5)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.url_env is None) == (self.url_file is None):
            raise ValueError("give exactly one of 'url_env' (variable name) or 'url_file' (path); never the URL")
        return self

    @property
    def source(self) -> str:
        return f"${self.url_env}" if self.url_env is not None else f"file {self.url_file}"


class _Unavailable(ConnectionError):
    """The webhook answered 5xx or 429: worth another attempt under the retry policy."""


@action("notify.webhook", WebhookParams, mutating=False)
def webhook_action(ctx: ActionContext, p: WebhookParams) -> dict[str, Any]:
    """POST ``{"text": ...}`` to a Slack-compatible webhook whose URL is read from ``url_env`` or ``url_file``.

    Transient failures (no connection, timeout, 5xx, 429) are retried a bounded number of times.
    """
    url = read_secret(ctx.estate.config, SecretRef(env=p.url_env, file=p.url_file), "notify.webhook url").strip()
    if not url:
        raise InvalidInput(f"notify.webhook: the URL in {p.source} is empty")
    attempts = 0

    def send() -> int:
        nonlocal attempts
        attempts += 1
        status = http.post_json(url, {"text": p.text}, p.timeout)
        if status >= 500 or status == 429:
            raise _Unavailable(f"HTTP {status}")
        return status

    try:
        status = retry.call(send, attempts=p.attempts, deadline_seconds=p.attempts * (p.timeout + 2))
    except ValueError as exc:
        raise InvalidInput(f"notify.webhook: the URL in {p.source} is {_masked(str(exc), url)}") from None
    except Exception as exc:  # whatever it is, its text is masked before anyone sees it
        raise OperationFailed(f"notify.webhook ({p.source}): {_masked(str(exc), url)} "
                              f"after {attempts} attempt(s)") from None
    if not 200 <= status < 300:
        raise OperationFailed(f"notify.webhook ({p.source}): HTTP {status} (check the URL in {p.source})")
    return {"delivered": True, "status": status, "attempts": attempts, "url_from": p.source}


def _masked(text: str, url: str) -> str:
    """``text`` with the URL, and its path (the secret part of a webhook URL), replaced by ***."""
    from urllib.parse import urlsplit

    for secret in (url, urlsplit(url).path):
        if len(secret) > 1:
            text = text.replace(secret, "***")
    return text
