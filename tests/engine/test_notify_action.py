"""notify.webhook against a real HTTP server on 127.0.0.1: the payload, retries, and a URL that never leaks.

The webhook URL is a secret (its path is the credential), so every outcome (success,
5xx, refused connection, timeout, redirect) is checked for the URL and its token in
the action's output, its error and the logs. No lab needed: a minimal config is enough.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from drorch.config.schema import Config
from drorch.engine.catalogue import ActionContext, catalogue
from drorch.errors import InvalidInput, OperationFailed
from drorch.providers.estate import Estate

TOKEN = "s3cr3t-T0KEN-do-not-leak"
ENV = "DRORCH_TEST_WEBHOOK"


@dataclass
class Hook:
    """What the server answers (one status per request, the last one repeating) and what it received."""

    url: str
    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    received: list[tuple[str, str, Any]] = field(default_factory=list)  # (path, content type, JSON body)


@pytest.fixture()
def hook() -> Iterator[Hook]:
    """A webhook server in a thread, stopped (and its thread joined) afterwards."""
    state = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.received.append((self.path, self.headers["Content-Type"], body))
            time.sleep(state.delay)
            status = state.statuses[min(len(state.received), len(state.statuses)) - 1]
            self.send_response(status)
            if status in (301, 302):
                self.send_header("Location", f"/elsewhere/{TOKEN}")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the server's own access log is not drorch's to check

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/{TOKEN}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


@pytest.fixture()
def estate(tmp_path: Path) -> Estate:
    """An estate from a minimal config in ``tmp_path`` (relative secret files resolve there)."""
    aws = {"kind": "aws", "region": "us-east-1"}
    secret = {"env": "UNUSED"}
    config = Config.model_validate({
        "service": "shop",
        "sites": {"seoul": {"role": "primary", "provider": aws, "app": {"url": "http://127.0.0.1:9"},
                            "mysql": {"host": "127.0.0.1", "user": "drorch", "password": secret}}},
        "dns": {"provider": aws, "zone_id": "Z1", "record": "app.example.", "sites": {}},
        "data": {"mysql": {"replicates_from": {}, "replication_password": secret}},
        "source_path": tmp_path / "drorch.yaml",
    })
    return Estate(config)


def notify(estate: Estate, **params: Any) -> dict[str, Any]:
    spec = catalogue()["notify.webhook"]
    return spec.run(ActionContext(estate, {}), spec.params.model_validate(params))


def assert_secret_absent(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text and "/services/T000" not in text, text


def test_posts_the_text_as_slack_json(estate: Estate, hook: Hook, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(ENV, hook.url)
    result = notify(estate, text="failover to tokyo started", url_env=ENV)
    assert result == {"delivered": True, "status": 200, "attempts": 1, "url_from": f"${ENV}"}
    assert hook.received == [(f"/services/T000/B000/{TOKEN}", "application/json",
                              {"text": "failover to tokyo started"})]
    assert_secret_absent(json.dumps(result), caplog.text)
    notify(estate, text="again", url_env=ENV)  # no state: sending twice sends twice, both fine
    assert [body for _, _, body in hook.received] == [{"text": "failover to tokyo started"}, {"text": "again"}]


def test_url_from_a_file_beside_the_config(estate: Estate, hook: Hook, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "webhook.url").write_text(hook.url + "\n")
    result = notify(estate, text="drill done", url_file="secrets/webhook.url")
    assert result["url_from"] == "file secrets/webhook.url" and hook.received[0][2] == {"text": "drill done"}


def test_5xx_is_retried_then_reported_without_the_url(estate: Estate, hook: Hook, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(ENV, hook.url)
    hook.statuses = [500]
    with pytest.raises(OperationFailed) as failed:
        notify(estate, text="hello", url_env=ENV, attempts=3)
    assert str(failed.value) == f"notify.webhook (${ENV}): HTTP 500 after 3 attempt(s)"
    assert len(hook.received) == 3
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    assert_secret_absent(str(failed.value), repr(failed.value), caplog.text)

    hook.received.clear()
    hook.statuses = [503, 200]  # a transient failure, then delivered
    assert notify(estate, text="hello", url_env=ENV)["attempts"] == 2


def test_4xx_and_redirects_fail_at_once(estate: Estate, hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, hook.url)
    for status in (404, 302):
        hook.received.clear()
        hook.statuses = [status]
        with pytest.raises(OperationFailed, match=f"HTTP {status} \\(check the URL in \\${ENV}\\)") as failed:
            notify(estate, text="hello", url_env=ENV)
        assert len(hook.received) == 1  # neither retried nor followed
        assert_secret_absent(str(failed.value))


def test_server_down_or_silent(estate: Estate, hook: Hook, monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/services/T000/B000/{TOKEN}"
    monkeypatch.setenv(ENV, closed)
    started = time.monotonic()
    with pytest.raises(OperationFailed, match="cannot connect \\(ConnectionRefusedError\\) after 2 attempt") as down:
        notify(estate, text="hello", url_env=ENV, attempts=2, timeout=1)
    assert time.monotonic() - started < 10
    monkeypatch.setenv(ENV, hook.url)
    hook.delay = 1.0
    with pytest.raises(OperationFailed, match=r"no answer within 0\.2 s after 2 attempt") as silent:
        notify(estate, text="hello", url_env=ENV, attempts=2, timeout=0.2)
    assert_secret_absent(str(down.value), str(silent.value), caplog.text)


def test_the_url_is_never_a_parameter_and_must_be_http(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    params = catalogue()["notify.webhook"].params
    for bad in ({"text": "x"}, {"text": "x", "url_env": ENV, "url_file": "f"},
                {"text": "x", "url": f"https://hooks.example/{TOKEN}"}):
        with pytest.raises(ValidationError):
            params.model_validate(bad)
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(InvalidInput, match=f"environment variable {ENV} is not set"):
        notify(estate, text="x", url_env=ENV)
    monkeypatch.setenv(ENV, f"file:///tmp/{TOKEN}")
    with pytest.raises(InvalidInput, match=f"the URL in \\${ENV} is not an http\\(s\\) URL") as refused:
        notify(estate, text="x", url_env=ENV)
    assert_secret_absent(str(refused.value))
