"""In-memory state of the lab cloud, shared by all request threads.

The server is threaded, so every read and write happens inside :meth:`LabState.transaction`,
which holds one lock and first applies any delayed transitions that have come due. Delays are
applied lazily on the next request instead of by timer threads, so nothing runs in the
background and shutdown stays trivial.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

TOKEN_TTL = timedelta(hours=1)


def utcnow() -> datetime:
    """Current UTC time without microseconds, as OpenStack APIs report it."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Flavor:
    """A Nova flavor; sizes are what NHN's m2/t2 flavors advertise."""

    id: str
    name: str
    vcpus: int
    ram: int
    disk: int


@dataclass
class Resize:
    """A resize under way, Nova's migration record for it.

    ``source_status`` (ACTIVE or SHUTOFF) is where confirming or reverting returns the server;
    ``status`` follows Nova's migration: ``migrating`` until the server is VERIFY_RESIZE, then
    ``finished`` (waiting to be confirmed or reverted), then ``confirming`` or ``reverting``.
    """

    old_flavor_id: str
    new_flavor_id: str
    source_status: str
    status: str = "migrating"


@dataclass
class Server:
    """A Nova server.

    ``status`` is ACTIVE or SHUTOFF at rest; while a resize is under way (``resize`` set) it is
    RESIZE, VERIFY_RESIZE or REVERT_RESIZE. ``task_state`` is set while a change is due.
    """

    id: str
    name: str
    status: str
    flavor_id: str
    image_id: str
    network: str
    ip: str
    metadata: dict[str, str]
    created: datetime
    updated: datetime
    task_state: str | None = None
    resize: Resize | None = None


@dataclass
class Member:
    """A pool member. It is tied to a server only by address, as in real LBaaS."""

    id: str
    name: str
    address: str
    protocol_port: int
    subnet_id: str
    weight: int = 1


@dataclass
class Pool:
    """A listener's default pool."""

    id: str
    name: str
    protocol: str
    lb_algorithm: str
    members: list[Member]


@dataclass
class Listener:
    """A listener with exactly one default pool, the shape the lab needs."""

    id: str
    name: str
    protocol: str
    protocol_port: int
    pool: Pool


@dataclass
class LoadBalancer:
    """An LBaaS v2 load balancer; provisioning is always finished, operating status is derived."""

    id: str
    name: str
    vip_address: str
    vip_subnet_id: str
    listeners: list[Listener]
    created: datetime


@dataclass
class NodeGroup:
    """A Magnum/NKS node group. ``max_node_count`` None means unbounded, as in Magnum."""

    id: str
    name: str
    role: str
    flavor_id: str
    image_id: str
    node_count: int
    min_node_count: int
    max_node_count: int | None
    status: str
    is_default: bool
    created: datetime
    updated: datetime


@dataclass
class Cluster:
    """A Magnum/NKS cluster; its ``node_count`` is the sum of its worker node groups."""

    id: str
    name: str
    status: str
    master_count: int
    cluster_template_id: str
    keypair: str
    nodegroups: list[NodeGroup]
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class Token:
    """An issued token. ``project_id`` is None for unscoped tokens, which services reject."""

    project_id: str | None
    issued: datetime
    expires: datetime
    audit_id: str


@dataclass
class LabState:
    """All resources of the lab cloud plus issued tokens, guarded by one re-entrant lock."""

    flavors: list[Flavor]
    servers: list[Server]
    loadbalancers: list[LoadBalancer]
    clusters: list[Cluster]
    _tokens: dict[str, Token] = field(default_factory=dict, repr=False)
    _pending: list[tuple[float, Callable[[], None]]] = field(default_factory=list, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @contextmanager
    def transaction(self) -> Iterator[LabState]:
        """Hold the lock, apply transitions that are due, and yield the state for reading or writing."""
        with self._lock:
            now = time.monotonic()
            due = [apply for when, apply in self._pending if when <= now]
            self._pending = [(when, apply) for when, apply in self._pending if when > now]
            for apply in due:
                apply()
            yield self

    def schedule(self, delay: float, apply: Callable[[], None]) -> None:
        """Run ``apply`` after ``delay`` seconds (at the next transaction), or now if ``delay`` <= 0."""
        with self._lock:
            if delay <= 0:
                apply()
            else:
                self._pending.append((time.monotonic() + delay, apply))

    def issue_token(self, project_id: str | None) -> tuple[str, Token]:
        """Create a random token valid for :data:`TOKEN_TTL`, dropping expired ones."""
        issued = utcnow()
        token = Token(project_id, issued, issued + TOKEN_TTL, secrets.token_urlsafe(16)[:22])
        token_id = secrets.token_hex(32)
        with self._lock:
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires > issued}
            self._tokens[token_id] = token
        return token_id, token

    def check_token(self, token_id: str) -> Token | None:
        """Return the token if it exists and has not expired."""
        with self._lock:
            token = self._tokens.get(token_id)
        if token is None or token.expires <= utcnow():
            return None
        return token

    def server(self, ident: str) -> Server | None:
        """Find a server by id."""
        return next((s for s in self.servers if s.id == ident), None)

    def server_by_address(self, address: str) -> Server | None:
        """Find the server owning a fixed IP; this is how LB members map to servers."""
        return next((s for s in self.servers if s.ip == address), None)

    def cluster(self, ident: str) -> Cluster | None:
        """Find a cluster by uuid or name, as Magnum accepts both."""
        return next((c for c in self.clusters if ident in (c.id, c.name)), None)
