"""Fault-injecting proxies for the lab: put one in front of the AWS API or a database and break it on purpose.

drorch promises that a failover either finishes or stops cleanly, resumably, with
the journal saying what is done, whatever the clouds do meanwhile. These proxies
make the clouds misbehave the way real ones do, at chosen rates:

* errors: HTTP 503 from the AWS API;
* throttling: the protocol's own throttling error (JSON ``__type``, or XML ``Code``),
  so botocore raises exactly what AWS would make it raise;
* timeouts: the request is held unanswered for ``hold_seconds``, then the
  connection closes (longer than the client's read timeout, the client gives up first);
* dropped connections: closed without an answer;
* latency: added before every request (HTTP) or every chunk (TCP).

``HttpFaultProxy`` understands HTTP/1.1 requests, so it can answer with an error
instead of forwarding; ``TcpFaultProxy`` (databases) decides per connection.
``OpenStackFaultProxy`` is an HTTP one speaking OpenStack: its errors are 503 and
429 (with ``Retry-After``) in Keystone's JSON shape, and it rewrites the API's own
URLs in what it answers (Keystone's service catalog, version documents, links),
since an OpenStack client goes wherever the catalog says: without the rewrite,
only the login would pass through the proxy.
Both run as threads in the caller's process; ``plan`` can be changed at any time
(a test turns the faults off before resuming) and ``injected`` counts what was done.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class FaultPlan:
    """Rates are per request (HTTP) or per connection (TCP); they are tried in this order and add up to <= 1."""

    error_rate: float = 0.0
    throttle_rate: float = 0.0
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    latency_seconds: float = 0.0
    hold_seconds: float = 12.0
    # HTTP: only requests signed for these AWS services (OpenStack: whose path starts with /SERVICE, e.g.
    # "compute", "v3" for Keystone); empty: all
    services: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.throttle_rate, self.timeout_rate, self.drop_rate)
        if any(rate < 0 for rate in rates) or sum(rates) > 1 or self.latency_seconds < 0:
            raise ValueError(f"invalid fault plan {self}: rates must be >= 0 and add up to <= 1")

    def pick(self, draw: float) -> str | None:
        """The fault for a uniform draw in [0, 1): 'error', 'throttle', 'timeout', 'drop' or None (forward)."""
        edge = 0.0
        for name, rate in (("error", self.error_rate), ("throttle", self.throttle_rate),
                           ("timeout", self.timeout_rate), ("drop", self.drop_rate)):
            edge += rate
            if draw < edge:
                return name
        return None


NO_FAULTS = FaultPlan()


class _Proxy:
    def __init__(self, plan: FaultPlan, seed: int | None) -> None:
        self.plan = plan
        self.injected: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def decide(self) -> str | None:
        with self._lock:
            fault = self.plan.pick(self._random.random())
            self.injected[fault or "forwarded"] += 1
            return fault

    def hold(self) -> None:
        """Keep a request unanswered (a timeout), but never past the proxy's own shutdown."""
        self._closing.wait(self.plan.hold_seconds)


class HttpFaultProxy(_Proxy):
    """An HTTP proxy to ``upstream`` (e.g. the lab's moto endpoint) that injects faults per request."""

    rewrite_urls = False  # replace the upstream's own base URL in JSON answers and Location headers by ours

    def __init__(self, upstream: str, plan: FaultPlan = NO_FAULTS, seed: int | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(plan, seed)
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.upstream_base = f"{parsed.scheme or 'http'}://{parsed.netloc}"
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="http-fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def service(self, path: str, headers: dict[str, str]) -> str:
        """What ``FaultPlan.services`` matches a request by: the AWS service it is signed for."""
        return _signing_service(headers)

    def error(self, fault: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """The answer that stands for an 'error' or 'throttle' fault."""
        return _error_response(fault, headers, body)

    def rewritten(self, headers: list[tuple[str, str]], body: bytes) -> tuple[list[tuple[str, str]], bytes]:
        """The upstream's answer with its own base URL replaced by the proxy's (when ``rewrite_urls``).

        Only uncompressed JSON bodies and Location headers: that is where an API hands out URLs.
        """
        if not self.rewrite_urls:
            return headers, body
        lowered = {name.lower(): value for name, value in headers}
        old, new = self.upstream_base, self.url
        if "json" in lowered.get("content-type", "") and not lowered.get("content-encoding"):
            body = body.replace(old.encode(), new.encode())
        return [(name, value.replace(old, new) if name.lower() == "location" else value)
                for name, value in headers], body


class OpenStackFaultProxy(HttpFaultProxy):
    """An HTTP fault proxy in front of an OpenStack API (``upstream``: its base or Keystone URL).

    Clients authenticate at the proxy (point clouds.yaml's ``auth_url`` at ``url`` + the path) and
    then follow the catalog, which names the proxy too. Errors are OpenStack's: 503 with Keystone's
    error body, and 429 with ``Retry-After: 1`` for throttling (what rate limiters in front of Nova
    or Keystone answer). ``FaultPlan.services`` matches the first path segment ("v3" is Keystone).
    """

    rewrite_urls = True

    def service(self, path: str, headers: dict[str, str]) -> str:
        return urllib.parse.urlsplit(path).path.lstrip("/").split("/", 1)[0]

    def error(self, fault: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        code, title, extra = ((503, "Service Unavailable", []) if fault == "error"
                              else (429, "Too Many Requests", [("Retry-After", "1")]))
        document = json.dumps({"error": {"code": code, "title": title, "message": f"lab fault proxy: {title.lower()}"}})
        return code, [("Content-Type", "application/json"), *extra], document.encode()


def _handler(proxy: HttpFaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the lab's logs are for the lab's processes."""

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            plan = proxy.plan
            service = proxy.service(self.path, {k.lower(): v for k, v in self.headers.items()})
            if plan.services and service not in plan.services:
                fault = None
            else:
                if plan.latency_seconds:
                    time.sleep(plan.latency_seconds)
                fault = proxy.decide()
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "timeout":
                proxy.hold()
                self.close_connection = True
                return
            if fault is not None:
                self._answer(*proxy.error(fault, dict(self.headers.items()), body))
                return
            upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
            try:
                sent = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=sent)
                response = upstream.getresponse()
                headers, answer = proxy.rewritten([(k, v) for k, v in response.getheaders()
                                                   if k.lower() not in _HOP_BY_HOP | {"content-length"}],
                                                  response.read())
                self._answer(response.status, headers, answer)
            finally:
                upstream.close()

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _relay

    return Handler


_XML_SERVICES = {"route53", "s3", "iam", "sts", "sns", "sqs", "autoscaling", "cloudformation", "elasticloadbalancing"}


def _signing_service(headers: dict[str, str]) -> str:
    """The service a SigV4 request is signed for (``Credential=KEY/DATE/REGION/SERVICE/aws4_request``)."""
    scope = headers.get("authorization", "").partition("Credential=")[2].split(",")[0].split("/")
    return scope[3] if len(scope) >= 5 else ""


def _error_response(fault: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """An AWS-shaped error in the request's protocol: CBOR, EC2 XML, query/rest XML, or JSON."""
    lowered = {k.lower(): v for k, v in headers.items()}
    code, status, message = (("ServiceUnavailable", 503, "lab fault proxy: service unavailable") if fault == "error"
                             else ("ThrottlingException", 400, "lab fault proxy: rate exceeded"))
    service = _signing_service(lowered)
    if lowered.get("smithy-protocol") == "rpc-v2-cbor":
        return status, [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")], _cbor_map(
            {"__type": code, "message": message})
    if service == "ec2":  # EC2's query protocol has its own error shape
        code = "RequestLimitExceeded" if fault == "throttle" else "Unavailable"
        xml = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors></Response>"
        return 503, [("Content-Type", "text/xml")], xml.encode()
    if service in _XML_SERVICES:
        code = "Throttling" if fault == "throttle" else code
        xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
               "<RequestId>lab-fault</RequestId></ErrorResponse>")
        return status, [("Content-Type", "text/xml")], xml.encode()
    document = json.dumps({"__type": code, "message": message}).encode()  # json and rest-json
    return status, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code)], document


def _cbor_map(fields: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (RFC 8949 major types 5 and 3): all an error body needs."""

    def text(value: str) -> bytes:
        data = value.encode()
        if len(data) > 255:
            raise ValueError("text too long for this encoder")
        return (bytes([0x60 + len(data)]) if len(data) < 24 else bytes([0x78, len(data)])) + data

    return bytes([0xA0 + len(fields)]) + b"".join(text(k) + text(v) for k, v in fields.items())


class TcpFaultProxy(_Proxy):
    """A TCP proxy to ``upstream_host:upstream_port`` (a database) that injects faults per connection."""

    def __init__(self, upstream_host: str, upstream_port: int, plan: FaultPlan = NO_FAULTS,
                 seed: int | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(plan, seed)
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, name="tcp-fault-proxy", daemon=True)
        self._live: set[socket.socket] = set()  # both ends of every open connection, closed by stop()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> TcpFaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and cut every open connection; a chunk still waiting out its latency is dropped.

        A test that kills a controller mid-statement then stops the proxy: without this, a delayed
        statement of the dead controller could reach the database after the resumed run acted.
        """
        self._closing.set()
        self._thread.join(timeout=5)
        self.listener.close()
        with self._lock:
            live = list(self._live)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _track(self, sock: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._live.add(sock)
            else:
                self._live.discard(sock)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="tcp-fault-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        fault = self.decide()
        with client:
            if fault in ("drop", "error", "throttle"):  # a database has no throttling reply: all three refuse
                return
            if fault == "timeout":
                self.hold()
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                return
            with upstream:
                upstream.settimeout(None)
                self._track(client, True)
                self._track(upstream, True)
                try:
                    if self._closing.is_set():  # stop() may have run since the accept: it saw neither socket
                        return
                    back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
                    back.start()
                    self._pipe(client, upstream)
                    back.join(timeout=5)
                finally:
                    self._track(client, False)
                    self._track(upstream, False)

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while not self._closing.is_set():
                chunk = source.recv(65536)
                if not chunk:
                    break
                latency = self.plan.latency_seconds
                if latency and self._closing.wait(latency):
                    break  # stopped while the chunk was delayed: it is never delivered
                target.sendall(chunk)
        except OSError:
            pass  # either side went away: the connection is over
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
