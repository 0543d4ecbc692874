"""Route 53 failover record pairs and health checks.

drorch flips traffic deliberately by rewriting the PRIMARY/SECONDARY pair in one
atomic change batch, instead of waiting 30-90 s for Route 53's own health checks
to notice an outage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from drorch.errors import OperationFailed
from drorch.providers import retry


@dataclass(frozen=True)
class FailoverRecord:
    set_identifier: str
    role: str  # PRIMARY | SECONDARY
    value: str
    health_check_id: str | None
    ttl: int


@dataclass(frozen=True)
class HealthCheck:
    id: str
    ip: str | None
    port: int | None
    path: str
    kind: str
    inverted: bool
    disabled: bool


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def failover_records(r53: Any, zone_id: str, name: str, rtype: str) -> list[FailoverRecord]:
    """The failover records currently published for ``name``."""
    response = retry.call(
        lambda: r53.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=_fqdn(name), StartRecordType=rtype, MaxItems="20"
        )
    )
    found = []
    for item in response["ResourceRecordSets"]:
        if item["Name"] != _fqdn(name) or item["Type"] != rtype or "Failover" not in item:
            continue
        values = item.get("ResourceRecords", [])
        found.append(
            FailoverRecord(
                set_identifier=item["SetIdentifier"],
                role=item["Failover"],
                value=values[0]["Value"] if values else "",
                health_check_id=item.get("HealthCheckId"),
                ttl=int(item.get("TTL", 0)),
            )
        )
    return found


def _record_set(name: str, rtype: str, record: FailoverRecord) -> dict[str, Any]:
    rrset: dict[str, Any] = {
        "Name": _fqdn(name),
        "Type": rtype,
        "SetIdentifier": record.set_identifier,
        "Failover": record.role,
        "TTL": record.ttl,
        "ResourceRecords": [{"Value": record.value}],
    }
    if record.health_check_id:
        rrset["HealthCheckId"] = record.health_check_id
    return rrset


def publish_failover_pair(
    r53: Any, zone_id: str, name: str, rtype: str, wanted: list[FailoverRecord], timeout: float = 60.0
) -> bool:
    """Make the published pair equal ``wanted`` in one change batch; wait for INSYNC.

    Idempotent: returns False (and changes nothing) when the records already match.
    """
    current = {r.set_identifier: r for r in failover_records(r53, zone_id, name, rtype)}
    wanted_ids = {r.set_identifier for r in wanted}
    changes = [
        {"Action": "UPSERT", "ResourceRecordSet": _record_set(name, rtype, r)}
        for r in wanted
        if current.get(r.set_identifier) != r
    ]
    changes += [
        {"Action": "DELETE", "ResourceRecordSet": _record_set(name, rtype, r)}
        for set_id, r in current.items()
        if set_id not in wanted_ids
    ]
    if not changes:
        return False
    batch = {"Comment": "drorch failover", "Changes": changes}
    change = retry.call(lambda: r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=batch))
    _wait_insync(r53, change["ChangeInfo"]["Id"], timeout)
    return True


def _wait_insync(r53: Any, change_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = retry.call(lambda: r53.get_change(Id=change_id))["ChangeInfo"]["Status"]
        if status == "INSYNC":
            return
        time.sleep(1.0)
    raise OperationFailed(f"Route 53 change {change_id} not INSYNC after {timeout:.0f} s")


def health_check(r53: Any, check_id: str) -> HealthCheck:
    config = retry.call(lambda: r53.get_health_check(HealthCheckId=check_id))["HealthCheck"]["HealthCheckConfig"]
    return HealthCheck(
        id=check_id,
        ip=config.get("IPAddress"),
        port=config.get("Port"),
        path=config.get("ResourcePath", "/"),
        kind=config.get("Type", "HTTP"),
        inverted=bool(config.get("Inverted", False)),
        disabled=bool(config.get("Disabled", False)),
    )


def update_health_check(r53: Any, check_id: str, *, inverted: bool | None = None,
                        disabled: bool | None = None) -> HealthCheck:
    """Set the check's Inverted and/or Disabled flags (None leaves one as it is); returns the check as read back."""
    changes = {key: value for key, value in (("Inverted", inverted), ("Disabled", disabled)) if value is not None}
    if changes:
        retry.call(lambda: r53.update_health_check(HealthCheckId=check_id, **changes))
    return health_check(r53, check_id)
