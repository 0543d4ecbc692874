"""The lease in etcd: for controllers on several hosts, as Patroni keeps its leader key.

A key bound to an etcd lease (TTL) is created only if it does not exist (a
transaction comparing its create revision with 0); etcd deletes it when the
holder stops renewing. The fencing token is the key's create revision, which etcd
makes larger for every new holder. drorch talks to etcd's v3 JSON gateway
(``/v3/...``, etcd 3.4 and later) over plain HTTP(S): no gRPC stack to install.
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any

import requests

from drorch.errors import OperationFailed
from drorch.state.lease import Grant, LeaseLost, held_elsewhere

TIMEOUT_SECONDS = 3.0


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EtcdLease:
    def __init__(self, endpoints: list[str], key: str) -> None:
        self.endpoints, self.key = [e.rstrip("/") for e in endpoints], key
        self._leases: dict[int, str] = {}  # fencing token -> etcd lease ID, for the grants this process holds

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the first endpoint that answers; OperationFailed naming them all when none does."""
        errors = []
        for endpoint in self.endpoints:
            try:
                response = requests.post(f"{endpoint}/v3/{path}", json=body, timeout=TIMEOUT_SECONDS)
            except requests.RequestException as exc:
                errors.append(f"{endpoint}: {type(exc).__name__}")
                continue
            if response.status_code != 200:
                raise OperationFailed(f"etcd {endpoint} /v3/{path}: HTTP {response.status_code} {response.text[:200]}")
            document: dict[str, Any] = response.json()
            return document
        raise OperationFailed(f"no etcd endpoint answered ({'; '.join(errors)}): check state.lease.etcd_endpoints")

    def _time_left(self, lease_id: str) -> float:
        found = self._call("lease/timetolive", {"ID": lease_id})
        return float(found.get("TTL", -1))

    def acquire(self, holder: str, ttl: float) -> Grant:
        lease_id = str(self._call("lease/grant", {"TTL": math.ceil(ttl)})["ID"])
        key = _b64(self.key)
        answer = self._call("kv/txn", {
            "compare": [{"key": key, "result": "EQUAL", "target": "CREATE", "create_revision": "0"}],
            "success": [{"request_put": {"key": key, "value": _b64(holder), "lease": lease_id}}],
            "failure": [{"request_range": {"key": key}}],
        })
        if answer.get("succeeded"):
            token = int(answer["header"]["revision"])
            self._leases[token] = lease_id
            return Grant(holder, token, time.time() + ttl)
        self._call("lease/revoke", {"ID": lease_id})
        kvs = answer["responses"][0]["response_range"].get("kvs", [])
        if not kvs:  # it expired between the compare and the read: try once more
            return self.acquire(holder, ttl)
        current = kvs[0]
        left = self._time_left(str(current.get("lease", "0"))) if current.get("lease") else ttl
        raise held_elsewhere(Grant(base64.b64decode(current["value"]).decode(), int(current["create_revision"]),
                                   time.time() + max(0.0, left)))

    def renew(self, grant: Grant, ttl: float) -> Grant:
        lease_id = self._leases.get(grant.token)
        current = self.current()
        if lease_id is None or current is None or current.token != grant.token:
            raise LeaseLost(f"the lease now belongs to {current.holder if current else 'nobody'}")
        result = self._call("lease/keepalive", {"ID": lease_id}).get("result", {})
        left = float(result.get("TTL", 0))
        if left <= 0:
            raise LeaseLost("etcd expired it")
        return Grant(grant.holder, grant.token, time.time() + left)

    def release(self, grant: Grant) -> None:
        lease_id = self._leases.pop(grant.token, None)
        if lease_id is not None:
            self._call("lease/revoke", {"ID": lease_id})

    def current(self) -> Grant | None:
        kvs = self._call("kv/range", {"key": _b64(self.key)}).get("kvs", [])
        if not kvs:
            return None
        found = kvs[0]
        left = self._time_left(str(found["lease"])) if found.get("lease") else math.inf
        return Grant(base64.b64decode(found["value"]).decode(), int(found["create_revision"]), time.time() + left)

    def put_note(self, name: str, value: str) -> None:
        """A plain key beside the lease key (bound to no etcd lease: it outlives every holder)."""
        self._call("kv/put", {"key": _b64(f"{self.key}/notes/{name}"), "value": _b64(value)})

    def get_note(self, name: str) -> str | None:
        kvs = self._call("kv/range", {"key": _b64(f"{self.key}/notes/{name}")}).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None
