"""Synthetic configs and probe results for tests of pure logic (detector, readiness, metrics)."""

from __future__ import annotations

from typing import Any

from drorch.config.schema import Config
from drorch.probes.result import ProbeResult

SITES = ("seoul", "tokyo", "nhn")
PORTS = {"seoul": 3301, "tokyo": 3302, "nhn": 3303}


def synthetic_config() -> Config:
    """Three sites on made-up addresses (seoul primary), for logic that needs a config but no servers."""

    def site(name: str) -> dict[str, Any]:
        return {
            "role": "primary" if name == "seoul" else "standby",
            "provider": {"kind": "aws", "region": "ap-northeast-2"},
            "app": {"url": f"http://{name}.example"},
            "mysql": {"host": "10.0.0.1", "port": PORTS[name], "user": "drorch", "password": {"env": "X"}},
        }

    return Config.model_validate({
        "service": "shop",
        "objectives": {"rto_seconds": 30, "rpo_seconds": 1},
        "sites": {name: site(name) for name in SITES},
        "dns": {"provider": {"kind": "aws", "region": "us-east-1"}, "zone_id": "Z", "record": "app.example.",
                "sites": {n: {"set_identifier": n, "value": n, "health_check_id": f"hc-{n}"} for n in SITES}},
        "data": {"mysql": {"replicates_from": {"tokyo": "seoul", "nhn": "seoul"},
                           "replication_password": {"env": "Y"}}},
        "detection": {"interval_seconds": 1, "failure_threshold": 3},
    })


def db(site: str, *, ok: bool = True, writable: bool = False, io: bool = True, lag: float | None = 0.1,
       source: str = "10.0.0.1:3301", gtid: str = "0-1-10") -> ProbeResult:
    if not ok:
        return ProbeResult(site, "database", False, None, 0.01, {}, "OperationalError: can't connect")
    detail: dict[str, Any] = {"writable": writable, "executed_gtid": gtid, "semi_sync_source_active": writable}
    if not writable:
        detail.update(source=source, io_running=io, sql_running=True)
    return ProbeResult(site, "database", True, None if writable else lag, 0.01, detail)


def app(site: str, ok: bool = True) -> ProbeResult:
    return ProbeResult(site, "app", ok, 0.01, 0.01, {}, None if ok else "ConnectionError")
